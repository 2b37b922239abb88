"""pull, push, run, login against Debian's docker-registry (distribution 2.8) on 127.0.0.1: once with
htpasswd (bcrypt), once with token auth (our token server, RS256), once open (behind a fault proxy).
Images are pushed by skopeo from the embedded busybox image, as Docker v2s2, OCI, and a two-platform
index. Every command is the real CLI in a subprocess: what a user sees is what is asserted."""

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from minicontainer.images import ImageStore
from minicontainer.images.export import save
from minicontainer.images.pull import host_platform

from tests.integration._registry import (PASSWORD, USER, FaultProxy, Registry, oci_layout_with_two_platforms,
                                        oci_layout_zstd, skopeo_copy)

pytestmark = pytest.mark.skipif(not all(os.path.exists(p) for p in ("/usr/bin/docker-registry", "/usr/bin/skopeo",
                                                                     "/usr/bin/htpasswd")),
                                reason="needs docker-registry, skopeo, apache2-utils (make system-packages)")
OTHER_ARCH = "arm64" if host_platform()["architecture"] != "arm64" else "amd64"


@pytest.fixture(scope="module")
def regs(tmp_path_factory):
    """Three registries with team/bb:v2s2, team/bb:oci and team/multi:latest (an index) pushed."""
    base = tmp_path_factory.mktemp("registries")
    store = ImageStore(base / "src-data")
    store.ensure_busybox()
    oci_tar = base / "bb-oci.tar"
    save("busybox", oci_tar, fmt="oci", store=store)
    oci_layout_with_two_platforms(oci_tar, base / "multi", OTHER_ARCH)
    oci_layout_zstd(oci_tar, base / "zstd")
    out = {}
    try:
        for auth in ("htpasswd", "token", None):
            d = base / str(auth)
            d.mkdir()
            r = out[auth] = Registry(d, auth)
            for fmt in ("v2s2", "oci"):
                skopeo_copy(f"oci-archive:{oci_tar}", f"docker://{r.host}/team/bb:{fmt}", fmt=fmt, creds=bool(auth))
            skopeo_copy(f"oci:{base / 'multi'}:multi", f"docker://{r.host}/team/multi:latest", all_=True,
                        creds=bool(auth))
            if auth is None:
                skopeo_copy(f"oci:{base / 'zstd'}", f"docker://{r.host}/team/bb:zstd", fmt="oci", creds=False)
            if auth == "token":
                skopeo_copy(f"oci-archive:{oci_tar}", f"docker://{r.host}/public/bb:v1", creds=True)
        yield out
    finally:
        for r in out.values():
            r.close()


@pytest.fixture
def mc(tmp_path):
    """The CLI with private data, state and config roots: mc(*argv, stdin=None) → CompletedProcess."""
    env = dict(os.environ, MINICONTAINER_DATA_ROOT=str(tmp_path / "data"),
               MINICONTAINER_STATE_ROOT=str(tmp_path / "state"), MINICONTAINER_CONFIG=str(tmp_path / "cfg"),
               MINICONTAINER_NO_SERVER="1")
    env.pop("MINICONTAINER_DEBUG", None)

    def run(*argv, stdin=None, timeout=120):
        return subprocess.run([sys.executable, "-m", "minicontainer.cli", *argv], input=stdin, text=True,
                              capture_output=True, env=env, timeout=timeout)
    run.store = ImageStore(tmp_path / "data")
    run.config = tmp_path / "cfg" / "config.json"
    return run


def _login(mc, host, password=PASSWORD):
    return mc("login", "-u", USER, "--password-stdin", host, stdin=password + "\n")


