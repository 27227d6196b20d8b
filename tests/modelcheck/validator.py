"""Checks one AWS request against the published service model of its service.

The models are botocore's data (the `botocore` package pinned by scripts/modelcheck, read at run
time, never copied into the repository). `check_request` takes a request as it travels on the
wire (method, path with query, headers, body), finds its service from the SigV4 credential scope,
its operation and input members by the protocol the request speaks, and checks the input the way
AWS's own request validation does and the emulators do not: required members, the type of each
value, enums, string lengths and patterns, list/map sizes, number ranges, timestamp and blob
formats, unions, and members the model does not know. Nothing here talks to the network.

Protocols: `json` (X-Amz-Target), `rest-json` and `rest-xml` (method + URI template; S3 in path
style only), `query` and `ec2` (form bodies), `smithy-rpc-v2-cbor` (`/service/S/operation/O`).
A request the check cannot read is a violation (NotUnderstood), so that nothing passes unseen.

Messages never contain the value of a member the model marks `sensitive` (or whose name says
password/secret/token/key material): they name the member and the rule only.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
import struct
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

import botocore
import botocore.exceptions
import botocore.loaders
import regex

BOTOCORE_VERSION = botocore.__version__

# Words in a member name that mark its value as secret even when the model does not.
SECRET_WORDS = ("password", "secret", "token", "plaintext", "ciphertext", "keymaterial", "privatekey")
# Longest value excerpt a message carries (values are cut, never the member path).
EXCERPT = 60
# Enum values listed in a message at most.
ENUM_LISTED = 12


class NotUnderstood(Exception):
    """The request is not one the check can read (no SigV4 scope, unknown operation, …)."""


@dataclass
class Result:
    service: str = ""
    operation: str = ""
    protocol: str = ""
    violations: list[str] = field(default_factory=list)
    # Patterns the `regex` module could not compile: not checked, listed in the report.
    unchecked_patterns: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.violations

    def message(self) -> str:
        """One line naming the service, operation and each violation, with the model version."""
        return f"{self.service} {self.operation}: " + "; ".join(self.violations) + f" (botocore {BOTOCORE_VERSION})"


# --- models -----------------------------------------------------------------------------------


class ServiceModel:
    """One botocore service model (the raw `service-2` data) with the lookups the check needs."""

    def __init__(self, name: str, raw: dict):
        self.name = name
        self.raw = raw
        self.metadata = raw["metadata"]
        self.shapes = raw["shapes"]
        self.operations = raw["operations"]
        self.protocol = self.metadata.get("protocol", "")
        self.protocols = self.metadata.get("protocols") or [self.protocol]
        self.signing_name = self.metadata.get("signingName") or self.metadata.get("endpointPrefix", name)
        self.routes = [_Route(op) for op in self.operations.values() if "requestUri" in op.get("http", {})]

    def routes_for(self, method: str, raw_path: str, query: list[tuple[str, str]]):
        """The rest operations whose method and URI template match best (most literal text), each
        with its URI labels' values. More than one when templates are the same (S3's PutObject,
        CopyObject and UploadPart are all `PUT /{Bucket}/{Key+}`)."""
        hits = [(r, labels) for r in self.routes if (labels := r.match(method, raw_path, query)) is not None]
        if not hits:
            return []
        top = max(r.weight for r, _ in hits)
        return [(r, labels) for r, labels in hits if r.weight == top]


class _Route:
    def __init__(self, op: dict):
        self.op = op
        self.method = op["http"].get("method", "POST")
        uri = op["http"]["requestUri"]
        path, _, literal = uri.partition("?")
        self.literal_query = urllib.parse.parse_qs(literal, keep_blank_values=True)
        pattern, self.labels, literal_chars = "", [], 0
        for part in regex.split(r"(\{[^}]+\})", path):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                greedy = name.endswith("+")
                self.labels.append(name.rstrip("+"))
                pattern += "(.+)" if greedy else "([^/]+)"
            else:
                pattern += regex.escape(part)
                literal_chars += len(part)
        # A trailing slash is optional on the wire: the model says `/backup/plans/`, the Rust SDK
        # sends `/backup/plans` (both reach the same operation at AWS).
        self.regex = regex.compile(pattern.rstrip("/") + "/?")
        # More literal path and query wins over a looser template that also matches.
        self.weight = literal_chars * 10 + len(self.literal_query) * 5 - len(self.labels)

    def match(self, method: str, raw_path: str, query: list[tuple[str, str]]):
        if method != self.method:
            return None
        m = self.regex.fullmatch(raw_path)
        if not m:
            return None
        present = {}
        for k, v in query:
            present.setdefault(k, []).append(v)
        for k, vs in self.literal_query.items():
            if k not in present or (vs != [""] and present[k] != vs):
                return None
        return {name: urllib.parse.unquote(v) for name, v in zip(self.labels, m.groups())}


class Models:
    """Loads the models of the installed botocore on first use (thread-safe, cached)."""

    def __init__(self):
        self._loader = botocore.loaders.Loader()
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._models: dict[str, ServiceModel] = {}
        self._by_signing: dict[str, list[str]] | None = None

    def model(self, name: str) -> ServiceModel:
        with self._lock:
            if name not in self._models:
                self._models[name] = ServiceModel(name, self._loader.load_service_model(name, "service-2"))
            return self._models[name]

    def for_signing_name(self, signing: str) -> list[ServiceModel]:
        """The models whose signing name is `signing` (most often one, named the same)."""
        try:
            direct = self.model(signing)
            if direct.signing_name == signing:
                return [direct]
        except botocore.exceptions.UnknownServiceError:
            pass
        names = list(self.signing_index().get(signing, []))
        return [self.model(n) for n in names]

    def signing_index(self) -> dict[str, list[str]]:
        """Signing name -> service names, over every model botocore ships (~10 s to build: the
        proxy builds it in the background at start-up, for services named otherwise than they
        sign, e.g. EFS signs as `elasticfilesystem`, CloudWatch as `monitoring`)."""
        with self._index_lock:
            if self._by_signing is None:
                index: dict[str, list[str]] = {}
                for name in self._loader.list_available_services("service-2"):
                    meta = self._loader.load_service_model(name, "service-2")["metadata"]
                    key = meta.get("signingName") or meta.get("endpointPrefix", name)
                    index.setdefault(key, []).append(name)
                self._by_signing = index
            return self._by_signing


# --- the request ------------------------------------------------------------------------------


def signing_scope(headers: dict[str, str], query: list[tuple[str, str]]) -> str:
    """The service of the SigV4 credential scope (header, or presigned query)."""
    auth = headers.get("authorization", "")
    cred = ""
    if "Credential=" in auth:
        cred = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        cred = dict(query).get("X-Amz-Credential", "")
    parts = cred.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise NotUnderstood("no SigV4 credential scope (Authorization: … Credential=AK/DATE/REGION/SERVICE/aws4_request)")
    return parts[3]


def check_request(models: Models, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Result:
    """Check one request. `headers` keys are lower case; `body` None means not read (a payload)."""
    raw_path, _, raw_query = target.partition("?")
    query = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    signing = signing_scope(headers, query)
    candidates = models.for_signing_name(signing)
    if not candidates:
        raise NotUnderstood(f"no botocore model signs as {signing!r}")
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    amz_target = headers.get("x-amz-target", "")
    if headers.get("smithy-protocol", "") == "rpc-v2-cbor":
        return _check_cbor(candidates, raw_path, body)
    if amz_target:
        prefix, _, op_name = amz_target.rpartition(".")
        for m in candidates:
            if m.metadata.get("targetPrefix") == prefix and "json" in m.protocols:
                return _check_json(m, op_name, body)
        raise NotUnderstood(f"{signing}: no json model has the target prefix {prefix!r}")
    if ctype == "application/x-www-form-urlencoded" or (method == "GET" and dict(query).get("Action")):
        form = urllib.parse.parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True) if method != "GET" else query
        for m in candidates:
            if m.protocol in ("query", "ec2") or "query" in m.protocols:
                return _check_query(m, form, ec2=m.protocol == "ec2")
        raise NotUnderstood(f"{signing}: a form request, but no query model")
    for m in candidates:
        if m.protocol in ("rest-json", "rest-xml"):
            return _check_rest(m, method, raw_path, query, headers, body)
    raise NotUnderstood(f"{signing}: neither an X-Amz-Target, a form body nor a rest model's URI")


def needs_body(models: Models, method: str, target: str, headers: dict[str, str]) -> bool:
    """False when the request's body is a rest payload the check does not read (e.g. a blob)."""
    try:
        raw_path, _, raw_query = target.partition("?")
        query = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        for m in models.for_signing_name(signing_scope(headers, query)):
            if m.protocol in ("rest-json", "rest-xml") and not headers.get("x-amz-target"):
                # A payload that is not a structure (a blob, an object's bytes) is streamed.
                for route, _ in m.routes_for(method, raw_path, query):
                    shape = m.shapes.get(route.op.get("input", {}).get("shape", ""), {})
                    payload = shape.get("payload")
                    if payload and m.shapes[shape["members"][payload]["shape"]]["type"] != "structure":
                        return False
    except (NotUnderstood, KeyError, botocore.exceptions.UnknownServiceError):
        pass
    return True


