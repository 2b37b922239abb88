"""Test counterparts for the registry tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1
with its storage in a temp dir, a small token server (RS256 JWTs signed with openssl), a proxy that
injects faults, and images pushed with skopeo. Nothing listens anywhere but loopback."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os

import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
from pathlib import Path

USER, PASSWORD = "alice", "s3cret-pw"
SERVICE, ISSUER = "mc-test-registry", "mc-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


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

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

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
    """``docker-registry serve`` on 127.0.0.1:<free port>, storage and config in ``workdir``."""

    def __init__(self, workdir: Path, auth: str | None):
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
        self.proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
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
                time.sleep(0.05)
        self.close()
        raise RuntimeError(f"docker-registry did not start: {(workdir / 'registry.log').read_text()[-2000:]}")

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


def skopeo_copy(src: str, dst: str, *, creds: bool = True, fmt: str | None = None, all_: bool = False) -> None:
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]

    if creds:
        argv += ["--dest-creds", f"{USER}:{PASSWORD}"]
    if fmt:
        argv += ["--format", fmt]
    if all_:
        argv += ["--all"]
    subprocess.run(argv + [src, dst], check=True, capture_output=True, timeout=120)


def oci_layout_with_two_platforms(src_oci_tar: Path, dest: Path, other_arch: str) -> str:
    """An OCI layout dir whose index lists the busybox image (host platform) and a second image for
    ``other_arch`` whose one layer holds /ARCH (a file naming its platform). Returns the other's
    layer content."""
    dest.mkdir()
    with tarfile.open(src_oci_tar) as t:
        t.extractall(dest)  # our own archive, made above
    index = json.loads((dest / "index.json").read_text())
    host_desc = index["manifests"][0]
    host_man = json.loads((dest / "blobs/sha256" / host_desc["digest"].split(":")[1]).read_bytes())
    host_cfg = json.loads((dest / "blobs/sha256" / host_man["config"]["digest"].split(":")[1]).read_bytes())

    def blob(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (dest / "blobs/sha256" / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    import io
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = f"{other_arch}\n".encode()
        ti = tarfile.TarInfo("ARCH")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(tar)}
    cfg = {"architecture": other_arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]}}
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(cfg).encode())}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc,
           "layers": [layer]}
    mdesc = {"mediaType": man["mediaType"], **blob(json.dumps(man).encode()),
             "platform": {"os": "linux", "architecture": other_arch}}
    host_desc = {k: v for k, v in host_desc.items() if k != "annotations"}
    host_desc["platform"] = {"os": "linux", "architecture": host_cfg["architecture"]}
    inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [mdesc, host_desc]}
    idesc = {"mediaType": inner["mediaType"], **blob(json.dumps(inner).encode()),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [idesc]}))
    return f"{other_arch}\n"


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

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()





def oci_layout_zstd(src_oci_tar: Path, dest: Path) -> None:
    """The same image with its layers recompressed as zstd (skopeo 1.9 keeps gzip layers as they are)."""
    import gzip
    import zstandard
    dest.mkdir()
    with tarfile.open(src_oci_tar) as t:
        t.extractall(dest)  # our own archive
    index = json.loads((dest / "index.json").read_text())
    blobs = dest / "blobs/sha256"
    desc = index["manifests"][0]
    man = json.loads((blobs / desc["digest"].split(":")[1]).read_bytes())
    for layer in man["layers"]:
        raw = gzip.decompress((blobs / layer["digest"].split(":")[1]).read_bytes())
        z = zstandard.ZstdCompressor().compress(raw)
        d = hashlib.sha256(z).hexdigest()
        (blobs / d).write_bytes(z)
        layer.update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd", digest=f"sha256:{d}", size=len(z))
    data = json.dumps(man).encode()
    d = hashlib.sha256(data).hexdigest()
    (blobs / d).write_bytes(data)
    desc.update(digest=f"sha256:{d}", size=len(data))
    (dest / "index.json").write_text(json.dumps(index))