def _one_line_125(p):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    # progress lines may come first (a blob fails while it downloads); the error is one line, last
    errors = [ln for ln in lines if ln.startswith("minicontainer: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], p.stderr
    assert "Traceback" not in p.stderr
    return errors[0]


def _nothing_stored(store):
    assert store.images() == [] and store.images(all=True) == []
    assert not (store.root / "layers").exists() or not any((store.root / "layers").iterdir())
    assert not (store.root / "tmp").exists() or not any((store.root / "tmp").iterdir())


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_login_pull_run_push(regs, mc, auth, fmt):
    r = regs[auth]
    p = _login(mc, r.host)
    assert p.returncode == 0 and "Login Succeeded" in p.stdout, p.stderr
    assert stat.S_IMODE(mc.config.stat().st_mode) == 0o600
    assert r.host in json.loads(mc.config.read_text())["auths"]
    ref = f"{r.host}/team/bb:{fmt}"
    p = mc("pull", ref)
    assert p.returncode == 0, p.stderr
    assert "Pull complete" in p.stderr and "Digest: sha256:" in p.stderr
    p = mc("images")
    assert f"{r.host}/team/bb" in p.stdout and fmt in p.stdout and "sha256:" in p.stdout
    p = mc("run", "--rm", "--network", "none", ref, "sh", "-c", "echo hello from $(cat /etc/hostname | wc -c)")
    assert p.returncode == 0 and p.stdout.startswith("hello from"), p.stderr
    pushed = f"{r.host}/team/pushed-{auth}:{fmt}"
    assert mc("tag", ref, pushed).returncode == 0
    p = mc("push", "--format", fmt, pushed)
    assert p.returncode == 0 and p.stdout.startswith("sha256:"), p.stderr
    info = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
                           f"docker://{pushed}"], capture_output=True, text=True, check=True)
    want = "oci.image.manifest" if fmt == "oci" else "docker.distribution.manifest.v2"
    assert want in json.loads(info.stdout)["mediaType"]
    # pulled back into an empty store, the pushed image runs the same
    assert mc("rmi", pushed, ref).returncode == 0
    assert mc.store.images() == []
    p = mc("run", "--rm", "--network", "none", pushed, "sh", "-c", "echo ran $(wc -c < /bin/busybox)")
    assert p.returncode == 0 and p.stdout.startswith("ran ") and int(p.stdout.split()[1]) > 100_000, p.stderr
    assert mc("logout", r.host).returncode == 0
    assert r.host not in json.loads(mc.config.read_text())["auths"]


def test_index_picks_the_platform(regs, mc):
    r = regs[None]
    ref = f"{r.host}/team/multi:latest"
    p = mc("pull", ref)
    assert p.returncode == 0, p.stderr
    img = mc.store.get(ref)
    assert (Path(img.lowerdirs[0]) / "bin/busybox").exists()          # the host's entry
    assert mc("rmi", ref).returncode == 0
    p = mc("pull", "--platform", f"linux/{OTHER_ARCH}", ref)
    assert p.returncode == 0, p.stderr
    assert (Path(mc.store.get(ref).lowerdirs[0]) / "ARCH").read_text() == f"{OTHER_ARCH}\n"
    line = _one_line_125(mc("pull", "--platform", "linux/s390x", f"{r.host}/team/multi:latest"))
    assert "no manifest for linux/s390x" in line and "--platform" in line


def test_run_pulls_a_missing_image_and_never_when_told(regs, mc):
    r = regs[None]
    ref = f"{r.host}/team/bb:oci"
    line = _one_line_125(mc("run", "--rm", "--pull", "never", "--network", "none", ref, "true"))
    assert "not found" in line
    p = mc("run", "--rm", "--network", "none", ref, "echo", "pulled and ran")
    assert p.returncode == 0 and p.stdout == "pulled and ran\n", p.stderr
    assert "Pull complete" in p.stderr
    p = mc("run", "--rm", "--network", "none", ref, "true")          # the second time: no pull
    assert p.returncode == 0 and "Pull" not in p.stderr


def test_anonymous_token_and_wrong_password(regs, mc):
    r = regs["token"]
    p = mc("pull", f"{r.host}/public/bb:v1")                          # anonymous token, pull allowed
    assert p.returncode == 0, p.stderr
    line = _one_line_125(mc("pull", f"{r.host}/team/bb:oci"))           # anonymous, private repo
    assert "401" in line and "login" in line
    for auth in ("token", "htpasswd"):
        line = _one_line_125(_login(mc, regs[auth].host, "wrong"))
        assert "refused" in line and "password" in line
    assert not mc.config.exists()
    _nothing_stored(ImageStore(mc.store.root / "none"))


@pytest.mark.parametrize("case", ["unknown host", "malformed", "missing tag", "wrong password", "flip",
                                  "truncate", "notjson"])
def test_faults_are_one_line_and_leave_nothing(regs, mc, case):
    r = regs[None]
    proxy = None
    try:
        if case == "unknown host":
            p, want = mc("pull", "registry.invalid/team/bb:v1"), "unknown registry host"
        elif case == "malformed":
            p, want = mc("pull", f"{r.host}/Team/BB:v1"), "invalid reference format"
        elif case == "missing tag":
            p, want = mc("pull", f"{r.host}/team/bb:nope"), "404"
        elif case == "wrong password":
            from minicontainer.images import credentials
            credentials.store(regs["htpasswd"].host, USER, "wrong", mc.config.parent)
            p, want = mc("pull", f"{regs['htpasswd'].host}/team/bb:oci"), "refused the credentials"
        else:
            proxy = FaultProxy(r.host, case)
            p = mc("pull", f"{proxy.host}/team/bb:oci")
            want = {"flip": "expected sha256:", "truncate": "download ended", "notjson": "not JSON"}[case]
        line = _one_line_125(p)
        assert want in line, line
        _nothing_stored(mc.store)
    finally:
        if proxy:
            proxy.close()