# --- protocols --------------------------------------------------------------------------------


def _op(m: ServiceModel, name: str) -> dict:
    op = m.operations.get(name)
    if op is None:
        raise NotUnderstood(f"{m.name}: the model has no operation {name!r}")
    return op


def _check_json(m: ServiceModel, op_name: str, body: bytes | None) -> Result:
    op = _op(m, op_name)
    res = Result(m.name, op_name, "json")
    v = _Validator(m, res, json_keys=True)
    doc = _load_json(body, res) if (body or b"").strip() else {}
    if doc is _BAD:
        return res
    if "input" in op:
        v.structure(op["input"]["shape"], doc, "", False)
    elif doc:
        res.violations.append("the body has members, the model's operation has no input")
    return res


def _check_rest(m, method, raw_path, query, headers, body) -> Result:
    hits = m.routes_for(method, raw_path, query)
    if not hits:
        raise NotUnderstood(f"{m.name}: no operation's URI template matches {method} {raw_path}")
    # S3's SDKs name the operation in `x-id` (botocore's templates lack it); otherwise, among
    # templates that are the same, the operation the request fits best.
    x_id = dict(query).get("x-id")
    named = [h for h in hits if h[0].op["name"] == x_id]
    if named:
        hits = named
    results = [_check_rest_op(m, route, labels, query, headers, body, x_id) for route, labels in hits]
    return min(results, key=lambda r: len(r.violations))


