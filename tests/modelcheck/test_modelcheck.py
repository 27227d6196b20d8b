"""The model check's own tests: it must catch each kind of violation, in each protocol it reads,
and the proxy must forward valid requests unchanged and refuse invalid ones without forwarding.

Hand-built requests with real operation names (botocore's models, no network but loopback);
run by `scripts/modelcheck selftest` (pytest), which scripts/test runs before the suite.
"""

import http.client
import http.server
import json
import os
import threading
import urllib.parse

import pytest

import proxy
import validator
from validator import BOTOCORE_VERSION, NotUnderstood, check_request

MODELS = validator.Models()


def auth(service):
    return {"authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/eu-west-3/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0123abcd"}


def json_call(service, target, body):
    headers = auth(service) | {"content-type": "application/x-amz-json-1.1", "x-amz-target": target}
    return check_request(MODELS, "POST", "/", headers, json.dumps(body).encode())


def logs(op, body):
    return json_call("logs", f"Logs_20140328.{op}", body)


def query_call(service, params):
    headers = auth(service) | {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    return check_request(MODELS, "POST", "/", headers, urllib.parse.urlencode(params).encode())


def iam(action, params):
    return query_call("iam", {"Action": action, "Version": "2010-05-08", **params})


def backup(method, target, body=None):
    headers = auth("backup") | {"content-type": "application/json"}
    return check_request(MODELS, method, target, headers, json.dumps(body).encode() if body is not None else b"")


def only(result):
    assert len(result.violations) == 1, result.violations
    return result.violations[0]


# --- json (CloudWatch Logs, ECS, Secrets Manager) ---------------------------------------------


def test_a_valid_json_request_passes():
    r = logs("CreateLogGroup", {"logGroupName": "/ecs/app", "tags": {"Project": "x"}})
    assert (r.service, r.operation, r.ok) == ("logs", "CreateLogGroup", True), r.violations


def test_empty_tags_map_is_below_the_minimum_of_one():
    # issue 22 finding 4: hcctl sends `tags: {}` when a log group has no tags.
    r = logs("CreateLogGroup", {"logGroupName": "/ecs/app", "tags": {}})
    assert r.message() == f"logs CreateLogGroup: tags: 0 entries, the model's minimum is 1 (botocore {BOTOCORE_VERSION})"


def test_a_missing_required_member_is_named():
    assert only(logs("CreateLogGroup", {"tags": {"a": "b"}})) == "logGroupName: missing, the model requires it"


def test_a_value_outside_the_enum_is_named_with_the_allowed_values():
    r = json_call("ecs", "AmazonEC2ContainerServiceV20141113.ListTaskDefinitions", {"status": "GONE"})
    assert only(r).startswith('status: "GONE" is not one of the model\'s values (ACTIVE, INACTIVE')


def test_a_too_long_string_is_counted_in_characters():
    assert only(logs("CreateLogGroup", {"logGroupName": "a" * 513})) == (
        "logGroupName: 513 characters, the model's maximum is 512")
    # Characters, not UTF-8 bytes: 2048 two-byte characters are within Description's 2048.
    r = json_call("secretsmanager", "secretsmanager.CreateSecret", {"Name": "p/root", "Description": "é" * 2048})
    assert r.violations == []
    assert only(json_call("secretsmanager", "secretsmanager.CreateSecret", {"Name": "p/root", "Description": "é" * 2049})) == (
        "Description: 2049 characters, the model's maximum is 2048")


def test_a_pattern_mismatch_needs_the_whole_value_to_match():
    # `[\.\-_/#A-Za-z0-9]+` has no anchors; AWS matches the whole name, so one space fails it.
    v = only(logs("CreateLogGroup", {"logGroupName": "/ecs/my app"}))
    assert v == 'logGroupName: "/ecs/my app" does not match the model\'s pattern [\\.\\-_/#A-Za-z0-9]+'


def test_a_member_the_model_does_not_know_is_a_violation():
    v = only(logs("CreateLogGroup", {"logGroupName": "a", "retention": 7}))
    assert v == "retention: not a member of the model's CreateLogGroupRequest"


def test_a_wrong_type_and_a_nested_path_are_named():
    r = json_call("ecs", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", {
        "family": "app", "containerDefinitions": [{"name": "mongo", "memory": "512", "portMappings": [{"containerPort": 70000, "protocol": "sctp"}]}]})
    assert r.violations == [
        "containerDefinitions[0].memory: a string, the model's type is integer",
        "containerDefinitions[0].portMappings[0].protocol: \"sctp\" is not one of the model's values (tcp, udp)",
    ]


