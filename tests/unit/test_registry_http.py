"""The registry client against small servers on 127.0.0.1 (no root): Authorization dropped on a redirect
to another host, TLS verified unless the host is allowed plain HTTP, a registry's errors in one line."""

import base64
import hashlib
import http.server
import ssl
import subprocess
import threading

import pytest

from minicontainer.images.pull import BlobStream
from minicontainer.images.reference import parse
from minicontainer.images.registry import Client, RegistryError

BLOB = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


def _serve(handler, tls=None):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_authorization_is_not_sent_to_the_redirect_target():
    seen = {}

    class Storage(_Quiet):                   # "S3": another host
        def do_GET(self):
            seen["storage"] = self.headers.get("Authorization")
            self.reply(200, BLOB)

    storage, shost = _serve(Storage)

    class Registry(_Quiet):
        def do_GET(self):
            auth = self.headers.get("Authorization")
            if auth != "Basic " + base64.b64encode(b"u:p").decode():
                return self.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="t"')])
            seen["registry"] = auth
            if self.path == "/v2/":
                return self.reply(200, b"{}")
            self.reply(307, b"", [("Location", f"http://{shost}/bucket/blob?sig=1")])

    reg, rhost = _serve(Registry)
    try:
        c = Client(rhost, credentials=("u", "p"))
        s = BlobStream(c, parse(f"{rhost}/a/b:1"), {"digest": DIGEST, "size": len(BLOB)}, "repository:a/b:pull")
        assert s.read() == BLOB
        assert seen["registry"].startswith("Basic ") and seen["storage"] is None
        c.close()
    finally:
        reg.shutdown()
        storage.shutdown()


def test_tls_is_verified_unless_plain_http_is_allowed(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)

    class V2(_Quiet):
        def do_GET(self):
            self.reply(200, b"{}")

    httpd, host = _serve(V2, ctx)
    try:
        c = Client(host)
        c.insecure = False                   # as for any host outside 127.0.0.0/8
        with pytest.raises(RegistryError, match="not trusted.*--insecure-registry"):
            c.ping()
        c.close()
        c = Client(host)                     # loopback: Docker's rule allows it (TLS unverified)
        c.ping()
        assert c.scheme == "https"
        c.close()
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("status, words", [(403, "access denied"), (404, "not found"), (429, "rate-limiting"),
                                           (500, "retry later"), (503, "retry later")])
def test_http_errors_say_what_to_do(status, words):
    class R(_Quiet):
        def do_GET(self):
            if self.path == "/v2/":
                return self.reply(200, b"{}")
            self.reply(status, b'{"errors":[{"code":"X","message":"from the registry"}]}')

    httpd, host = _serve(R)
    try:
        c = Client(host)
        with pytest.raises(RegistryError, match=words) as exc:
            c.request("GET", "/v2/a/manifests/1", scope="s", what="manifest a:1")
        assert "\n" not in str(exc.value) and str(exc.value).startswith("manifest a:1: ")
        c.close()
    finally:
        httpd.shutdown()


def test_connection_refused_and_unknown_host():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(RegistryError, match="connection refused"):
        Client(f"127.0.0.1:{port}").ping()
    with pytest.raises(RegistryError, match="unknown registry host 'registry.invalid'"):
        Client("registry.invalid").ping()


def test_a_registry_that_does_not_answer_times_out_in_one_line():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()                                # accepts (the kernel does), never answers
    try:
        c = Client(f"127.0.0.1:{s.getsockname()[1]}", timeout=0.3)
        with pytest.raises(RegistryError, match=r"did not answer within 0.3 s — check the network") as exc:
            c.ping()
        assert "\n" not in str(exc.value)
    finally:
        s.close()
