"""The registry pieces without root or network: references, challenges, the plain-HTTP rule, platform
selection, credentials' file mode, users from /etc/passwd, resolv.conf, progress lines."""

import base64
import io
import json
import os
import stat

import pytest

from minicontainer.errors import ConfigError, ContainerError, ImageError
from minicontainer.images import credentials
from minicontainer.images.progress import PullProgress, human
from minicontainer.images.pull import parse_platform, select_platform
from minicontainer.images.reference import is_digest, parse
from minicontainer.images.registry import parse_challenge, plain_http_allowed
from minicontainer.images.userdb import resolve_user
from minicontainer import resolvconf

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("ref, domain, path, tag, digest, familiar", [
    ("busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox:1.36"),
    ("me/app", "docker.io", "me/app", "latest", None, "me/app:latest"),
    ("docker.io/library/debian:12", "docker.io", "library/debian", "12", None, "debian:12"),
    ("index.docker.io/library/debian", "docker.io", "library/debian", "latest", None, "debian:latest"),
    ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None, "127.0.0.1:5000/team/app:v1"),
    ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
    ("ghcr.io/a/b/c@" + D, "ghcr.io", "a/b/c", None, D, f"ghcr.io/a/b/c@{D}"),
    ("reg.example:443/x:t@" + D, "reg.example:443", "x", "t", D, "reg.example:443/x:t"),
    ("a__b/c-d/e.f", "docker.io", "a__b/c-d/e.f", "latest", None, "a__b/c-d/e.f:latest"),
])
def test_reference_parsing(ref, domain, path, tag, digest, familiar):
    r = parse(ref)
    assert (r.domain, r.path, r.tag, r.digest, r.familiar) == (domain, path, tag, digest, familiar)


@pytest.mark.parametrize("bad", ["", " busybox", "Busybox", "a//b", "-x", "x:", ":t", "a/b:", "x@sha256:abc",
                                 "sha256:" + "a" * 64, "a" * 64, "x:" + "t" * 129, "a_/b", "Reg.io/Up",
                                 "x@md5", "h:port/x"])
def test_reference_refusals(bad):
    with pytest.raises(ConfigError, match="invalid"):
        parse(bad)


def test_reference_bits():
    r = parse("127.0.0.1:5000/x")
    assert r.registry_host == "127.0.0.1:5000" and r.selector == "latest"
    assert parse("busybox").registry_host == "registry-1.docker.io"
    assert parse("x@" + D).selector == D
    assert is_digest(D) and not is_digest("sha256:abc")