def test_a_secret_value_never_appears_in_the_message():
    secret = "s3cr3t-" + "x" * 65536
    r = json_call("secretsmanager", "secretsmanager.CreateSecret", {"Name": "p/root", "SecretString": secret})
    assert only(r) == "SecretString: 65543 characters, the model's maximum is 65536"
    # A pattern violation of a sensitive member names the rule, not the value.
    pw = iam("CreateLoginProfile", {"UserName": "u", "Password": "pässwörd\u0100"})
    assert only(pw) == "Password: the value does not match the model's pattern [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
    assert "pässwörd" not in pw.message()


def test_a_union_takes_exactly_one_member():
    m = validator.ServiceModel("test", {
        "metadata": {"protocol": "json", "signingName": "test"},
        "operations": {},
        "shapes": {"U": {"type": "structure", "union": True, "members": {"a": {"shape": "S"}, "b": {"shape": "S"}}},
                   "S": {"type": "string"}},
    })
    res = validator.Result("test", "Op")
    validator._Validator(m, res, json_keys=True).structure("U", {"a": "x", "b": "y"}, "u", False)
    assert res.violations == ["u: 2 members set, the model's union U takes exactly one"]


def test_a_body_that_is_not_json_is_a_violation():
    headers = auth("logs") | {"x-amz-target": "Logs_20140328.CreateLogGroup"}
    assert check_request(MODELS, "POST", "/", headers, b'{"logGroupName": ').violations == [
        "the body is not JSON (Expecting value at byte 17)"]
    assert check_request(MODELS, "POST", "/", headers, b'{"logGroupName": "\xff"}').violations == [
        "the body is not UTF-8 JSON (invalid start byte at byte 18)"]


def test_an_unknown_target_or_an_unsigned_request_is_not_understood():
    with pytest.raises(NotUnderstood, match="no operation 'CreateLogGrup'"):
        logs("CreateLogGrup", {})
    with pytest.raises(NotUnderstood, match="no SigV4 credential scope"):
        check_request(MODELS, "POST", "/", {"x-amz-target": "Logs_20140328.CreateLogGroup"}, b"{}")


# --- query (IAM) ------------------------------------------------------------------------------


def test_a_valid_query_request_with_a_list_of_structures_passes():
    r = iam("CreateRole", {"RoleName": "t1-exec", "Path": "/", "AssumeRolePolicyDocument": "{}",
                           "Tags.member.1.Key": "Project", "Tags.member.1.Value": "x"})
    assert (r.operation, r.violations) == ("CreateRole", [])


def test_query_violations_missing_pattern_size_and_unknown():
    r = iam("CreateRole", {"RoleName": "my role", "Tags.member.1.Key": "", "Tags.member.1.Value": "v", "Bogus": "1"})
    assert r.violations == [
        "AssumeRolePolicyDocument: missing, the model requires it",
        'RoleName: "my role" does not match the model\'s pattern [\\w+=,.@-]+',
        "Tags[0].Key: 0 characters, the model's minimum is 1",
        'Tags[0].Key: "" does not match the model\'s pattern [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+',
        'parameter "Bogus": not a member of the model\'s CreateRoleRequest',
    ]


def test_java_pattern_classes_are_ascii_and_unicode_properties_are_not():
    # Java's \w is [a-zA-Z0-9_]: IAM refuses a role name with an accent; \p{L} takes it in a tag.
    r = iam("CreateRole", {"RoleName": "rôle", "AssumeRolePolicyDocument": "{}",
                           "Tags.member.1.Key": "Équipe", "Tags.member.1.Value": "données"})
    assert r.violations == ['RoleName: "rôle" does not match the model\'s pattern [\\w+=,.@-]+']


def test_a_query_integer_that_is_not_a_number():
    r = iam("ListRoles", {"MaxItems": "ten"})
    assert only(r) == 'MaxItems: "ten" is not a valid integer'


def test_a_wrong_api_version_is_a_violation():
    r = query_call("iam", {"Action": "ListRoles", "Version": "2011-01-01"})
    assert only(r) == "Version: '2011-01-01', the model's API version is '2010-05-08'"


# --- ec2 --------------------------------------------------------------------------------------


