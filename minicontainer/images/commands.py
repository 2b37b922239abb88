"""The image verbs of the command line: pull, push, tag, images, rmi, save, login, logout.

Their options are rows of the CLI's one table (``minicontainer/commands.py``); cli.py's handlers
call these, which take the parsed arguments and return the exit code. ``prepare_run`` is
the hook ``run``/``create`` call before creating a container (``--pull``).
"""

from __future__ import annotations

import os
import sys
import time

VERBS = ("pull", "push", "tag", "images", "rmi", "save", "login", "logout")


def _insecure(a) -> list[str]:
    env = os.environ.get("MINICONTAINER_INSECURE_REGISTRIES", "")
    return [h for h in env.split(",") if h] + list(getattr(a, "insecure_registry", None) or [])


def pull(a) -> int:
    from .progress import PullProgress, Quiet
    from .pull import pull as _pull
    img = _pull(a.image, platform=a.platform, insecure=_insecure(a),
                progress=Quiet() if a.quiet else PullProgress())
    from .reference import parse
    print(parse(a.image))
    return 0 if img else 1


def push(a) -> int:
    from .progress import PullProgress, Quiet
    from .push import push as _push
    digest = _push(a.image, fmt=a.format, insecure=_insecure(a),
                   progress=Quiet() if a.quiet else PullProgress())
    print(digest)
    return 0


def tag(a) -> int:
    from .store import ImageStore
    ImageStore().tag(a.source, a.target)
    return 0


def ago(t: float | None) -> str:
    if not t:
        return "N/A"
    d = max(time.time() - t, 0)
    for unit, secs in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if d >= secs:
            n = int(d // secs)
            return f"{n} {unit}{'s' * (n > 1)} ago"
    return "Less than a minute ago" if d >= 1 else "Less than a second ago"


def _created(img) -> float | None:
    """The image config's ``created`` (RFC 3339, maybe nanoseconds), else when it was stored."""
    c = (img.config or {}).get("Created")
    if isinstance(c, str):
        import re
        from datetime import datetime
        c = re.sub(r"(\.\d{6})\d+", r"\1", c.replace("Z", "+00:00"))
        try:
            return datetime.fromisoformat(c).timestamp()
        except ValueError:
            pass
    return img.created


def images(a) -> int:
    from .progress import human
    from .store import ImageStore
    store = ImageStore()
    rows = []
    for img in store.images():
        digests = {d.rsplit("@", 1)[0]: d.rsplit("@", 1)[1] for d in store.digests_of(img.id)}
        names = [n.rsplit(":", 1) for n in img.names] or \
                [[repo, "<none>"] for repo in digests] or [["<none>", "<none>"]]
        for repo, tg in names:
            rows.append((repo, tg, digests.get(repo, "<none>"), img.id[:12], ago(_created(img)),
                         human(img.size())))
    if a.quiet:
        for r in dict.fromkeys(r[3] for r in rows):
            print(r)
        return 0
    w = max([len(r[0]) for r in rows] + [10]) + 3
    print(f"{'REPOSITORY':{w}}{'TAG':12}{'DIGEST':73}{'IMAGE ID':14}{'CREATED':25}SIZE")
    for r in rows:
        print(f"{r[0]:{w}}{r[1]:12}{r[2]:73}{r[3]:14}{r[4]:25}{r[5]}")
    return 0


def rmi(a) -> int:
    from .store import ImageStore
    store = ImageStore()
    for ref in a.image:
        for line in store.remove_image(ref, force=a.force):
            print(line)
    return 0


def save(a) -> int:
    from .export import save as _save
    _save(a.image, a.output, fmt=a.format)
    return 0


def _server(s: str) -> str:
    """``https://host:5000/`` or ``host:5000`` → ``host:5000``; Docker Hub's names → docker.io."""
    s = s.removeprefix("https://").removeprefix("http://").split("/")[0]
    return "docker.io" if s in ("index.docker.io", "registry-1.docker.io", "docker.io") else s


def login(a) -> int:
    from ..errors import ConfigError
    from . import credentials
    from .registry import Client
    server = _server(a.server)
    user = a.username
    if a.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = a.password
    if not user or password is None:
        if not sys.stdin.isatty():
            raise ConfigError(f"login {server}: no user name or password given",
                              hint="use -u USER --password-stdin (or -p PASS)")
        import getpass
        user = user or input("Username: ")
        password = password if password is not None else getpass.getpass("Password: ")
    host = "registry-1.docker.io" if server == "docker.io" else server
    client = Client(host, credentials=(user, password), insecure=_insecure(a))
    try:
        client.login()
    finally:
        client.close()
    path = credentials.store(server, user, password)
    print(f"Login Succeeded (credentials in {path})")
    return 0


def logout(a) -> int:
    from . import credentials
    server = _server(a.server)
    if credentials.remove(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0


def prepare_run(a) -> None:
    """``run``/``create``: the image per ``--pull missing|always|never`` before the container exists.

    Unlike Docker, a *missing* image is pulled only when its name says which registry (``HOST/…``,
    ``HOST:PORT/…``): a bare ``run typo`` must not reach Docker Hub from a course machine or a test
    (no traffic leaves the machine). ``pull NAME`` and ``--pull always`` do go to docker.io.
    ``busybox`` is the runtime's own embedded image: never pulled."""
    policy = getattr(a, "pull", None) or "missing"
    if a.image == "busybox" and policy != "always":
        return
    if policy == "missing":
        first = a.image.split("/")[0]
        explicit = "/" in a.image and ("." in first or ":" in first or first == "localhost")
        if not explicit:
            return
    from .progress import PullProgress
    from .pull import ensure_image
    ensure_image(a.image, policy, insecure=_insecure(a), progress=PullProgress())


def publish_all(a) -> list[str]:
    """``-P``: each of the image's ExposedPorts (``"80/tcp": {}``) published on a free host port, as
    ``HOSTPORT:CTRPORT/PROTO`` for ``-p``'s parser. The kernel picks the port (bind to port 0) — a
    port another program takes in between makes the publish fail with its usual error."""
    if not getattr(a, "publish_all", False) or a.image == "busybox":   # the embedded image exposes none
        return []
    import socket
    from .store import ImageStore
    exposed = (ImageStore().get(a.image).config or {}).get("ExposedPorts") or {}
    out = []
    for key in sorted(exposed):
        port, _, proto = key.partition("/")
        proto = proto or "tcp"
        if not (port.isascii() and port.isdigit()) or proto not in ("tcp", "udp"):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", 0))
            out.append(f"{s.getsockname()[1]}:{port}/{proto}")
    return out