def _check_rest_op(m, route, labels, query, headers, body, x_id) -> Result:
    op = route.op
    res = Result(m.name, op["name"], m.protocol)
    if "input" not in op:
        return res
    xml = m.protocol == "rest-xml"
    # JSON bodies keep their wire keys below the top level; the XML reader keys by member name.
    v = _Validator(m, res, json_keys=not xml)
    name = op["input"]["shape"]
    shape = m.shapes[name]
    members = shape.get("members", {})
    values: dict[str, Any] = {}
    query_seen = set(route.literal_query)
    if x_id == op["name"]:
        query_seen.add("x-id")
    query_map_member = None
    body_members = {}
    for mname, mem in members.items():
        loc, wire = mem.get("location"), mem.get("locationName", mname)
        mshape = m.shapes[mem["shape"]]
        if loc == "uri":
            if wire in labels:
                values[mname] = v.from_text(mem, labels[wire], mname, "iso8601")
        elif loc == "querystring":
            if mshape["type"] == "map":
                query_map_member = mname
                continue
            got = [val for k, val in query if k == wire]
            query_seen.add(wire)
            if got:
                if mshape["type"] == "list":
                    values[mname] = [v.from_text(mshape["member"], x, f"{mname}[{i}]", "iso8601") for i, x in enumerate(got)]
                else:
                    values[mname] = v.from_text(mem, got[0], mname, "iso8601")
        elif loc == "header":
            if wire.lower() in headers:
                text = headers[wire.lower()]
                if mshape["type"] == "list":
                    values[mname] = [v.from_text(mshape["member"], x.strip(), mname, "rfc822") for x in text.split(",")]
                else:
                    values[mname] = v.from_text(mem, text, mname, "rfc822")
        elif loc == "headers":
            prefix = wire.lower()
            found = {k[len(prefix):]: val for k, val in headers.items() if k.startswith(prefix)}
            if found:
                values[mname] = found
        elif loc == "statusCode":
            continue
        else:
            body_members[mname] = mem
    if query_map_member is not None:
        values[query_map_member] = {k: val for k, val in query if k not in query_seen}
    else:
        for k, _ in query:
            if k not in query_seen:
                res.violations.append(f"query parameter {_q(k)}: not a member of the model's {name}")
    payload = shape.get("payload")
    if xml:
        _xml_body(m, res, v, name, payload, body_members, body, values)
    elif payload:
        pmem = members[payload]
        if m.shapes[pmem["shape"]]["type"] == "structure" and body and body.strip():
            values[payload] = _load_json(body, res)
        elif body is None or (body and body.strip()):
            values[payload] = _NOT_READ
    elif body and body.strip():
        doc = _load_json(body, res)
        if doc is _BAD:
            doc = {}
        elif not isinstance(doc, dict):
            res.violations.append(f"the body is {_kind(doc)}, the model's input is a JSON object")
            doc = {}
        wire_names = {mem.get("locationName", n): n for n, mem in body_members.items()}
        for k, val in doc.items():
            if k not in wire_names:
                res.violations.append(f"{k}: not a member of the model's {name}")
            else:
                values[wire_names[k]] = val
    # The members are now keyed by member name; nested values keep their JSON keys.
    v.structure(name, values, "", False, top_keys_are_names=True)
    return res


