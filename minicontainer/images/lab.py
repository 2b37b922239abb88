"""A throwaway registry on 127.0.0.1, for notebook 09, its exercise checks and the registry tests.

Debian's ``docker-registry`` (distribution 2.8, the registry Docker Hub ran) serves from a temp dir on
a free loopback port; :class:`TokenServer` is a small token service (the role of auth.docker.io) that
signs RS256 JWTs with ``openssl``, so the registry can be run with ``auth.token`` exactly as a real one
is; ``htpasswd`` (basic auth) is the other mode. :class:`FaultProxy` sits in front of a registry and
breaks one kind of answer on purpose (a flipped byte, a cut connection, a manifest that is not JSON).

Why a real registry and not a fake one in Python: the protocol is the lesson, and a fake would answer
what we believe the protocol is. Nothing here listens anywhere but 127.0.0.1, and
:meth:`RegistryLab.close` stops every process and removes every file it made.

Use::

    with RegistryLab() as lab:            # token auth; course/busybox:{1,v2s2,multi} published
        pull(f"{lab.host}/course/busybox:multi", store=lab.store, credentials=lab.credentials)
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from ..errors import ImageError

USER, PASSWORD = "alice", "s3cret-pw"
SERVICE, ISSUER = "mc-test-registry", "mc-test-issuer"
REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _serve(handler) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class TokenServer:
    """GET /token?service=…&scope=repository:NAME:ACTIONS → {"token": JWT}. With alice's basic
    credentials: every action asked for; anonymous: pull on ``public/*`` only; a wrong password: 401."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.key, self.cert = workdir / "token.key", workdir / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=mc-test-token"],
                       check=True, capture_output=True)
        self.der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        self.requests: list[dict] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) != (USER, PASSWORD):
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                outer.requests.append({"user": user, "scope": q.get("scope"), "service": q.get("service")})
                access = []
                for scope in q.get("scope", []):
                    typ, name, actions = scope.split(":")
                    acts = actions.split(",") if user else (["pull"] if name.startswith("public/") else [])
                    access.append({"type": typ, "name": name, "actions": [a for a in acts if a in actions.split(",")]})
                body = json.dumps({"token": outer.jwt(user or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _serve(H)
        self.port = self.httpd.server_address[1]

    def jwt(self, sub: str, access: list) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(8).hex(), "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing.encode(),
                             capture_output=True, check=True).stdout
        return f"{signing}.{_b64(sig)}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<free port>, storage and config in ``workdir``.
    ``auth``: None (open), ``"token"`` (our TokenServer) or ``"htpasswd"`` (basic, bcrypt)."""

    def __init__(self, workdir: Path, auth: str | None):
        if not os.access(REGISTRY_BIN, os.X_OK):
            raise ImageError(f"start a lab registry: {REGISTRY_BIN} not found",
                             hint="install Debian's docker-registry package (`sudo make system-packages`)")
        self.dir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.token = None
        cfg = {"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")},
                           "delete": {"enabled": True}},
               "http": {"addr": self.host, "secret": os.urandom(8).hex()}}
        if auth == "htpasswd":
            htp = workdir / "htpasswd"
            out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
            htp.write_text(out.stdout)
            cfg["auth"] = {"htpasswd": {"realm": "mc-test", "path": str(htp)}}
        elif auth == "token":
            self.token = TokenServer(workdir)
            cfg["auth"] = {"token": {"realm": f"http://127.0.0.1:{self.token.port}/token", "service": SERVICE,
                                     "issuer": ISSUER, "rootcertbundle": str(self.token.cert)}}
        conf = workdir / "config.yml"
        conf.write_text(json.dumps(cfg))          # YAML is a superset of JSON
        self.log = open(workdir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection(self.host, timeout=1)
                c.request("GET", "/v2/")
                c.getresponse().read()
                c.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        self.close()
        raise ImageError(f"start a lab registry: docker-registry did not start: "
                         f"{(workdir / 'registry.log').read_text()[-300:].strip()}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.token:
            self.token.close()


class FaultProxy:
    """An HTTP proxy in front of the registry that breaks one kind of response on purpose.

    mode: ``flip`` (one byte of every layer blob changed: gzip's mtime field, so only the digest can
    tell), ``truncate`` (a blob's connection closed after half its body, every time), ``truncate-once``
    (only the first time: a resumed download must succeed), ``notjson`` (manifests replaced by text,
    without Docker-Content-Digest)."""

    def __init__(self, upstream: str, mode: str):
        self.upstream, self.mode, self.count = upstream, mode, 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                c = http.client.HTTPConnection(outer.upstream, timeout=30)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                c.close()
                is_blob = "/blobs/sha256:" in self.path and self.command == "GET" and r.status in (200, 206)
                is_man = "/manifests/" in self.path and self.command == "GET" and r.status == 200
                headers = [(k, v) for k, v in r.getheaders() if k.lower() not in ("connection", "transfer-encoding")]
                cut = None
                if is_blob and len(data) > 1000 and outer.mode == "flip" and r.status == 200:
                    data = data[:4] + bytes([data[4] ^ 0xFF]) + data[5:]
                if is_blob and len(data) > 1000 and (outer.mode == "truncate" or
                                                     (outer.mode == "truncate-once" and outer.count == 0)):
                    outer.count += 1
                    cut = len(data) // 2
                if is_man and outer.mode == "notjson":
                    data = b"this is not a manifest\n"
                    headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "docker-content-digest")]
                    headers.append(("Content-Length", str(len(data))))
                self.send_response(r.status, r.reason)
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data[:cut] if cut is not None else data)
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _forward

        self.httpd = _serve(H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def other_arch(arch: str) -> str:
    """An architecture that is not ``arch`` (for a second platform in an index)."""
    return "arm64" if arch != "arm64" else "amd64"


class RegistryLab:
    """A registry with images on it, in a temp dir: ``host``, ``credentials``, ``store`` (an empty image
    store of our own, to pull into), ``upstream`` (the store the images were pushed from), ``dir``.

    Published (by our own ``push``, and an index by hand — the protocol's three PUTs):
    ``course/busybox:1`` (OCI), ``course/busybox:v2s2`` (Docker v2 schema 2), and
    ``course/busybox:multi``, an OCI index of ``:1`` for this host's platform and a one-layer image for
    another architecture whose only file ``/ARCH`` names it."""

    def __init__(self, auth: str | None = "token", publish: bool = True, prefix: str = "mc09-"):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.registry = None
        try:
            os.chmod(self.dir, 0o700)
            self.registry = Registry(self.dir, auth)
            self.host = self.registry.host
            self.credentials = (USER, PASSWORD) if auth else None
            from .store import ImageStore
            self.store = ImageStore(self.dir / "data")
            self.upstream = ImageStore(self.dir / "upstream")
            if publish:
                self.publish()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def client(self):
        from .registry import Client
        return Client(self.host, credentials=self.credentials)

    def publish(self) -> None:
        from .export import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, _write_blob
        from .progress import Quiet
        from .pull import host_platform
        from .push import _push_blob, push
        self.upstream.ensure_busybox()
        for tag, fmt in (("1", "oci"), ("v2s2", "v2s2")):
            self.upstream.tag("busybox", f"{self.host}/course/busybox:{tag}")
            push(f"{self.host}/course/busybox:{tag}", fmt=fmt, store=self.upstream,
                 credentials=self.credentials, progress=Quiet())
        here = host_platform()
        there = other_arch(here["architecture"])
        tmp = self.upstream.tmpdir("lab-")
        client = self.client()
        try:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                data = f"{there}\n".encode()
                ti = tarfile.TarInfo("ARCH")
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
            layer = _write_blob(tmp, buf.getvalue(), "application/vnd.oci.image.layer.v1.tar")
            cfg = {"architecture": there, "os": "linux", "config": {"Cmd": ["/bin/cat", "/ARCH"]},
                   "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}
            config = _write_blob(tmp, json.dumps(cfg).encode(), OCI_CONFIG)
            scope = "repository:course/busybox:pull,push"
            for blob in (layer, config):
                _push_blob(client, _Ref(), scope, blob, Quiet())
            man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                              "layers": [layer.descriptor()]}).encode()
            entries = [{"mediaType": OCI_MANIFEST, "digest": self._put_manifest(client, scope, man, OCI_MANIFEST),
                        "size": len(man), "platform": {"os": "linux", "architecture": there}}]
            resp, body = client.request("GET", "/v2/course/busybox/manifests/1", scope=scope, what="lab",
                                        headers={"Accept": OCI_MANIFEST})
            entries.insert(0, {"mediaType": OCI_MANIFEST, "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                               "size": len(body), "platform": here})
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                               indent=2).encode()
            self._put_manifest(client, scope, index, OCI_INDEX, tag="multi")
        finally:
            client.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def _put_manifest(self, client, scope: str, body: bytes, media_type: str, tag: str | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        client.request("PUT", f"/v2/course/busybox/manifests/{tag or digest}", scope=scope, body=body,
                       headers={"Content-Type": media_type, "Content-Length": str(len(body))},
                       ok=(201,), what=f"lab: put manifest {tag or digest[:19]}")
        return digest

    def close(self) -> None:
        try:
            if self.registry is not None:
                self.registry.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class _Ref:
    """The two attributes of a Reference that ``_push_blob`` reads, for ``course/busybox``."""
    path = repository = "course/busybox"
