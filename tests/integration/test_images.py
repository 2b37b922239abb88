"""minicontainer.images on the real kernel: overlayfs, the store, import of archives made by real tools
(umoci, skopeo), build with its cache, commit, rmi. Every test uses a private data root."""

import os
import shutil
import subprocess

import pytest

from minicontainer import images, syscalls
from minicontainer.course import run_in_child
from minicontainer.errors import ConflictError, ImageError, NotFoundError
from minicontainer.images import ImageStore, build, commit, import_archive, is_whiteout, mount_overlay
from minicontainer.images.builder import run_image


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_DATA_ROOT", str(tmp_path / "data"))
    return ImageStore()


def _private_mounts():
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)


def test_store_root_follows_the_env(store, tmp_path):
    assert store.root == tmp_path / "data"
    img = store.ensure_busybox()
    assert store.ensure_busybox().id == img.id            # a no-op the second time
    assert store.get("busybox").id == img.id == store.get(img.id[:8]).id
    assert img.lowerdirs == [str(tmp_path / "data/layers" / img.layers[0] / "diff")]
    assert set(img.config) == {"Env", "Cmd", "Entrypoint", "WorkingDir"}
    with pytest.raises(NotFoundError, match="minicontainer images"):
        store.get("nosuchimage")
    # the CLI's functions use the same default store
    assert [i.names for i in images.list_images()] == [["busybox:latest"]]
    with pytest.raises(NotFoundError):
        images.remove_image("nosuchimage")
    assert images.remove_image("busybox") == ["untagged: busybox:latest", f"deleted: {img.id[:12]}",
                                              f"deleted layer: {img.layers[0][:12]}"]
    assert images.list_images() == [] and not any((store.root / "layers").iterdir())