def test_a_dropped_download_resumes(regs, mc):
    proxy = FaultProxy(regs[None].host, "truncate-once")
    try:
        p = mc("pull", f"{proxy.host}/team/bb:v2s2")
    finally:
        proxy.close()
    assert p.returncode == 0, p.stderr
    assert proxy.count == 1 and len(mc.store.images()) == 1


def test_two_pulls_at_once_store_one_copy(regs, mc):
    ref = f"{regs[None].host}/team/bb:oci"
    results = [None, None]

    def go(i):
        results[i] = mc("pull", "-q", ref)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in results), [p.stderr for p in results]
    assert len(mc.store.images(all=True)) == 1
    assert len(list((mc.store.root / "layers").iterdir())) == 1
    assert not any((mc.store.root / "tmp").iterdir())


def test_rmi_by_digest_and_save_round_trip(regs, mc, tmp_path):
    ref = f"{regs[None].host}/team/bb:v2s2"
    assert mc("pull", "-q", ref).returncode == 0
    img = mc.store.get(ref)
    (digest_ref,) = mc.store.digests_of(img.id)
    assert mc.store.get(digest_ref).id == img.id
    for fmt in ("docker", "oci"):
        out = tmp_path / f"img-{fmt}.tar"
        p = mc("save", "--format", fmt, "-o", str(out), ref)
        assert p.returncode == 0 and out.stat().st_size > 100_000, p.stderr
        p = mc("import", str(out), f"roundtrip-{fmt}")
        assert p.returncode == 0, p.stderr
    p = mc("rmi", digest_ref)
    assert p.returncode == 0 and "deleted" in p.stdout, p.stderr
    line = _one_line_125(mc("rmi", digest_ref))
    assert "not found" in line


def test_zstd_layers(regs, mc):
    ref = f"{regs[None].host}/team/bb:zstd"
    info = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                          capture_output=True, text=True, check=True)
    assert json.loads(info.stdout)["layers"][0]["mediaType"].endswith("+zstd")
    p = mc("pull", ref)
    assert p.returncode == 0, p.stderr
    assert (Path(mc.store.get(ref).lowerdirs[0]) / "bin/busybox").exists()


def test_image_config_user_stopsignal_labels_ports(mc, monkeypatch):
    """An image's User, StopSignal, Labels and ExposedPorts, as docker run honours them."""
    bb = mc.store.ensure_busybox()
    mc.store.add_image(bb.layers, dict(bb.config, User="1000:1000", StopSignal="SIGUSR1",
                                       Labels={"org.example.team": "course"}, ExposedPorts={"8080/tcp": {}}),
                       name="featured")
    p = mc("run", "--rm", "--network", "none", "featured", "id", "-u")
    assert p.returncode == 0 and p.stdout == "1000\n", p.stderr
    p = mc("run", "--rm", "--network", "none", "-u", "0", "featured", "id", "-u")
    assert p.returncode == 0 and p.stdout == "0\n", p.stderr
    line = _one_line_125(mc("run", "--rm", "--network", "none", "-u", "nosuch", "featured", "true"))
    assert "unable to find user nosuch" in line
    p = mc("run", "-d", "--name", "sig", "--network", "none", "featured", "sh", "-c",
           "trap 'exit 7' USR1; while :; do sleep 0.05; done")
    assert p.returncode == 0, p.stderr
    try:
        rec = json.loads(mc("inspect", "sig").stdout)
        assert rec["image_labels"] == {"org.example.team": "course"} and rec["stop_signal"] == 10
        assert mc("stop", "-t", "5", "sig").returncode == 0
        assert json.loads(mc("inspect", "sig").stdout)["exit_code"] == 7     # USR1, not TERM then KILL
    finally:
        mc("rm", "-f", "sig")
    monkeypatch.setenv("MINICONTAINER_DATA_ROOT", str(mc.store.root))
    from types import SimpleNamespace
    from minicontainer.images.commands import publish_all
    (spec,) = publish_all(SimpleNamespace(publish_all=True, image="featured"))
    host, ctr = spec.split(":")
    assert int(host) > 0 and ctr == "8080/tcp"
