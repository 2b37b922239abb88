"""A remapped container's image layers: idmapped mounts, or a chowned copy where the kernel refuses them.

``run --userns=remap`` shows each lower layer through an idmapped mount (userns.py says why that is
the default). Some file systems (NFS, overlayfs itself, tmpfs before 6.3) and kernels (before 5.19
for overlayfs over idmapped layers) refuse them; there the layers are *copied* once per range with
their owners shifted (images/shifted.py), as Docker's overlay2 does with ``--userns-remap``.

**The choice** is made at ``create``, on the host, before any process of the container exists
(:func:`mode`), and kept in the record (``userns_layers``). ``MINICONTAINER_USERNS_LAYERS``:

* ``auto`` (the default): a probe decides — in a forked child's private mount namespace, a scratch
  directory of the store is cloned with ``open_tree``, idmapped and attached, and an overlay is
  mounted over it (what G does per layer). Its answer is cached in the data root's
  ``userns-probe.json`` (0600, the runtime's own file, never a path a container controls) with the
  kernel release it was made on, and in the process; a new kernel probes again. A few milliseconds
  once per store and kernel;
* ``idmap``: always idmapped mounts (a refusal is then G's one-line error);
* ``copy``: always the copy (tests; a user who wants it on any file system).

**The copy** of layer L for a range lives in ``layers/L/userns/<uid maps>.<gid maps>/`` (e.g.
``0-100000-65536.0-100000-65536``: containerID-hostID-size), next to the layer's own ``diff``:
Docker keeps ``/var/lib/docker/SUB.SUB/`` apart, but a copy inside its layer's directory goes with
it — ``rmi`` and ``gc``'s prune remove a layer no image uses with everything below it, so no copy
outlives its layer and no second list of copies has to be kept right. It is built in a scratch
directory of the store (``tmp/userns-<pid>.*``: ``gc`` removes one whose process is gone, i.e. a copy
interrupted half way) and renamed into place under the store's lock once complete, so a copy that
exists is whole; two creators racing both copy, the second rename fails and that one uses the
winner's. The directories above are 0700 (private.py); the copy's own files keep the image's modes.
"""

from __future__ import annotations

import errno
import json
import os

from .. import private
from ..errors import ConfigError, ContainerError, ImageError, from_oserror

KNOB = "MINICONTAINER_USERNS_LAYERS"
MODES = ("auto", "idmap", "copy")
#: the probe's answer, in the data root
PROBE_FILE = "userns-probe.json"
_memo: dict[tuple[str, str], bool] = {}


def wanted() -> str:
    """The knob's value (``auto`` when unset); ConfigError for anything else."""
    value = os.environ.get(KNOB, "auto") or "auto"
    if value not in MODES:
        raise ConfigError(f"{KNOB}={value!r}: not one of {', '.join(MODES)}",
                          hint=f"unset it (auto: idmapped mounts where the kernel allows them), "
                               f"or set {KNOB}=copy or idmap")
    return value


def mode(store, idmap: dict) -> str:
    """``idmap`` or ``copy`` for a remapped container of ``store`` (see the module's docstring)."""
    want = wanted()
    if want != "auto":
        return want
    return "idmap" if takes_idmap(store, idmap) else "copy"


def takes_idmap(store, idmap: dict) -> bool:
    """Does the store's file system take idmapped mounts as overlay lower layers? Probed once per
    store root and kernel release (memo, then the data root's :data:`PROBE_FILE`)."""
    release = os.uname().release
    key = (os.fspath(store.root), release)
    if key in _memo:
        return _memo[key]
    path = store.root / PROBE_FILE
    try:
        with open(path) as f:
            cached = json.load(f)
        if isinstance(cached, dict) and cached.get("kernel") == release and isinstance(cached.get("idmap"), bool):
            _memo[key] = cached["idmap"]
            return cached["idmap"]
    except (OSError, ValueError):
        pass
    ok, why = probe(store, idmap)
    private.make_dir(store.root)
    private.write(path, json.dumps({"kernel": release, "idmap": ok, "why": why}))
    _memo[key] = ok
    return ok


