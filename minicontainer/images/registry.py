"""A registry v2 / OCI distribution client on the standard library. Notebook 09.

The protocol is the lesson, so it is written with ``http.client`` and ``ssl`` only — no requests,
no httpx: every header the exchange needs is in this file. (``urllib.request`` was rejected for the
blob path: it opens a new connection per request and follows redirects without letting us drop
``Authorization`` on the way to another host.)

The exchange, as ``docker pull`` does it:

1. ``GET /v2/`` — the ping. ``200``: no auth; ``401`` with ``WWW-Authenticate``:
   ``Bearer realm="https://auth…/token",service="registry",scope="repository:x:pull"`` — ask the
   realm for a token (anonymously, or with ``Basic user:password`` when logged in) and send it as
   ``Authorization: Bearer …``; or ``Basic realm=…`` — send the credentials directly.
2. ``GET /v2/<name>/manifests/<tag|digest>`` with an ``Accept`` listing the four manifest types;
   the body's sha256 must equal ``Docker-Content-Digest`` (and the digest asked for).
3. ``GET /v2/<name>/blobs/<digest>`` for the config and each layer, hashed while they stream.

Connections are kept alive, one per thread (layers download in parallel). TLS is verified with the
system's CA store. Plain HTTP only for hosts in 127.0.0.0/8 and hosts named with
``--insecure-registry`` — Docker's rule (it, too, tries HTTPS first for those, then HTTP).
A redirect to another host (a blob in S3) drops ``Authorization``: the token is for the registry.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import urllib.parse

from ..errors import ImageError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
USER_AGENT = "minicontainer/0.1 (registry v2 client; python http.client)"
MAX_MANIFEST = 4 << 20           #: distribution's own limit for a manifest body
REDIRECTS = 5


class RegistryError(ImageError):
    """One failed exchange with a registry: what, where, and what to do (exit 125)."""


def plain_http_allowed(host: str, insecure: tuple[str, ...] | list[str] = ()) -> bool:
    """Docker's rule: plain HTTP only for 127.0.0.0/8 (and ::1) or a host given as insecure."""
    if host in insecure:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest)}
    return scheme.lower(), params


def _registry_error_text(body: bytes) -> str:
    try:
        errs = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errs)
    except (ValueError, AttributeError):
        return ""