def _load_json(body: bytes, res: Result):
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        res.violations.append(f"the body is not JSON ({e.msg} at byte {e.pos})")
    except UnicodeDecodeError as e:
        res.violations.append(f"the body is not UTF-8 JSON ({e.reason} at byte {e.start})")
    return _BAD


def wire_protocol(headers: dict[str, str]) -> str:
    """The protocol a request speaks by its headers alone, for the error answered to a request the
    check cannot read (so the SDK still parses the error)."""
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if headers.get("x-amz-target"):
        return "json"
    if headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
        return "query"
    return ""


def _check_query(m: ServiceModel, form: list[tuple[str, str]], ec2: bool) -> Result:
    params: dict[str, str] = {}
    res = Result(m.name, "", m.protocol)
    for k, val in form:
        if k in params:
            res.violations.append(f"parameter {_q(k)}: sent twice")
        params[k] = val
    action = params.pop("Action", "")
    res.operation = action
    op = _op(m, action)
    version = params.pop("Version", None)
    if version != m.metadata.get("apiVersion"):
        res.violations.append(f"Version: {version!r}, the model's API version is {m.metadata.get('apiVersion')!r}")
    parser = _QueryParser(m, params, ec2, res)
    v = _Validator(m, res, json_keys=False)
    if "input" in op:
        value = parser.structure(op["input"]["shape"], "")
        v.structure(op["input"]["shape"], value, "", False)
    for k in sorted(set(params) - parser.consumed):
        res.violations.append(f"parameter {_q(k)}: not a member of the model's {op.get('input', {}).get('shape', action + ' (no input)')}")
    return res


def _xml_body(m, res, v, shape_name, payload, body_members, body, values):
    """rest-xml: the payload member's element, or the input's own root element for body members."""
    shape = m.shapes[shape_name]
    if payload:
        pmem = shape["members"][payload]
        if m.shapes[pmem["shape"]]["type"] != "structure":
            if body is None or body.strip():
                values[payload] = _NOT_READ
            return
        root_name, target, only = pmem.get("locationName", payload), pmem["shape"], None
    else:
        root_name, target, only = shape.get("locationName", ""), None, set(body_members)
    if not body or not body.strip():
        return
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        res.violations.append(f"the body is not XML ({e})")
        return
    reader = _XmlReader(m, res, v)
    if root_name and _local(root.tag) != root_name:
        res.violations.append(f"the body's root element is <{_local(root.tag)}>, the model's is <{root_name}>")
        return
    if target:
        values[payload] = reader.structure(target, root, payload)
    else:
        values.update(reader.structure(shape_name, root, "", only))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _XmlReader:
    """Rebuilds a structure from a rest-xml body (the reverse of botocore's RestXMLSerializer:
    locationName, wrapped or flattened lists and maps, xmlAttribute members)."""

    def __init__(self, m, res, v):
        self.m, self.res, self.v = m, res, v

    def structure(self, shape_name, elem, path, only=None) -> dict:
        out, used = {}, set()
        children = list(elem)
        for mname, mem in self.m.shapes[shape_name].get("members", {}).items():
            if only is not None and mname not in only:
                continue
            name = mem.get("locationName", mname)
            mpath = _join(path, mname)
            if mem.get("xmlAttribute"):
                local = name.split(":")[-1]
                for k, val in elem.attrib.items():
                    if _local(k) == local:
                        out[mname] = self.v.from_text(mem, val, mpath, "iso8601")
                continue
            mshape = self.m.shapes[mem["shape"]]
            els = [c for c in children if _local(c.tag) == name]
            used.update(id(c) for c in els)
            if not els:
                continue
            if mshape.get("flattened") or mem.get("flattened"):
                if mshape["type"] == "list":
                    out[mname] = [self.value(mshape["member"], c, f"{mpath}[{i}]") for i, c in enumerate(els)]
                    continue
                if mshape["type"] == "map":
                    out[mname] = dict(self.entry(mshape, c, mpath) for c in els)
                    continue
            if len(els) > 1:
                self.res.violations.append(f"{mpath}: {len(els)} elements, the model has one")
            out[mname] = self.value(mem, els[0], mpath)
        for c in children:
            if id(c) not in used:
                self.res.violations.append(f"{_join(path, _local(c.tag))}: not a member of the model's {shape_name}")
        return out

    def entry(self, shape, elem, path):
        kname = shape["key"].get("locationName", "key")
        vname = shape["value"].get("locationName", "value")
        k = next((c.text or "" for c in elem if _local(c.tag) == kname), None)
        vel = next((c for c in elem if _local(c.tag) == vname), None)
        if k is None:
            self.res.violations.append(f"{path}: an entry without <{kname}>")
            return ("", _BAD)
        return (k, self.value(shape["value"], vel, f"{path}[{_excerpt(k)}]") if vel is not None else None)

    def value(self, ref, elem, path):
        shape = self.m.shapes[ref["shape"]]
        t = shape["type"]
        if t == "structure":
            return self.structure(ref["shape"], elem, path)
        if t == "list":
            item = shape["member"].get("locationName", "member")
            out = []
            for c in elem:
                if _local(c.tag) != item:
                    self.res.violations.append(f"{path}: element <{_local(c.tag)}>, the model's list items are <{item}>")
                    continue
                out.append(self.value(shape["member"], c, f"{path}[{len(out)}]"))
            return out
        if t == "map":
            return dict(self.entry(shape, c, path) for c in elem if _local(c.tag) == "entry")
        return self.v.from_text(ref, elem.text or "", path, "iso8601")