def probe(store, idmap: dict) -> tuple[bool, str]:
    """In a forked child (its own mount namespace, gone with it): idmap a scratch directory of the
    store and mount an overlay over it, as G does. (True, "") or (False, the kernel's refusal);
    ContainerError when the probe could not even ask (no user namespace): nothing to cache then."""
    from .. import syscalls as sc
    from ..images.overlay import mount_overlay
    from ..images.trees import _rmtree
    from . import userns
    scratch = store.tmpdir("probe-")
    for name in ("lower", "upper", "work", "merged"):
        os.mkdir(scratch / name, 0o700)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                                  # never returns
        step = b"!"                               # before the mounts: an error, not an answer
        try:
            os.close(r)
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            ufd = userns.make(idmap, [])
            step = b"-"                           # from here on: the kernel's refusal is the answer
            lower = str(scratch / "lower")
            fd = sc.open_tree(lower)
            sc.mount_setattr_idmap(fd, ufd, lower)
            sc.move_mount(fd, lower)
            mount_overlay(scratch / "merged", [lower], scratch / "upper", scratch / "work")
            os.write(w, b"+")
        except BaseException as exc:              # noqa: BLE001 - reported in one line
            try:
                os.write(w, step + (str(exc) or type(exc).__name__).encode()[:1000])
            except OSError:
                pass
        finally:
            os._exit(0)
    os.close(w)
    try:
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
        _rmtree(scratch)
    answer = b"".join(chunks).decode(errors="replace")
    if answer[:1] not in ("+", "-"):
        # not the file system's answer (no user namespace, say): nothing to cache; remap fails the same
        raise ContainerError(f"probe idmapped mounts in {scratch}: "
                             f"{answer[1:] or 'the probe ended without a word'}",
                             hint=f"set {KNOB}=copy or idmap to skip the probe")
    return answer == "+", answer[1:]


def range_name(idmap: dict) -> str:
    """The copy's directory name for ``idmap``: its maps, ``containerID-hostID-size`` each (no ``:``
    or ``,``: the path goes into overlay's ``lowerdir=`` option)."""
    return ".".join("_".join(f"{m['containerID']}-{m['hostID']}-{m['size']}" for m in idmap[k])
                    for k in ("uidMappings", "gidMappings"))


def copy_dir(store, layer_id: str, idmap: dict):
    return store.root / "layers" / layer_id / "userns" / range_name(idmap)


def lowerdirs(store, img, idmap: dict) -> list[str]:
    """The copies' directories in overlay order (top-most first); they exist after :func:`ensure`."""
    return [str(copy_dir(store, lid, idmap)) for lid in reversed(img.layers)]


def ensure(store, img, idmap: dict) -> list[str]:
    """Every layer of ``img`` copied for ``idmap`` (built on first use, then reused); what was built."""
    built = []
    for lid in img.layers:
        final = copy_dir(store, lid, idmap)
        if not final.is_dir():
            _build(store, lid, idmap, final)
            built.append(lid)
    return built


def _build(store, lid: str, idmap: dict, final) -> None:
    from ..images.shifted import copy_shifted
    from ..images.trees import _rmtree
    from .teardown import die_at
    scratch = store.tmpdir("userns-")             # gc: removed once this process is gone
    try:
        copy_shifted(store.layer_dir(lid), scratch / "root", idmap, progress=lambda: die_at("userns-copy"))
        with store.lock():                        # not while prune removes the layer
            if not store.has_layer(lid):
                raise ImageError(f"copy layer {lid[:12]} for --userns=remap: the layer was removed "
                                 "meanwhile", hint="pull or import the image again, then run it")
            private.make_dir(final.parent, root=store.root)
            try:
                os.rename(scratch / "root", final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not final.is_dir():
                    raise from_oserror(exc, "rename the layer's copy to", final) from exc
                # another creator's copy came first: it is whole (renamed complete), ours goes
    finally:
        _rmtree(scratch)