def test_copy_up_whiteout_and_shared_inode(store):
    img = store.ensure_busybox()
    a, b = store.create_container_layer("mcim-a"), store.create_container_layer("mcim-b")
    try:
        lower = img.lowerdirs[0]

        def inside():
            out = {}
            for name, layer in (("a", a), ("b", b)):
                m = layer.path / "merged"
                m.mkdir()
                mount_overlay(m, img.lowerdirs, layer.upperdir, layer.workdir)
                out[name] = os.stat(m / "bin/busybox").st_ino
            (a.path / "merged/etc/hostname").write_text("changed\n")   # copy-up
            os.unlink(a.path / "merged/etc/os-release")                 # whiteout
            out["b_sees"] = (b.path / "merged/etc/hostname").read_text()
            out["a_sees_os_release"] = (a.path / "merged/etc/os-release").exists()
            return out

        out = run_in_child(inside, before=_private_mounts)
        assert out["a"] == out["b"] == os.stat(f"{lower}/bin/busybox").st_ino   # one inode, shared
        assert open(f"{lower}/etc/hostname").read() == "busybox\n"             # lower unchanged
        assert (a.upperdir / "etc/hostname").read_text() == "changed\n"       # change in upper
        assert out["b_sees"] == "busybox\n" and not out["a_sees_os_release"]
        assert is_whiteout(a.upperdir / "etc/os-release")
        assert os.path.exists(f"{lower}/etc/os-release")
        assert not any(b.upperdir.iterdir())                                    # b untouched
    finally:
        store.remove_container_layer("mcim-a")
        store.remove_container_layer("mcim-b")
    store.remove_container_layer("mcim-a")                                      # idempotent


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """An OCI layout made by umoci (2 layers, the 2nd deletes /etc/os-release), as a tarball, and the
    same image as a docker-save archive made by skopeo. No network: everything is local."""
    for tool in ("umoci", "skopeo"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (make setup installs it)")
    d = tmp_path_factory.mktemp("mcim-arch")
    from minicontainer.busybox import build_rootfs

    def sh(*cmd):
        subprocess.run(cmd, check=True, cwd=d, capture_output=True)
    sh("umoci", "init", "--layout", "oci")
    sh("umoci", "new", "--image", "oci:v1")
    sh("umoci", "unpack", "--image", "oci:v1", "bundle")
    build_rootfs(d / "rootfs")
    subprocess.run(["cp", "-a", f"{d}/rootfs/.", f"{d}/bundle/rootfs/"], check=True)
    sh("umoci", "repack", "--image", "oci:v1", "bundle")
    shutil.rmtree(d / "bundle")
    sh("umoci", "unpack", "--image", "oci:v1", "bundle")
    os.unlink(d / "bundle/rootfs/etc/os-release")
    (d / "bundle/rootfs/app").mkdir()
    (d / "bundle/rootfs/app/msg").write_text("hello from layer 2\n")
    sh("umoci", "repack", "--image", "oci:v1", "bundle")
    sh("umoci", "config", "--image", "oci:v1", "--config.env", "WHO=oci",
       "--config.cmd", "/bin/sh", "--config.cmd", "-c", "--config.cmd", "cat /app/msg; echo $WHO")
    shutil.rmtree(d / "bundle")
    sh("tar", "-C", "oci", "-cf", "oci.tar", ".")
    sh("skopeo", "copy", "oci:oci:v1", "docker-archive:docker.tar:mcimtest:v1")
    return d


@pytest.mark.parametrize("fmt", ["oci.tar", "docker.tar", "oci"])
def test_import_real_archive_runs_its_command(store, archives, fmt):
    seen = []
    img = import_archive(archives / fmt, "mcim-imp", store=store,
                         progress=lambda label, done, total: seen.append((done, total)))
    assert len(img.layers) == 2
    assert seen and seen[-1][0] == seen[-1][1]                      # progress reached 100 %
    assert run_image(img, store=store) == (0, "hello from layer 2\noci\n")
    assert is_whiteout(os.path.join(img.lowerdirs[0], "etc/os-release"))   # .wh. → char 0/0
    code, out = run_image(img, ["ls", "/etc"], store=store)
    assert code == 0 and "os-release" not in out.split() and "passwd" in out.split()
    if fmt == "docker.tar":   # layer ids are the config's diff_ids: same content, same layers
        assert img.id == import_archive(archives / "oci.tar", "mcim-imp2", store=store).id


def test_import_not_an_archive(store, tmp_path):
    (tmp_path / "x.tar").write_text("hello")
    with pytest.raises(ImageError, match="not a tar archive"):
        import_archive(tmp_path / "x.tar", "x", store=store)


def _write_ctx(ctx, msg):
    ctx.mkdir(exist_ok=True)
    (ctx / "msg.txt").write_text(msg)
    (ctx / "Containerfile").write_text(
        "FROM busybox\nENV WHO=mcim\nRUN echo built > /built && rm /etc/os-release\n"
        "COPY msg.txt /app/\nWORKDIR /app\nRUN cat msg.txt > copy.txt\n"
        'CMD ["/bin/sh", "-c", "cat /built copy.txt; echo $WHO; pwd"]\n')


def test_build_cache_and_copy_invalidation(store, tmp_path):
    ctx = tmp_path / "ctx"
    _write_ctx(ctx, "one\n")
    first = build(ctx, "mcim-app", store=store)
    assert [s.cached for s in first.steps] == [True] + [False] * 6         # FROM is a lookup
    assert run_image("mcim-app", store=store) == (0, "built\none\nmcim\n/app\n")
    assert is_whiteout(os.path.join(first.image.lowerdirs[3], "etc/os-release"))
    again = build(ctx, "mcim-app", store=store)
    assert all(s.cached for s in again.steps) and again.image.id == first.image.id
    (ctx / "msg.txt").write_text("two\n")
    third = build(ctx, "mcim-app", store=store)
    assert [s.cached for s in third.steps] == [True, True, True, False, False, False, False]
    assert run_image("mcim-app", store=store) == (0, "built\ntwo\nmcim\n/app\n")
    # the unchanged layers are shared, not copied
    assert third.image.layers[:2] == first.image.layers[:2]


def test_build_run_failure_is_clear(store, tmp_path):
    (tmp_path / "Containerfile").write_text("FROM busybox\nRUN echo oops; exit 3\n")
    with pytest.raises(ImageError, match=r"RUN echo oops; exit 3: exited with status 3: oops"):
        build(tmp_path, "mcim-bad", store=store)
    assert not any((store.root / "tmp").iterdir())


def test_commit_and_rmi_refused_while_in_use(store):
    img = store.ensure_busybox()
    c = store.create_container_layer("mcim-c1")
    try:
        store.mark_in_use(img.id, "mcim-c1")

        def write():
            m = c.path / "merged"
            m.mkdir()
            mount_overlay(m, img.lowerdirs, c.upperdir, c.workdir)
            (m / "note").write_text("committed\n")
            # not /etc/hostname: the runtime bind-mounts its own over it, as docker does
            os.unlink(m / "etc/os-release")
        run_in_child(write, before=_private_mounts)
        with pytest.raises(ConflictError, match="in use by container mcim-c1"):
            store.remove_image("busybox")
        new = commit("mcim-c1", "mcim-committed", store=store)
        assert new.layers[:-1] == img.layers
        assert run_image(new, ["sh", "-c", "cat /note; ls /etc/os-release"], store=store) == \
            (1, "committed\nls: /etc/os-release: No such file or directory\n")
        store.release(img.id, "mcim-c1")
    finally:
        store.remove_container_layer("mcim-c1")
    assert store.remove_image("mcim-committed")[0] == "untagged: mcim-committed:latest"
    assert not (store.root / "layers" / new.layers[-1]).exists()            # its own layer went
    assert (store.root / "layers" / img.layers[0]).exists()                 # busybox's stayed
    assert [i.names for i in store.images()] == [["busybox:latest"]]


def test_remove_container_layer_refuses_a_mounted_layer(store):
    img = store.ensure_busybox()
    c = store.create_container_layer("mcim-busy")
    merged = c.path / "merged"
    merged.mkdir()
    mount_overlay(merged, img.lowerdirs, c.upperdir, c.workdir)
    try:
        with pytest.raises(ConflictError, match="still mounted"):
            store.remove_container_layer("mcim-busy")
        assert (merged / "bin/busybox").exists()            # nothing was deleted through the mount
    finally:
        syscalls.umount2(merged)
    store.remove_container_layer("mcim-busy")
    assert not c.path.exists()