# --- smithy-rpc-v2-cbor -----------------------------------------------------------------------


class CborTag:
    def __init__(self, tag: int, value):
        self.tag, self.value = tag, value


_BREAK = object()


def cbor_decode(data: bytes):
    """One CBOR data item (RFC 8949), the whole of `data`; ValueError when it is not."""
    value, end = _cbor_item(data, 0)
    if value is _BREAK or end != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _cbor_item(d: bytes, i: int):
    if i >= len(d):
        raise ValueError("the CBOR item is cut off")
    ib = d[i]
    major, info = ib >> 5, ib & 31
    i += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None, 23: None}
        if info in simple:
            return simple[info], i
        sizes = {25: (">e", 2), 26: (">f", 4), 27: (">d", 8)}
        if info in sizes:
            fmt, n = sizes[info]
            return struct.unpack(fmt, d[i:i + n])[0], i + n
        if info == 31:
            return _BREAK, i
        raise ValueError(f"CBOR simple value {info}")
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        if i + n > len(d):
            raise ValueError("the CBOR item is cut off")
        arg, i = int.from_bytes(d[i:i + n], "big"), i + n
    elif info == 31 and major in (2, 3, 4, 5):
        arg = None  # indefinite length
    else:
        raise ValueError(f"CBOR additional information {info}")
    if major == 0:
        return arg, i
    if major == 1:
        return -1 - arg, i
    if major in (2, 3):
        if arg is None:
            parts = []
            while True:
                part, i = _cbor_item(d, i)
                if part is _BREAK:
                    break
                parts.append(part)
            raw = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
        else:
            if i + arg > len(d):
                raise ValueError("the CBOR item is cut off")
            raw, i = d[i:i + arg], i + arg
        return (raw.decode("utf-8") if major == 3 else bytes(raw)), i
    if major == 4:
        out = []
        while arg is None or len(out) < arg:
            item, i = _cbor_item(d, i)
            if item is _BREAK:
                if arg is None:
                    break
                raise ValueError("a CBOR break inside a definite array")
            out.append(item)
        return out, i
    if major == 5:
        out = {}
        while arg is None or len(out) < arg:
            k, i = _cbor_item(d, i)
            if k is _BREAK and arg is None:
                break
            val, i = _cbor_item(d, i)
            out[k] = val
        return out, i
    value, i = _cbor_item(d, i)  # major 6: a tag
    return CborTag(arg, value), i