class Client:
    """One registry (``host[:port]``). ``credentials``: (user, password) or None (anonymous)."""

    def __init__(self, host: str, *, credentials: tuple[str, str] | None = None,
                 insecure: tuple[str, ...] | list[str] = (), timeout: float = 30.0):
        self.host = host
        self.credentials = credentials
        self.insecure = plain_http_allowed(host, insecure)
        self.timeout = timeout
        self.scheme: str | None = None           # decided by the first request (the ping)
        self._local = threading.local()
        self._tokens: dict[str, str] = {}        # scope → "Bearer …" / "Basic …"
        self._lock = threading.Lock()
        self._ctx: ssl.SSLContext | None = None  # made on first use: loading the CA store costs ~20 ms

    # --- connections ----------------------------------------------------------------------------
    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, netloc)
        if key not in conns:
            if scheme == "https":
                if self.insecure and netloc == self.host:   # Docker: insecure = TLS unverified too
                    ctx = ssl._create_unverified_context()
                else:
                    if self._ctx is None:
                        self._ctx = ssl.create_default_context()   # verifies certificates and names
                    ctx = self._ctx
                conns[key] = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx)
            else:
                conns[key] = http.client.HTTPConnection(netloc, timeout=self.timeout)
        return conns[key]

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._local.__dict__.get("conns", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._local.__dict__.get("conns", {}).values():
            conn.close()
        self._local.__dict__["conns"] = {}

    def _send(self, method: str, url: str, headers: dict, body=None) -> http.client.HTTPResponse:
        """One request on a kept-alive connection (reopened once if the server closed it idle)."""
        u = urllib.parse.urlsplit(url)
        path = u.path + (f"?{u.query}" if u.query else "")
        for attempt in (0, 1):
            conn = self._connection(u.scheme, u.netloc)
            try:
                conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, **headers})
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(u.scheme, u.netloc)
                if attempt or (body is not None and not isinstance(body, (bytes, str))):
                    raise
            except BaseException:
                self._drop(u.scheme, u.netloc)
                raise
        raise AssertionError("unreachable")

    # --- errors ---------------------------------------------------------------------------------
    def _network_error(self, exc: BaseException, what: str) -> RegistryError:
        h = self.host
        if isinstance(exc, socket.gaierror):
            return RegistryError(f"{what}: unknown registry host {h.rsplit(':', 1)[0]!r} ({exc.strerror})",
                                 hint="check the image name's registry part and your DNS")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return RegistryError(f"{what}: {h} did not answer within {self.timeout:g} s",
                                 hint="check the network and the registry address, then retry")
        if isinstance(exc, ConnectionRefusedError):
            return RegistryError(f"{what}: cannot connect to {h}: connection refused",
                                 hint="is the registry running on that port?")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return RegistryError(f"{what}: TLS certificate of {h} not trusted ({exc.verify_message})",
                                 hint=f"install its CA in the system store, or --insecure-registry {h}")
        if isinstance(exc, ssl.SSLError):
            return RegistryError(f"{what}: TLS with {h} failed ({exc.reason})",
                                 hint=f"if it speaks plain HTTP: --insecure-registry {h}")
        if isinstance(exc, (http.client.HTTPException, OSError)):
            return RegistryError(f"{what}: connection to {h} failed ({type(exc).__name__}: {exc})",
                                 hint="retry; check the network and the registry")
        return RegistryError(f"{what}: {exc}")

    def http_error(self, resp: http.client.HTTPResponse, what: str, body: bytes = b"") -> RegistryError:
        st, h = resp.status, self.host
        detail = _registry_error_text(body)
        detail = f" ({detail})" if detail else ""
        if st == 401:
            if self.credentials:
                return RegistryError(f"{what}: {h} refused the credentials (401){detail}",
                                     hint=f"wrong user name or password? minicontainer login {h}")
            return RegistryError(f"{what}: {h} requires authentication (401){detail}",
                                 hint=f"minicontainer login {h}")
        if st == 403:
            return RegistryError(f"{what}: access denied by {h} (403){detail}",
                                 hint="check the repository name and that your account may use it")
        if st == 404:
            return RegistryError(f"{what}: not found on {h} (404){detail}",
                                 hint="check the repository name and the tag or digest")
        if st == 429:
            return RegistryError(f"{what}: {h} is rate-limiting (429 too many requests)",
                                 hint="wait and retry, or log in for a higher limit")
        if st >= 500:
            return RegistryError(f"{what}: {h} failed with {st} {resp.reason}{detail}",
                                 hint="a problem on the registry's side: retry later")
        return RegistryError(f"{what}: {h} answered {st} {resp.reason}{detail}")

    # --- the exchange ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if self.scheme is None:
            self.ping()
        return f"{self.scheme}://{self.host}{path}"

    def ping(self) -> http.client.HTTPResponse | None:
        """``GET /v2/``: picks the scheme (HTTPS; HTTP only where allowed), learns the challenge."""
        schemes = ("https", "http") if self.insecure else ("https",)
        last: BaseException | None = None
        for scheme in schemes:
            try:
                resp = self._send("GET", f"{scheme}://{self.host}/v2/", {})
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                last = exc
                self._drop(scheme, self.host)
                if isinstance(exc, socket.gaierror):
                    break
                continue
            self.scheme = scheme
            if resp.status in (200, 401):
                self._challenge = resp.getheader("WWW-Authenticate")
                return resp
            raise self.http_error(resp, "ping /v2/", body)
        raise self._network_error(last, f"connect to registry {self.host}")

    def _authorize(self, challenge: str, scope: str, what: str) -> str:
        """Answer a 401's challenge: a bearer token from the realm, or basic credentials."""
        scheme, params = parse_challenge(challenge)
        basic = None
        if self.credentials:
            basic = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if scheme == "basic":
            if not basic:
                raise RegistryError(f"{what}: {self.host} requires a user name and password (basic auth)",
                                    hint=f"minicontainer login {self.host}")
            return basic
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{what}: {self.host} asks for unknown authentication {challenge!r}")
        q = {"service": params.get("service", "")}
        q = {k: v for k, v in q.items() if v}
        scope = params.get("scope") or scope
        query = urllib.parse.urlencode([*q.items(), *([("scope", scope)] if scope else [])])
        realm = urllib.parse.urlsplit(params["realm"])
        same_insecure = self.insecure and realm.hostname == urllib.parse.urlsplit(f"//{self.host}").hostname
        if realm.scheme not in ("https", "http") or (realm.scheme == "http" and not same_insecure and not
                                                      plain_http_allowed(realm.netloc)):
            raise RegistryError(f"{what}: token realm {params['realm']!r} is not HTTPS",
                                hint="a token service must use TLS (plain HTTP only on loopback)")
        headers = {"Authorization": basic} if basic else {}
        try:
            resp = self._send("GET", f"{params['realm']}{'&' if realm.query else '?'}{query}", headers)
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc, f"{what}: get a token from {realm.netloc}") from exc
        if resp.status == 401 or resp.status == 403:
            hint = (f"wrong user name or password? minicontainer login {self.host}" if basic
                    else f"minicontainer login {self.host}")
            raise RegistryError(f"{what}: the token service {realm.netloc} refused "
                                f"{'the credentials' if basic else 'an anonymous token'} ({resp.status})",
                                hint=hint)
        if resp.status != 200:
            raise self.http_error(resp, f"{what}: token from {realm.netloc}", body)
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise RegistryError(f"{what}: the token service {realm.netloc} answered no token") from None
        return f"Bearer {token}"

    def request(self, method: str, path: str, *, scope: str, headers: dict | None = None,
                body=None, what: str, ok=(200,), stream: bool = False):
        """Send with the right Authorization; answer a 401 challenge once; follow redirects (dropping
        Authorization across hosts). Returns the response (unread if ``stream``), else (resp, body).
        Any other status is a RegistryError of one line."""
        headers = dict(headers or {})
        url = path if "://" in path else self.url(path)
        for attempt in (0, 1):
            auth = self._tokens.get(scope)
            hops = 0
            cur = url
            while True:
                h = dict(headers)
                same = urllib.parse.urlsplit(cur).netloc == self.host
                if auth and same:
                    h["Authorization"] = auth
                try:
                    resp = self._send(method, cur, h, body)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._network_error(exc, what) from exc
                if resp.status in (301, 302, 303, 307, 308) and hops < REDIRECTS:
                    loc = resp.getheader("Location") or ""
                    resp.read()
                    cur = urllib.parse.urljoin(cur, loc)
                    hops += 1
                    if resp.status == 303:
                        method, body = "GET", None
                    continue
                break
            if resp.status == 401 and attempt == 0 and resp.getheader("WWW-Authenticate"):
                resp.read()
                token = self._authorize(resp.getheader("WWW-Authenticate"), scope, what)
                with self._lock:
                    self._tokens[scope] = token
                if body is not None and hasattr(body, "seek"):
                    body.seek(0)
                continue
            break
        if resp.status not in ok:
            data = resp.read(1 << 16)
            raise self.http_error(resp, what, data)
        if stream:
            return resp
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc, what) from exc
        return resp, data

    def login(self, path: str = "library/hello") -> None:
        """Check the credentials: ping, and if challenged, get a token (bearer) or retry (basic)."""
        self.ping()
        challenge = getattr(self, "_challenge", None)
        if not challenge:
            return
        scheme, params = parse_challenge(challenge)
        what = f"login to {self.host}"
        token = self._authorize(challenge, params.get("scope") or "", what)
        if scheme == "basic":
            resp = self._send("GET", self.url("/v2/"), {"Authorization": token})
            body = resp.read()
            if resp.status != 200:
                raise self.http_error(resp, what, body)