def test_ec2_lists_are_numbered_without_member_and_names_capitalised():
    ok = query_call("ec2", {"Action": "DescribeVpcs", "Version": "2016-11-15", "VpcId.1": "vpc-1",
                            "Filter.1.Name": "state", "Filter.1.Value.1": "available", "DryRun": "false"})
    assert ok.violations == []
    bad = query_call("ec2", {"Action": "DescribeVpcs", "Version": "2016-11-15", "VpcIds.member.1": "vpc-1", "DryRun": "no"})
    assert sorted(bad.violations) == sorted([
        'DryRun: "no" is not a valid boolean',
        "parameter \"VpcIds.member.1\": not a member of the model's DescribeVpcsRequest",
    ])


# --- rest-json (AWS Backup) -------------------------------------------------------------------


def test_a_valid_rest_json_request_passes():
    r = backup("PUT", "/backup-vaults/t1-vault", {"BackupVaultTags": {"Project": "x"}})
    assert (r.operation, r.violations) == ("CreateBackupVault", [])
    # The Rust SDK drops the template's trailing slash.
    assert backup("GET", "/backup/plans?maxResults=10").operation == "ListBackupPlans"


def test_rest_json_uri_label_query_and_body_violations():
    assert only(backup("PUT", "/backup-vaults/my%20vault", {})) == (
        "BackupVaultName: \"my vault\" does not match the model's pattern ^[a-zA-Z0-9\\-\\_]{2,50}$")
    assert only(backup("GET", "/backup-jobs/?state=DONE")).startswith(
        'ByState: "DONE" is not one of the model\'s values (CREATED, PENDING')
    assert only(backup("GET", "/backup-jobs/?colour=red")) == (
        "query parameter \"colour\": not a member of the model's ListBackupJobsInput")
    assert only(backup("PUT", "/backup-vaults/v1", {"BackupVaultTags": {}, "Colour": 1})) == (
        "Colour: not a member of the model's CreateBackupVaultInput")
    assert only(backup("PUT", "/backup/plans/", {})) == "BackupPlan: missing, the model requires it"
    # A map bound to the body, nested in a structure: its minimum holds there too.
    assert backup("PUT", "/backup/plans/", {"BackupPlan": {"BackupPlanName": "p", "Rules": [
        {"RuleName": "daily", "TargetBackupVaultName": "vault", "Lifecycle": {"DeleteAfterDays": "30"}}]}}).violations == [
        "BackupPlan.Rules[0].Lifecycle.DeleteAfterDays: a string, the model's type is long"]


def test_a_rest_request_no_template_matches_is_not_understood():
    with pytest.raises(NotUnderstood, match="no operation's URI template matches GET /nowhere"):
        backup("GET", "/nowhere")


def test_a_cbor_request_to_an_unknown_service_name_is_not_understood():
    headers = auth("servicediscovery") | {"smithy-protocol": "rpc-v2-cbor"}
    with pytest.raises(NotUnderstood, match="no rpc-v2-cbor model has the service name 'CloudMap'"):
        check_request(MODELS, "POST", "/service/CloudMap/operation/ListNamespaces", headers, b"")


# --- rest-xml (S3, path style) ----------------------------------------------------------------


def s3(method, target, headers=None, body=b""):
    return check_request(MODELS, method, target, auth("s3") | (headers or {}), body)


TAGGING = b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>Project</Key><Value>x</Value></Tag></TagSet></Tagging>'


def test_a_valid_rest_xml_request_passes():
    r = s3("PUT", "/my-bucket?tagging", {"content-type": "application/xml"}, TAGGING)
    assert (r.operation, r.violations) == ("PutBucketTagging", [])


def test_rest_xml_body_header_and_query_violations():
    bad = b"<Tagging><TagSet><Tag><Key></Key><Value>x</Value></Tag><Colour>red</Colour></TagSet><Mode>1</Mode></Tagging>"
    assert s3("PUT", "/my-bucket?tagging", {}, bad).violations == [
        "Tagging.TagSet: element <Colour>, the model's list items are <Tag>",
        "Tagging.Mode: not a member of the model's Tagging",
        "Tagging.TagSet[0].Key: 0 characters, the model's minimum is 1",
    ]
    assert only(s3("GET", "/my-bucket/a/b.txt?x-id=GetObject", {"x-amz-checksum-mode": "BOGUS"})) == (
        'ChecksumMode: "BOGUS" is not one of the model\'s values (ENABLED)')
    assert only(s3("GET", "/my-bucket?list-type=2&max-keys=ten")) == 'MaxKeys: "ten" is not a valid integer'