def cbor_encode_text_map(m: dict[str, str]) -> bytes:
    """A CBOR map of text to text (the error body the proxy answers with)."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError(n)
    out = head(5, len(m))
    for k, val in m.items():
        for text in (k, val):
            raw = text.encode("utf-8")
            out += head(3, len(raw)) + raw
    return out


def _check_cbor(candidates, raw_path, body) -> Result:
    parts = raw_path.split("/")
    if len(parts) < 5 or parts[-4] != "service" or parts[-2] != "operation":
        raise NotUnderstood(f"an rpc-v2-cbor request to {raw_path}, not /service/NAME/operation/NAME")
    service, op_name = parts[-3], parts[-1]
    for m in candidates:
        if "smithy-rpc-v2-cbor" in m.protocols and m.metadata.get("targetPrefix") == service:
            break
    else:
        raise NotUnderstood(f"no rpc-v2-cbor model has the service name {service!r}")
    op = _op(m, op_name)
    res = Result(m.name, op_name, "smithy-rpc-v2-cbor")
    try:
        doc = cbor_decode(body) if body else {}
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        res.violations.append(f"the body is not CBOR ({e})")
        return res
    if "input" in op:
        _Validator(m, res, json_keys=True).structure(op["input"]["shape"], doc, "", False)
    elif doc:
        res.violations.append("the body has members, the model's operation has no input")
    return res


class _Bad:
    """A value that could not even be read as its type (already reported)."""


_BAD = _Bad()
_NOT_READ = object()  # a payload body the check does not read


class _QueryParser:
    """Rebuilds the input structure from flat query parameters (the reverse of botocore's
    QuerySerializer/EC2Serializer: `A.member.N`, `A.entry.N.key`, flattened lists, locationName,
    and for ec2 `A.N` lists and capitalised or `queryName` names)."""

    def __init__(self, m, params, ec2, res):
        self.m, self.params, self.ec2, self.res = m, params, ec2, res
        self.consumed: set[str] = set()
        self.v = _Validator(m, res, json_keys=False)

    def _name(self, ref: dict, default: str) -> str:
        if self.ec2:
            if "queryName" in ref:
                return ref["queryName"]
            if "locationName" in ref:
                n = ref["locationName"]
                return n[:1].upper() + n[1:]
            return default[:1].upper() + default[1:]
        return ref.get("locationName", default)

    def _present(self, key: str) -> bool:
        dot = key + "."
        return key in self.params or any(k.startswith(dot) for k in self.params)

    def value(self, ref: dict, key: str, path: str):
        shape = self.m.shapes[ref["shape"]]
        t = shape["type"]
        if t == "structure":
            return self.structure(ref["shape"], key, path)
        if t == "list":
            return self.list(shape, key, path)
        if t == "map":
            return self.map(shape, key, path)
        self.consumed.add(key)
        return self.v.from_text(ref, self.params[key], path, "iso8601")

    def structure(self, shape_name: str, prefix: str, path: str = "") -> dict:
        out = {}
        for mname, mem in self.m.shapes[shape_name].get("members", {}).items():
            key = self._name(mem, mname)
            key = f"{prefix}.{key}" if prefix else key
            if self._present(key):
                out[mname] = self.value(mem, key, _join(path, mname))
        return out

    def _indices(self, base: str) -> list[int]:
        found = set()
        dot = base + "."
        for k in self.params:
            if k.startswith(dot):
                head = k[len(dot):].split(".", 1)[0]
                if head.isdigit():
                    found.add(int(head))
        idx = sorted(found)
        if idx and idx != list(range(1, len(idx) + 1)):
            self.res.violations.append(f"{base}: list indices {idx[:5]}…, the protocol numbers them 1..N")
        return idx

    def list(self, shape: dict, key: str, path: str) -> list:
        if self.params.get(key) == "":
            self.consumed.add(key)
            return []
        member = shape["member"]
        if self.ec2:
            base = key
        elif shape.get("flattened"):
            base = key
            if "locationName" in member:
                base = ".".join(key.split(".")[:-1] + [member["locationName"]])
        else:
            base = f"{key}.{member.get('locationName', 'member')}"
        # Paths in messages are the model's member names (`Tags[0].Key`), as in the other protocols.
        return [self.value(member, f"{base}.{i}", f"{path}[{n}]") for n, i in enumerate(self._indices(base))]

    def map(self, shape: dict, key: str, path: str) -> dict:
        base = key if shape.get("flattened") else f"{key}.entry"
        kname = shape["key"].get("locationName", "key")
        vname = shape["value"].get("locationName", "value")
        out = {}
        for i in self._indices(base):
            kkey, vkey = f"{base}.{i}.{kname}", f"{base}.{i}.{vname}"
            if kkey not in self.params:
                self.res.violations.append(f"{kkey}: missing, each map entry has a key")
                continue
            self.consumed.add(kkey)
            k = self.params[kkey]
            out[k] = self.value(shape["value"], vkey, f"{path}[{_excerpt(k)}]") if self._present(vkey) else None
        return out


# --- the checks -------------------------------------------------------------------------------


class _Validator:
    def __init__(self, m: ServiceModel, res: Result, json_keys: bool):
        self.m, self.res, self.json_keys = m, res, json_keys

    def bad(self, path: str, text: str):
        self.res.violations.append(f"{path or '(input)'}: {text}")

    def _secret(self, ref: dict, path: str) -> bool:
        shape = self.m.shapes.get(ref.get("shape", ""), {})
        flat = path.lower().replace("_", "")
        return bool(ref.get("sensitive") or shape.get("sensitive")) or any(w in flat for w in SECRET_WORDS)

    def _show(self, value, secret: bool) -> str:
        return "the value" if secret else _excerpt(value)

    def from_text(self, ref: dict, text: str, path: str, default_ts: str):
        """A scalar sent as text (query, URI, header) turned into its typed value."""
        shape = self.m.shapes[ref["shape"]]
        t = shape["type"]
        try:
            if t in ("integer", "long", "short", "byte"):
                return int(text)
            if t in ("float", "double"):
                return float(text)
            if t == "boolean":
                if text not in ("true", "false"):
                    raise ValueError
                return text == "true"
            if t == "timestamp":
                fmt = ref.get("timestampFormat") or shape.get("timestampFormat") or default_ts
                _parse_timestamp(text, fmt)
                return _TextTimestamp(text)
            if t == "blob":
                return _TextBlob(base64.b64decode(text, validate=True) if default_ts == "iso8601" else text.encode())
        except (ValueError, TypeError):
            self.bad(path, f"{self._show(text, self._secret(ref, path))} is not a valid {t}")
            return _BAD
        return text

    def structure(self, shape_name: str, value, path: str, secret: bool, top_keys_are_names: bool = False):
        shape = self.m.shapes[shape_name]
        if not isinstance(value, dict):
            self.bad(path, f"{_kind(value)}, the model's type is a structure ({shape_name})")
            return
        members = shape.get("members", {})
        if self.json_keys and not top_keys_are_names:
            by_wire = {mem.get("locationName", n): n for n, mem in members.items()}
        else:
            by_wire = {n: n for n in members}
        given = {}
        for k, val in value.items():
            if k not in by_wire:
                self.bad(_join(path, k), f"not a member of the model's {shape_name}")
            elif val is not None:
                given[by_wire[k]] = val
        for req in shape.get("required", []):
            if req not in given:
                self.bad(_join(path, req), "missing, the model requires it")
        if shape.get("union") and len(given) != 1:
            self.bad(path, f"{len(given)} members set, the model's union {shape_name} takes exactly one")
        for n, val in given.items():
            mem = members[n]
            self.value(mem, val, _join(path, n), secret or self._secret(mem, _join(path, n)))

    def value(self, ref: dict, val, path: str, secret: bool):
        if val is _BAD or val is _NOT_READ:
            return
        name = ref["shape"]
        shape = self.m.shapes[name]
        t = shape["type"]
        if t == "structure":
            return self.structure(name, val, path, secret)
        if t == "list":
            if not isinstance(val, list):
                return self.bad(path, f"{_kind(val)}, the model's type is a list")
            self._size(shape, len(val), path, "items")
            for i, el in enumerate(val):
                self.value(shape["member"], el, f"{path}[{i}]", secret)
            return
        if t == "map":
            if not isinstance(val, dict):
                return self.bad(path, f"{_kind(val)}, the model's type is a map")
            self._size(shape, len(val), path, "entries")
            for k, el in val.items():
                self.value(shape["key"], k, f"{path} key {_excerpt(k)}", secret)
                if el is not None:
                    self.value(shape["value"], el, f"{path}[{_excerpt(k)}]", secret)
            return
        if t == "string":
            if not isinstance(val, str):
                return self.bad(path, f"{_kind(val)}, the model's type is a string")
            if "enum" in shape and val not in shape["enum"]:
                allowed = ", ".join(shape["enum"][:ENUM_LISTED]) + (", …" if len(shape["enum"]) > ENUM_LISTED else "")
                self.bad(path, f"{self._show(val, secret)} is not one of the model's values ({allowed})")
            self._size(shape, len(val), path, "characters")
            self._pattern(shape, val, path, secret)
            return
        if t in ("integer", "long", "short", "byte"):
            if isinstance(val, bool) or not isinstance(val, int):
                return self.bad(path, f"{_kind(val)}, the model's type is {t}")
            self._range(shape, val, path, secret)
            return
        if t in ("float", "double"):
            if isinstance(val, bool) or not isinstance(val, (int, float)) and val not in ("NaN", "Infinity", "-Infinity"):
                return self.bad(path, f"{_kind(val)}, the model's type is {t}")
            if isinstance(val, (int, float)):
                self._range(shape, val, path, secret)
            return
        if t == "boolean":
            if not isinstance(val, bool):
                self.bad(path, f"{_kind(val)}, the model's type is boolean")
            return
        if t == "timestamp":
            if isinstance(val, _TextTimestamp):
                return
            if isinstance(val, CborTag):
                if val.tag != 1 or isinstance(val.value, bool) or not isinstance(val.value, (int, float)):
                    return self.bad(path, f"CBOR tag {val.tag}, the model's type is a timestamp (tag 1, epoch seconds)")
                return
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                # A JSON body's timestamps are epoch seconds unless the model says otherwise.
                fmt = ref.get("timestampFormat") or shape.get("timestampFormat")
                if isinstance(val, str) and fmt:
                    try:
                        _parse_timestamp(val, fmt)
                        return
                    except ValueError:
                        pass
                return self.bad(path, f"{_kind(val)}, the model's type is a timestamp (epoch seconds)")
            return
        if t == "blob":
            if isinstance(val, _TextBlob):
                data = val.data
            elif isinstance(val, bytes):
                data = val
            elif isinstance(val, str):
                try:
                    data = base64.b64decode(val, validate=True)
                except ValueError:
                    return self.bad(path, "not base64, the model's type is a blob")
            else:
                return self.bad(path, f"{_kind(val)}, the model's type is a blob (base64)")
            self._size(shape, len(data), path, "bytes")
            return
        # document and anything newer: any JSON value.

    def _size(self, shape, n, path, unit):
        if "min" in shape and n < shape["min"]:
            self.bad(path, f"{n} {unit}, the model's minimum is {_num(shape['min'])}")
        if "max" in shape and n > shape["max"]:
            self.bad(path, f"{n} {unit}, the model's maximum is {_num(shape['max'])}")

    def _range(self, shape, n, path, secret):
        if "min" in shape and n < shape["min"]:
            self.bad(path, f"{self._show(n, secret)} is below the model's minimum {_num(shape['min'])}")
        if "max" in shape and n > shape["max"]:
            self.bad(path, f"{self._show(n, secret)} is above the model's maximum {_num(shape['max'])}")

    def _pattern(self, shape, val, path, secret):
        p = shape.get("pattern")
        if p is None:
            return
        compiled = _compile(p)
        if compiled is None:
            self.res.unchecked_patterns.add(p)
            return
        # AWS's request validation matches the whole value (Java's Pattern.matches), so a
        # pattern without anchors still has to cover all of it.
        try:
            matched = compiled.fullmatch(val, timeout=1.0)
        except TimeoutError:
            self.res.unchecked_patterns.add(p)
            return
        if matched is None:
            self.bad(path, f"{self._show(val, secret)} does not match the model's pattern {p}")


_PATTERNS: dict[str, Any] = {}
_PATTERNS_LOCK = threading.Lock()


# Java's \w, \d and \s are ASCII-only (without UNICODE_CHARACTER_CLASS); Python's are Unicode, and
# the ASCII flag would make \p{L} ASCII-only too. So these three are spelled out.
_JAVA_CLASSES = {"w": "a-zA-Z0-9_", "d": "0-9", "s": " \\t\\n\\x0B\\f\\r"}


def java_pattern(p: str) -> str:
    """A Java regex rewritten for the `regex` module where the two differ (\\w, \\d, \\s)."""
    out, i, depth = [], 0, 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            e = p[i + 1]
            if e.lower() in _JAVA_CLASSES:
                chars = _JAVA_CLASSES[e.lower()]
                if e.islower():
                    out.append(chars if depth else f"[{chars}]")
                elif not depth:
                    out.append(f"[^{chars}]")
                else:
                    out.append(p[i:i + 2])  # a negated class inside a class: left as it is
            else:
                out.append(p[i:i + 2])
            i += 2
            continue
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        out.append(c)
        i += 1
    return "".join(out)


def _compile(p: str):
    """The pattern compiled by `regex` (Java-like: \\p{L}, possessive quantifiers), or None."""
    with _PATTERNS_LOCK:
        if p not in _PATTERNS:
            try:
                _PATTERNS[p] = regex.compile(java_pattern(p))
            except (regex.error, ValueError, OverflowError):
                _PATTERNS[p] = None
        return _PATTERNS[p]


class _TextTimestamp(str):
    """A timestamp already checked in its text form (query, header, URI)."""


class _TextBlob:
    def __init__(self, data: bytes):
        self.data = data


def _parse_timestamp(text: str, fmt: str):
    if fmt == "unixTimestamp":
        float(text)
    elif fmt == "rfc822":
        if email.utils.parsedate_to_datetime(text) is None:
            raise ValueError(text)
    else:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(val) -> str:
    if val is None:
        return "null"
    if isinstance(val, bool):
        return "a boolean"
    if isinstance(val, int):
        return "an integer"
    if isinstance(val, float):
        return "a number"
    if isinstance(val, str):
        return "a string"
    if isinstance(val, list):
        return "a list"
    if isinstance(val, dict):
        return "an object"
    return type(val).__name__


def _excerpt(val) -> str:
    text = val if isinstance(val, str) else json.dumps(val)
    if len(text) > EXCERPT:
        text = text[:EXCERPT] + "…"
    return json.dumps(text, ensure_ascii=False) if isinstance(val, str) else text


def _q(k: str) -> str:
    return _excerpt(k)


def _num(n) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)
