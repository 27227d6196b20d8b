"""A loopback proxy that checks every AWS request against AWS's service models before the emulator sees it.

The emulators accept almost anything, so a green suite could hide requests real AWS refuses.
scripts/modelcheck starts this proxy in front of each emulator (one listener per upstream, all on
127.0.0.1) and points the suite's AWS_ENDPOINT_URL* at it. Each request is read whole (bounded),
checked by validator.check_request against the botocore model of its service, and then:
- valid: forwarded unchanged (method, path, query, headers including Host and Authorization, so
  SigV4 stays valid; body) and the upstream's answer streamed back (keep-alive, HTTP/1.1,
  Content-Length or chunked);
- a violation, or a request the check cannot read: NOT forwarded; answered with an AWS-style
  client error (HTTP 400, ModelValidationException) in the service's protocol, whose message names
  service, operation, member and rule, so the SDK call, hcctl, and the test that sent it fail.
Every request is one line of `requests.jsonl` in the state directory (service, operation, ok or
the message; never a header, a secret or a body). `proxy.py report DIR` sums the lines up.

    proxy.py serve --state DIR --listen PORT=http://127.0.0.1:4567 [--listen …]
    proxy.py report DIR          exit 1 on any violation, or when nothing was checked
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validator  # noqa: E402

# Largest request body read for checking. AWS's own API request limits are far below this (ECS
# 64 KiB, Secrets Manager 64 KiB secrets, …); a rest payload (e.g. an S3 object) is streamed instead.
MAX_CHECKED_BODY = 16 * 1024 * 1024
CHUNK = 64 * 1024
# An idle client connection is closed after this, so that threads do not pile up.
IDLE_TIMEOUT = 300
# Hop-by-hop headers (RFC 9110 7.6.1): they belong to one connection, never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade", "expect"}
LOG_NAME = "requests.jsonl"


class Log:
    """The JSONL log and the running counts, shared by all listeners of the process."""

    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, LOG_NAME)
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "violations": 0}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.file = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, record: dict):
        with self.lock:
            self.counts["requests"] += 1
            self.counts["violations"] += 0 if record["ok"] else 1
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream: str, models: validator.Models, log: Log):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"modelcheck: upstream {upstream!r}: only http://host:port upstreams are proxied")
        self.upstream = (u.hostname, u.port or 80)
        self.upstream_url = upstream
        self.models = models
        self.log = log
        super().__init__(("127.0.0.1", port), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: Server

    def setup(self):
        super().setup()
        self.upstream_conn: http.client.HTTPConnection | None = None

    def log_message(self, fmt, *args):  # the JSONL log is the record; errors only on stderr
        pass

    def finish(self):
        if self.upstream_conn is not None:
            self.upstream_conn.close()
        super().finish()

    def do_GET(self):
        self.handle_one()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # -- request ---------------------------------------------------------------------------

    def handle_one(self):
        headers = {k.lower(): v for k, v in self.headers.items()}
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers.get("content-length", "0") or 0) if not chunked else None
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "upstream": self.server.upstream_url,
                  "method": self.command, "service": "", "operation": "", "ok": False, "message": ""}
        models = self.server.models
        read_whole = validator.needs_body(models, self.command, self.path, headers)
        body = None
        # A body left unread makes the connection unusable after a refusal.
        self.body_pending = bool(length or chunked)
        if read_whole:
            body = self.read_body(length, chunked)
            self.body_pending = body is None
            if body is None:
                return self.refuse(record, "", f"request body over {MAX_CHECKED_BODY} bytes, more than the check reads")
        try:
            result = validator.check_request(models, self.command, self.path, headers, body)
        except validator.NotUnderstood as e:
            return self.refuse(record, validator.wire_protocol(headers),
                               f"not checked: {e} (botocore {validator.BOTOCORE_VERSION})")
        except Exception as e:  # a bug of the check must fail the test, not pass the request
            return self.refuse(record, validator.wire_protocol(headers),
                               f"the model check failed on this request: {type(e).__name__}: {e}")
        record.update(service=result.service, operation=result.operation,
                      unchecked_patterns=sorted(result.unchecked_patterns))
        if not result.ok:
            return self.refuse(record, result.protocol, result.message())
        record["ok"] = True
        self.forward(record, headers, body, length, chunked)

    def read_body(self, length, chunked) -> bytes | None:
        if not chunked:
            if length > MAX_CHECKED_BODY:
                return None
            return self.rfile.read(length) if length else b""
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_CHECKED_BODY:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)

    def refuse(self, record: dict, protocol: str, message: str):
        record["message"] = message
        self.server.log.write(record)
        sys.stderr.write(f"modelcheck: {message}\n")
        request_id = str(uuid.uuid4())
        if protocol in ("query",):
            ctype = "text/xml"
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>ModelValidationException</Code>"
                    f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        elif protocol == "ec2":
            ctype = "text/xml"
            body = (f"<Response><Errors><Error><Code>ModelValidationException</Code><Message>{escape(message)}"
                    f"</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        elif protocol == "rest-xml":
            ctype = "application/xml"
            body = (f"<Error><Code>ModelValidationException</Code><Message>{escape(message)}</Message>"
                    f"<RequestId>{request_id}</RequestId></Error>")
        elif protocol == "smithy-rpc-v2-cbor":
            ctype = "application/cbor"
            body = validator.cbor_encode_text_map({"__type": "ModelValidationException", "message": message})
        else:  # json, rest-json, and anything not understood: the JSON shape all SDKs read
            ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
            body = json.dumps({"__type": "ModelValidationException", "message": message})
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(400)
        if protocol == "smithy-rpc-v2-cbor":
            self.send_header("smithy-protocol", "rpc-v2-cbor")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-ErrorType", "ModelValidationException")
        self.send_header("x-amzn-RequestId", request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if self.body_pending:
            self.close_connection = True

    # -- forwarding ------------------------------------------------------------------------

    def forward(self, record, headers, body, length, chunked):
        out_headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if body is not None and chunked:
            out_headers.append(("Content-Length", str(len(body))))
        for attempt in (1, 2):
            conn = self.upstream_conn
            reused = conn is not None
            if conn is None:
                conn = self.upstream_conn = http.client.HTTPConnection(*self.server.upstream, timeout=IDLE_TIMEOUT)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in out_headers:
                    conn.putheader(k, v)
                if body is None and chunked:
                    conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                if body is not None:
                    conn.send(body)
                else:
                    self.stream_request_body(conn, length, chunked)
                resp = conn.getresponse()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    http.client.BadStatusLine, socket.timeout, OSError) as e:
                conn.close()
                self.upstream_conn = None
                # A kept-alive upstream connection may have been closed meanwhile: one retry on a new
                # one, but only when the body is still in hand (a streamed body cannot be sent twice).
                stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                                       http.client.CannotSendRequest))
                if attempt == 2 or body is None or not (reused and stale):
                    # The request was valid: an upstream failure is the test's to see, not a violation.
                    record["message"] = f"upstream {self.server.upstream_url} failed: {e}"
                    self.server.log.write(record)
                    self.close_connection = True
                    return self.send_error(502, f"modelcheck: upstream {self.server.upstream_url} failed: {e}")
        self.server.log.write(record)
        self.send_response_only(resp.status, resp.reason)
        resp_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        has_length = any(k.lower() == "content-length" for k, _ in resp_headers)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        for k, v in resp_headers:
            self.send_header(k, v)
        rechunk = not no_body and not has_length
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        if resp.will_close:
            # The upstream closes after this answer; the client connection can stay open.
            self.upstream_conn = None
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if no_body:
            resp.read() if self.command != "HEAD" else None
            resp.close()
            return
        while True:
            data = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
            if not data:
                break
            if rechunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
        # read1 does not mark a Content-Length response done when its last byte is read; a response
        # left open would make the next request on this upstream connection fail.
        resp.close()
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def stream_request_body(self, conn, length, chunked):
        if not chunked:
            left = length or 0
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("the client closed during the body")
                conn.send(data)
                left -= len(data)
            return
        while True:
            line = self.rfile.readline(1024)
            conn.send(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    t = self.rfile.readline(65537)
                    conn.send(t)
                    if t in (b"\r\n", b"\n", b""):
                        return
            left = size + 2  # the chunk and its CRLF
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("the client closed during the body")
                conn.send(data)
                left -= len(data)


# --- commands ---------------------------------------------------------------------------------


def serve(state_dir: str, listens: list[str]):
    models = validator.Models()
    log = Log(state_dir)
    servers = []
    for spec in listens:
        port, _, upstream = spec.partition("=")
        try:
            servers.append(Server(int(port), upstream, models, log))
        except OSError as e:
            raise SystemExit(f"modelcheck: cannot listen on 127.0.0.1:{port}: {e}")
    threading.Thread(target=models.signing_index, daemon=True).start()
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
        sys.stderr.write(f"modelcheck: 127.0.0.1:{s.server_address[1]} -> {s.upstream_url} "
                         f"(botocore {validator.BOTOCORE_VERSION})\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()


def report(state_dir: str) -> int:
    path = os.path.join(state_dir, LOG_NAME)
    n, ops, services, violations, patterns = 0, set(), set(), {}, set()
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                n += 1
                if r.get("service"):
                    services.add(r["service"])
                    if r.get("operation"):
                        ops.add((r["service"], r["operation"]))
                patterns.update(r.get("unchecked_patterns", []))
                if not r["ok"]:
                    violations[r["message"]] = violations.get(r["message"], 0) + 1
    except FileNotFoundError:
        pass
    v = sum(violations.values())
    for message, count in sorted(violations.items()):
        print(f"model check: VIOLATION ({count}x): {message}")
    for p in sorted(patterns):
        print(f"model check: pattern not checkable (the regex module cannot compile it): {p}")
    print(f"model check: {n} requests, {len(ops)} operations of {len(services)} services checked, "
          f"{v} violations, {len(patterns)} patterns not checkable (botocore {validator.BOTOCORE_VERSION}; log: {path})")
    if n == 0:
        print("model check: FAILED: no request went through the proxy (is AWS_ENDPOINT_URL pointed at it?)")
    return 1 if v or n == 0 else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--state", required=True)
    s.add_argument("--listen", action="append", required=True, help="PORT=http://upstream:port")
    r = sub.add_parser("report")
    r.add_argument("state")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.state, args.listen)
        return 0
    return report(args.state)


if __name__ == "__main__":
    sys.exit(main())