def test_challenge_and_plain_http_rule():
    scheme, p = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:a/b:pull,push"')
    assert scheme == "bearer" and p == {"realm": "https://auth.example/token", "service": "registry.example",
                                        "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert plain_http_allowed("127.0.0.1:5000") and plain_http_allowed("127.9.9.9")
    assert plain_http_allowed("localhost:5000") and plain_http_allowed("[::1]:5000")
    assert not plain_http_allowed("10.0.0.1:5000") and not plain_http_allowed("registry.example")
    assert plain_http_allowed("registry.example:5000", ["registry.example:5000"])


def test_platform_selection():
    index = {"manifests": [
        {"digest": "sha256:1", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:2", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:3", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:4", "platform": {"os": "unknown", "architecture": "unknown"}}]}
    assert select_platform(index, parse_platform("linux/amd64"), "x")["digest"] == "sha256:3"
    assert select_platform(index, parse_platform("linux/arm64"), "x")["digest"] == "sha256:2"
    assert select_platform(index, parse_platform("linux/arm/v7"), "x")["digest"] == "sha256:1"
    assert select_platform(index, parse_platform("linux/x86_64"), "x")["digest"] == "sha256:3"
    with pytest.raises(ImageError, match=r"no manifest for linux/s390x .*has: linux/arm/v7, linux/arm64/v8"):
        select_platform(index, parse_platform("linux/s390x"), "x")
    with pytest.raises(ConfigError):
        parse_platform("amd64")


def test_credentials_file_is_0600_and_like_dockers(tmp_path):
    path = credentials.store("127.0.0.1:5000", "alice", "pw:with:colons", tmp_path / "cfg")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    doc = json.loads(path.read_text())
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:pw:with:colons"
    assert credentials.lookup("127.0.0.1:5000", tmp_path / "cfg") == ("alice", "pw:with:colons")
    credentials.store("docker.io", "bob", "x", tmp_path / "cfg")
    assert credentials.HUB_KEY in json.loads(path.read_text())["auths"]
    assert credentials.remove("127.0.0.1:5000", tmp_path / "cfg")
    assert credentials.lookup("127.0.0.1:5000", tmp_path / "cfg") is None
    assert not credentials.remove("127.0.0.1:5000", tmp_path / "cfg")


def _root(tmp_path, passwd, group):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(passwd)
    (tmp_path / "etc/group").write_text(group)
    return str(tmp_path)


PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\n" \
         "alice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nadm:x:4:alice,bob\nwww-data:x:33:\nalice:x:1000:\nstaff:x:50:alice\n"


def test_users_resolved_like_docker(tmp_path):
    root = _root(tmp_path, PASSWD, GROUP)
    assert resolve_user("www-data", root) == (33, 33, [], "/var/www")
    assert resolve_user("alice", root) == (1000, 1000, [4, 50], "/home/alice")
    assert resolve_user("alice:adm", root) == (1000, 4, [], "/home/alice")
    assert resolve_user("1000", root) == (1000, 1000, [4, 50], "/home/alice")
    assert resolve_user("4242", root) == (4242, 0, [], "/")                  # unknown number: fine
    assert resolve_user("4242:77", root) == (4242, 77, [], "/")
    with pytest.raises(ContainerError, match="unable to find user nobody"):
        resolve_user("nobody", root)
    with pytest.raises(ContainerError, match="unable to find group wheel"):
        resolve_user("alice:wheel", root)


def test_users_never_follow_the_images_symlinks(tmp_path):
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(outside)                       # /etc -> a host directory
    with pytest.raises(ContainerError, match="unable to find user evil"):
        resolve_user("evil", str(root))
    (root / "etc").unlink()
    (root / "etc").mkdir()
    (root / "etc/passwd").symlink_to(outside / "passwd")     # /etc/passwd -> a host file
    with pytest.raises(ContainerError):
        resolve_user("evil", str(root))
    (root / "etc/passwd").unlink()
    os.mkfifo(root / "etc/passwd")                            # a FIFO must not hang the start
    assert resolve_user("7", str(root)) == (7, 0, [], "/")


def test_resolv_conf_like_docker(tmp_path, monkeypatch):
    monkeypatch.delenv("MINICONTAINER_DNS", raising=False)  # the suite's own default (conftest.py)
    host = tmp_path / "resolv.conf"
    upstream = tmp_path / "upstream.conf"
    host.write_text("# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n")
    upstream.write_text("nameserver 10.1.2.3\nnameserver 127.0.0.1\nnameserver 2001:db8::1\nsearch corp.example\n")
    out = resolvconf.for_container(host_path=str(host), systemd_path=str(upstream))
    assert resolvconf.parse(out) == {"nameservers": ["10.1.2.3", "2001:db8::1"], "search": ["corp.example"],
                                     "options": [], "other": []}
    out = resolvconf.for_container(host_path=str(host), systemd_path=str(tmp_path / "none"))
    assert resolvconf.parse(out)["nameservers"] == ["8.8.8.8", "8.8.4.4"]
    assert resolvconf.parse(out)["options"] == ["edns0", "trust-ad"]          # the host's, kept
    out = resolvconf.for_container(["9.9.9.9"], ["a.example", "b.example"], host_path=str(host),
                                   systemd_path=str(upstream))
    p = resolvconf.parse(out)
    assert p["nameservers"] == ["9.9.9.9"] and p["search"] == ["a.example", "b.example"]
    assert resolvconf.parse(resolvconf.for_container(network="host", host_path=str(host)))["nameservers"] == \
        ["127.0.0.53"]
    with pytest.raises(ConfigError, match="--dns"):
        resolvconf.validate(["dns.example"])
    with pytest.raises(ConfigError, match="--dns-search"):
        resolvconf.validate([], ["bad domain"])


def test_progress_plain_and_terminal():
    out = io.StringIO()
    p = PullProgress(out, tty=False)
    p.layer("sha256:" + "b" * 64, "Pulling fs layer", total=1000)
    for n in (100, 500, 1000):
        p.layer("sha256:" + "b" * 64, "Downloading", done=n, total=1000)
    p.layer("sha256:" + "b" * 64, "Pull complete")
    lines = out.getvalue().splitlines()
    assert lines[0] == "bbbbbbbbbbbb: Pulling fs layer" and lines[-1] == "bbbbbbbbbbbb: Pull complete"
    assert len(lines) == 3                                  # one Downloading line, not one per chunk
    tty = io.StringIO()
    p = PullProgress(tty, tty=True, interval=0)
    p.layer("sha256:" + "c" * 64, "Downloading", done=5_200_000, total=10_000_000)
    assert "5.2MB/10MB" in tty.getvalue() and "/s" in tty.getvalue()
    assert human(999) == "999B" and human(1_500) == "1.5kB" and human(123_456_789) == "123MB"


def test_widget_progress_bars():
    pytest.importorskip("ipywidgets")
    from minicontainer.images.progress import WidgetProgress
    p = WidgetProgress()
    p.status("v1: Pulling from team/bb")
    p.layer("sha256:" + "d" * 64, "Downloading", done=500, total=1000)
    bar = p.bars["d" * 12]
    assert bar.value == 0.5 and bar.label.value.startswith("Downloading 500B/1kB")
    p.layer("sha256:" + "d" * 64, "Pull complete")
    assert bar.value == 1 and bar.label.value == "Pull complete"
    assert p.status_line.value == "v1: Pulling from team/bb"


def test_scratch_of_a_killed_process_is_removed(tmp_path):
    from minicontainer.images.store import ImageStore
    store = ImageStore(tmp_path / "data")
    mine = store.tmpdir("import-")
    assert mine.name.startswith(f"import-{os.getpid()}.")
    dead = store.root / "tmp" / "import-4194305.abc"            # above any pid_max: never alive
    (dead / "diff").mkdir(parents=True)
    assert store.clean_tmp() == ["removed scratch import-4194305.abc"]
    assert mine.exists() and not dead.exists()


def test_engine_default_dns_replaces_the_hosts_servers(tmp_path, monkeypatch):
    from minicontainer import resolvconf
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 10.1.2.3\nsearch corp.example\n")
    monkeypatch.setenv("MINICONTAINER_DNS", "127.0.0.1")
    text = resolvconf.for_container(host_path=str(host))
    assert "nameserver 127.0.0.1" in text and "10.1.2.3" not in text and "search corp.example" in text
    assert "nameserver 192.0.2.1" in resolvconf.for_container(["192.0.2.1"], host_path=str(host))
    monkeypatch.delenv("MINICONTAINER_DNS")
    assert "nameserver 10.1.2.3" in resolvconf.for_container(host_path=str(host))