def test_same_templates_are_told_apart_and_object_bodies_are_streamed():
    # PutObject's body is the object: not read (streamed), its headers still checked.
    assert validator.needs_body(MODELS, "PUT", "/b/k?x-id=PutObject", auth("s3")) is False
    r = s3("PUT", "/b/k?x-id=PutObject", {"x-amz-storage-class": "CHEAP"}, None)
    assert r.operation == "PutObject" and only(r).startswith('StorageClass: "CHEAP" is not one of the model\'s values')
    assert s3("PUT", "/b/k", {"x-amz-copy-source": "b/k0"}).operation == "CopyObject"
    assert s3("PUT", "/b/k?partNumber=1&uploadId=u", {}, None).operation == "UploadPart"


# --- smithy-rpc-v2-cbor (Cloud Map, CloudWatch) ------------------------------------------------


def cbor(value) -> bytes:
    """A small CBOR encoder for the tests (definite lengths)."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    if isinstance(value, bool):
        return bytes([0xF5 if value else 0xF4])
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + __import__("struct").pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    if isinstance(value, validator.CborTag):
        return head(6, value.tag) + cbor(value.value)
    raise TypeError(value)


def cloudmap(op, value):
    headers = auth("servicediscovery") | {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"}
    return check_request(MODELS, "POST", f"/service/Route53AutoNaming_v20170314/operation/{op}", headers, cbor(value))


def test_cbor_requests_are_decoded_and_checked():
    ok = cloudmap("CreatePrivateDnsNamespace", {"Name": "app.local", "Vpc": "vpc-1", "Tags": [{"Key": "Project", "Value": "x"}]})
    assert (ok.service, ok.operation, ok.violations) == ("servicediscovery", "CreatePrivateDnsNamespace", [])
    bad = cloudmap("CreatePrivateDnsNamespace", {"Name": "app.local", "Tags": [{"Key": "", "Value": "x"}], "Colour": 1})
    assert bad.violations == [
        "Colour: not a member of the model's CreatePrivateDnsNamespaceRequest",
        "Vpc: missing, the model requires it",
        "Tags[0].Key: 0 characters, the model's minimum is 1",
    ]
    assert validator.cbor_decode(validator.cbor_encode_text_map({"message": "é" * 30})) == {"message": "é" * 30}


def test_a_cbor_timestamp_is_tag_1():
    ts = cloudmap("ListOperations", {"Filters": [{"Name": "UPDATE_DATE", "Values": ["1", "2"], "Condition": "BETWEEN"}]})
    assert ts.violations == []
    headers = auth("monitoring") | {"smithy-protocol": "rpc-v2-cbor"}
    body = {"MetricData": [{"MetricName": "m", "Value": 1.5, "Timestamp": validator.CborTag(1, 1764633600)}], "Namespace": "hcctl"}
    good = check_request(MODELS, "POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData", headers, cbor(body))
    assert (good.service, good.violations) == ("cloudwatch", [])
    body["MetricData"][0]["Timestamp"] = validator.CborTag(0, "2026-12-02T00:00:00Z")
    wrong = check_request(MODELS, "POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData", headers, cbor(body))
    assert wrong.violations == ["MetricData[0].Timestamp: CBOR tag 0, the model's type is a timestamp (tag 1, epoch seconds)"]


# --- the proxy --------------------------------------------------------------------------------


class Upstream(http.server.ThreadingHTTPServer):
    """A stand-in emulator: records each request, answers chunked or with a length."""

    daemon_threads = True

    def __init__(self):
        self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(h):
                n = int(h.headers.get("Content-Length", 0))
                self.seen.append((h.command, h.path, list(h.headers.items()), h.rfile.read(n)))
                payload = b'{"logGroups": []}' * 5000  # bigger than one proxy chunk
                h.send_response(200)
                h.send_header("Content-Type", "application/x-amz-json-1.1")
                if "chunked" in h.path:
                    h.send_header("Transfer-Encoding", "chunked")
                    h.end_headers()
                    for i in range(0, len(payload), 7000):
                        part = payload[i:i + 7000]
                        h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    h.wfile.write(b"0\r\n\r\n")
                else:
                    h.send_header("Content-Length", str(len(payload)))
                    h.end_headers()
                    h.wfile.write(payload)

        super().__init__(("127.0.0.1", 0), H)


@pytest.fixture
def running(tmp_path):
    up = Upstream()
    threading.Thread(target=up.serve_forever, daemon=True).start()
    log = proxy.Log(str(tmp_path))
    px = proxy.Server(0, f"http://127.0.0.1:{up.server_address[1]}", MODELS, log)
    threading.Thread(target=px.serve_forever, daemon=True).start()
    yield up, px, tmp_path
    px.shutdown()
    up.shutdown()


def send(conn, target, body, path="/"):
    headers = {"Host": "logs.eu-west-3.amazonaws.com", "X-Amz-Target": f"Logs_20140328.{target}",
               "Content-Type": "application/x-amz-json-1.1", "X-Amz-Date": "20261202T000000Z",
               "Authorization": auth("logs")["authorization"]}
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    return resp, resp.read(), headers


def test_the_proxy_forwards_valid_requests_unchanged_and_keeps_the_connection(running):
    up, px, state = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    body = {"logGroupNamePrefix": "/ecs/"}
    resp, data, sent = send(conn, "DescribeLogGroups", body, "/?chunked")
    assert resp.status == 200 and data == b'{"logGroups": []}' * 5000
    resp, data, _ = send(conn, "DescribeLogGroups", body)  # same client connection, length-delimited
    assert resp.status == 200 and len(data) == len(b'{"logGroups": []}') * 5000
    method, path, headers, got = up.seen[0]
    assert (method, path, got) == ("POST", "/?chunked", json.dumps(body).encode())
    forwarded = dict(headers)
    for k, v in sent.items():
        assert forwarded[k] == v, k  # Host and Authorization included: SigV4 stays valid
    lines = [json.loads(x) for x in open(os.path.join(state, proxy.LOG_NAME))]
    assert [(x["operation"], x["ok"]) for x in lines] == [("DescribeLogGroups", True)] * 2


def test_the_proxy_refuses_a_violation_without_forwarding_it(running, capsys):
    up, px, state = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    resp, data, _ = send(conn, "CreateLogGroup", {"logGroupName": "/ecs/app", "tags": {}})
    assert resp.status == 400
    assert resp.getheader("x-amzn-ErrorType") == "ModelValidationException"
    assert json.loads(data) == {"__type": "ModelValidationException", "message":
                                f"logs CreateLogGroup: tags: 0 entries, the model's minimum is 1 (botocore {BOTOCORE_VERSION})"}
    assert up.seen == []
    resp, _, _ = send(conn, "DescribeLogGroups", {})  # the connection is still usable
    assert resp.status == 200 and len(up.seen) == 1
    assert proxy.report(str(state)) == 1
    out = capsys.readouterr().out
    assert "model check: 2 requests, 2 operations of 1 services checked, 1 violations, 0 patterns not checkable" in out
    assert "VIOLATION (1x): logs CreateLogGroup: tags: 0 entries" in out


def test_a_query_violation_is_answered_in_xml(running):
    up, px, _ = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    conn.request("POST", "/", body="Action=GetRole&Version=2010-05-08",
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth("iam")["authorization"]})
    resp = conn.getresponse()
    data = resp.read().decode()
    assert resp.status == 400 and up.seen == []
    assert "<Type>Sender</Type><Code>ModelValidationException</Code>" in data
    assert "iam GetRole: RoleName: missing, the model requires it" in data


def test_a_report_of_nothing_fails(tmp_path, capsys):
    assert proxy.report(str(tmp_path)) == 1
    assert "no request went through the proxy" in capsys.readouterr().out


def test_a_report_of_valid_requests_passes(running, capsys):
    up, px, state = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    send(conn, "DescribeLogGroups", {})
    assert proxy.report(str(state)) == 0


def test_a_chunked_request_body_is_checked_and_forwarded_whole(running):
    up, px, _ = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    body = json.dumps({"logGroupNamePrefix": "/ecs/"}).encode()
    conn.request("POST", "/", body=iter([body[:5], body[5:]]), encode_chunked=True,
                 headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Authorization": auth("logs")["authorization"],
                          "Content-Type": "application/x-amz-json-1.1", "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    method, path, headers, got = up.seen[0]
    assert got == body and dict(headers)["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in dict(headers)


def test_a_request_the_check_cannot_read_is_refused_in_its_protocol(running):
    up, px, state = running
    conn = http.client.HTTPConnection("127.0.0.1", px.server_address[1], timeout=10)
    conn.request("POST", "/", body="Action=GetRoll&Version=2010-05-08",
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth("iam")["authorization"]})
    resp = conn.getresponse()
    data = resp.read().decode()
    assert resp.status == 400 and up.seen == []
    assert "<Code>ModelValidationException</Code><Message>not checked: iam: the model has no operation 'GetRoll'" in data
    line = json.loads(open(os.path.join(state, proxy.LOG_NAME)).read())
    assert (line["service"], line["ok"]) == ("", False)
