"""``minicontainer build`` — a Containerfile subset, each step an image, with a cache. Notebook 04.

Supported: ``FROM`` (busybox or any image in the store), ``ARG``, ``RUN``, ``ENV``, ``COPY``, ``WORKDIR``,
``CMD``, ``ENTRYPOINT`` (shell or JSON form), ``USER``, ``LABEL``, ``EXPOSE``, ``STOPSIGNAL``, comments
and ``\\`` continuations (containerfile.py reads them).

Each step produces an image: ``RUN``, ``COPY`` and ``WORKDIR`` add one layer; the others change only
the config (docker's "empty layer"); a ``RUN`` after ``USER`` runs as that user. The cache key of a step is
sha256(parent image id + instruction text [+ sha256 of the COPY sources]); an unchanged rebuild
finds every step in the cache, and a changed COPY source changes that key and so every key after it.

``RUN`` executes in a container of the image so far (:func:`run_step`): a forked child in new mount,
PID, UTS, IPC and network namespaces mounts the overlay of the image's layers with a *fresh* upper
dir, enters it and runs ``/bin/sh -c CMD``; afterwards that upper dir — exactly what the command
changed, whiteouts included — becomes the step's layer. The network namespace is empty (no traffic
leaves the machine; a RUN needing the internet fails clearly instead).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shlex
import signal
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import syscalls
from ..errors import ConfigError, ImageError, NotFoundError, exit_code
from .containerfile import (CONFIG_ONLY, INSTRUCTIONS, Instruction, _command, _env_pairs,  # noqa: F401
                          _expand, apply_config, parse_arg, parse_containerfile)
from .overlay import mount_overlay
from .store import DEFAULT_CONFIG, Image, ImageStore, _rmtree, copy_tree, tree_digest

Log = Callable[[str], None]


@dataclass
class Step:
    instruction: Instruction
    image_id: str
    cached: bool


@dataclass
class BuildResult:
    image: Image
    steps: list[Step] = field(default_factory=list)

    @property
    def cache_hits(self) -> int:
        return sum(s.cached for s in self.steps)


def _copy_sources(context: Path, args: str) -> tuple[list[Path], str]:
    words = _command(args) if args.startswith("[") else shlex.split(args)
    if len(words) < 2:
        raise ConfigError(f"COPY {args!r}: needs SRC… DEST")
    srcs = []
    ctx = context.resolve()
    for s in words[:-1]:
        p = (ctx / s).resolve()
        if not p.is_relative_to(ctx):
            raise ConfigError(f"COPY {s}: outside the build context {ctx}")
        if not p.exists():
            raise NotFoundError(f"COPY {s}: no such file in the build context {ctx}")
        _refuse_special(p, s)
        srcs.append(p)
    return srcs, words[-1]


def _refuse_special(p: Path, given: str) -> None:
    """COPY takes regular files, directories and symlinks: a fifo would block the build forever
    (reading it for the cache key, with the image store locked), a device or socket is the host's.
    Checked with lstat inside a directory: nothing of the context is followed or opened."""
    def bad(path: str, mode: int) -> bool:
        return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))
    mode = p.stat().st_mode
    found = str(p) if bad(str(p), mode) else None          # p is resolved: not a symlink
    if found is None and stat.S_ISDIR(mode):
        for dirpath, dirnames, filenames in os.walk(p):
            for name in (*dirnames, *filenames):
                q = os.path.join(dirpath, name)
                if bad(q, os.lstat(q).st_mode):
                    found = q
                    break
            if found:
                break
    if found:
        raise ConfigError(f"COPY {given}: {found} is not a regular file or directory (a fifo, socket "
                          "or device)", hint="only files, directories and symlinks can be copied")


def _content_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        if p.is_dir():
            h.update(tree_digest(p).encode())
        else:
            st = p.stat()
            h.update(f"{stat.S_IMODE(st.st_mode):o}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def build(context_dir: str | os.PathLike, tag: str | None = None, *, store: ImageStore | None = None,
          file: str = "Containerfile", progress: Log | None = None, no_cache: bool = False,
          limits=None, build_args=None) -> BuildResult:
    """Build ``context_dir``/Containerfile (or Dockerfile) into image ``tag``; returns the steps.

    ``progress`` gets one line per step (``Step 2/5 : RUN … (cached)``) and the RUN output.
    ``limits`` (a ``cgroups.Limits``, ``build --memory``): the cgroup limits of every RUN step.
    ``file``: relative to the context, or absolute. ``build_args``: ``{NAME: VALUE}`` or
    ``["NAME=VALUE", "NAME"]`` (``--build-arg``) for the Containerfile's ARGs.
    """
    store = store or ImageStore()
    ctx = Path(context_dir)
    cf = ctx / file
    if not cf.exists() and file == "Containerfile" and (ctx / "Dockerfile").exists():
        cf = ctx / "Dockerfile"
    if not cf.is_file():
        raise NotFoundError(f"build: no {file} in {ctx}", hint="write one, starting with FROM busybox")
    instrs = parse_containerfile(cf.read_text())
    given = _build_args(build_args)
    log = progress or (lambda s: None)
    with store.lock():
        result = _build(store, ctx, instrs, tag, log, no_cache, limits, given)
    unused = sorted(set(given) - {parse_arg(i.args)[0] for i in instrs if i.keyword == "ARG"})
    if unused:                                   # docker's warning, not an error
        log(f"[Warning] build-args not consumed by any ARG: {', '.join(unused)}")
    return result


def _build_args(given) -> dict:
    """``--build-arg NAME=VALUE`` (a dict or such strings) → {name: value}; NAME alone takes the
    value from this process's environment, as docker's client does."""
    if isinstance(given, dict):
        return dict(given)
    from ..runtime.config import client_env        # -e's rule for NAME alone
    out = {}
    for g in client_env(given or ()):
        name, _, value = g.partition("=")
        if not name.isidentifier():
            raise ConfigError(f"--build-arg {g!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _build(store: ImageStore, ctx: Path, instrs: list[Instruction], tag: str | None, log: Log,
           no_cache: bool, limits=None, given: dict | None = None) -> BuildResult:
    steps: list[Step] = []
    img: Image | None = None
    args: dict = {}                  # the ARGs in scope: before FROM for FROM, then the stage's own
    for n, ins in enumerate(instrs, 1):
        head = f"Step {n}/{len(instrs)} : {ins}"
        if ins.keyword == "ARG":
            name, default = parse_arg(ins.args)
            value = (given or {}).get(name, default if default is None else _expand(default, [], args))
            if value is not None:
                args[name] = value
            steps.append(Step(ins, img.id if img else "", True))
            log(head)
            continue
        if ins.keyword == "FROM":
            ref = _expand(ins.args, [], args).split()[0]
            img = store.ensure_busybox() if ref in ("busybox", "busybox:latest") else store.get(ref)
            args = {}                # docker: an ARG before FROM is in scope for FROM only
            steps.append(Step(ins, img.id, True))
            log(head)
            continue
        assert img is not None
        extra = ""
        srcs: list[Path] = []
        if ins.keyword == "COPY":
            srcs, _ = _copy_sources(ctx, ins.args)
            extra = _content_hash(srcs)
        if args:                     # the values a step sees are part of what it is
            extra += "\n" + "\n".join(f"{k}={v}" for k, v in sorted(args.items()))
        key = hashlib.sha256(f"{img.id}\n{ins}\n{extra}".encode()).hexdigest()
        hit = None if no_cache else store.cache_get(key)
        if hit is not None:
            img = hit
            steps.append(Step(ins, img.id, True))
            log(f"{head}\n ---> using cache {img.id[:12]}")
            continue
        log(head)
        img = _execute(store, img, ins, ctx, log, limits, args)
        store.cache_put(key, img.id)
        steps.append(Step(ins, img.id, False))
        log(f" ---> {img.id[:12]}")
    assert img is not None
    if tag:
        img = store.tag(img.id, tag)
    return BuildResult(img, steps)


def _execute(store: ImageStore, img: Image, ins: Instruction, ctx: Path, log: Log, limits=None,
             args: dict | None = None) -> Image:
    cfg = json.loads(json.dumps(img.config))
    kw = ins.keyword
    if kw in CONFIG_ONLY:
        apply_config(kw, ins.args, cfg, args)
        return store.add_image(img.layers, cfg, parent=img.id)
    tmp = store.tmpdir("build-")
    try:
        layer = tmp / "layer"
        layer.mkdir(mode=0o755)
        if kw == "WORKDIR":
            wd = posixpath_join(cfg["WorkingDir"], _expand(ins.args, cfg["Env"], args))
            (layer / wd.lstrip("/")).mkdir(parents=True, exist_ok=True)
            cfg["WorkingDir"] = wd
        elif kw == "COPY":
            srcs, dest = _copy_sources(ctx, ins.args)
            dest_abs = posixpath_join(cfg["WorkingDir"], dest)
            into_dir = dest.endswith("/") or len(srcs) > 1 or any(s.is_dir() for s in srcs)
            for s in srcs:
                if s.is_dir():
                    target = layer / dest_abs.lstrip("/")
                    target.mkdir(parents=True, exist_ok=True)
                    copy_tree(s, target)
                else:
                    target = layer / dest_abs.lstrip("/") / s.name if into_dir else layer / dest_abs.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    copy_tree_file(s, target)
        elif kw == "RUN":
            names = {e.partition("=")[0] for e in cfg["Env"]}     # an ENV of the same name wins
            step_cfg = dict(cfg, Env=cfg["Env"] + [f"{k}={v}" for k, v in (args or {}).items() if k not in names])
            upper = run_step(store, img, _command(ins.args), step_cfg, tmp, log, limits=limits)
            layer.rmdir()
            upper.rename(layer)
        _fix_parents(layer)
        lid = store.add_layer_dir(layer, source=f"build {str(ins)[:60]}")
    finally:
        _rmtree(tmp)
    return store.add_image([*img.layers, lid], cfg, parent=img.id)


def posixpath_join(base: str, path: str) -> str:
    import posixpath
    return posixpath.normpath(posixpath.join(base or "/", path))


def copy_tree_file(src: Path, dst: Path) -> None:
    import shutil
    shutil.copy2(src, dst, follow_symlinks=False)
    os.lchown(dst, 0, 0)


def _fix_parents(layer: Path) -> None:
    """Directories we created implicitly get 0755 root:root (mkdtemp gives 0700)."""
    os.chmod(layer, 0o755)


# --- RUN: a container of the image so far -------------------------------------------------------

def run_step(store: ImageStore, img: Image, argv: list[str], cfg: dict, scratch: Path,
             log: Log, timeout: float = 600.0, check: bool = True, limits=None) -> Path:
    """Run ``argv`` in a container of ``img``; return the fresh upper dir holding its changes.

    Process tree: parent → child (unshare NEWNS|NEWPID|NEWUTS|NEWIPC|NEWNET, private mounts) →
    grandchild, PID 1 of the new PID namespace: mounts the overlay on ``scratch/merged``, enters it
    with notebook 03's ``rootfs.setup_root`` (pivot_root, /proc, /dev, masked paths) and execs. A
    plain chroot was the first version and was rejected: a RUN step could climb out of it (notebook 03
    shows the breakout), and build steps would see a different /dev than the container at run time. stdout+stderr come back through a pipe and go to ``log``. The overlay lives only in
    the child's mount namespace, so it is gone when the step ends: nothing to unmount, nothing leaks.
    """
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    os.chmod(upper, 0o755)
    from ..cgroups import Cgroup
    from ..rootfs import setup_root
    from ..security import ProcessSecurity, apply, devices, prepare
    from . import userdb  # noqa: F401 - a RUN after USER reads /etc/passwd after the pivot (_as_user)
    from ..security.options import from_docker_flags
    # Docker's defaults for a RUN step too (notebook 07), from the place `run` takes them (its flags
    # parsed, none given): 14 capabilities, the seccomp profile, no_new_privs as run's, the AppArmor
    # profile where the kernel has it (BuildKit's RUN gets docker-default); prepared here (the
    # program is cached, the profile loaded once), applied as the last step before exec
    flags = from_docker_flags()
    confined = prepare(ProcessSecurity(capabilities=flags["process"]["capabilities"],
                                       no_new_privileges=flags["process"]["noNewPrivileges"],
                                       seccomp=flags["linux"].get("seccomp"),
                                       apparmor_profile=flags["process"]["apparmorProfile"]))
    # A cgroup like any container's (issue 17 item 17): named as theirs (``mc-`` + 16 hex), so `gc`
    # removes it once empty after a crash; ``limits`` and run's device rules are in place before the
    # step's first process joins it (the child joins before it forks PID 1). Rejected: the runtime's
    # whole start path for a step — a record, a name and a state directory for a container that
    # lives for one command.
    cg = Cgroup.create(f"mc-{os.urandom(8).hex()}", limits, controllers={"memory", "cpu", "pids"})
    with cg:                                        # destroy: kill what the step left running, rmdir
        devices.apply(cg, devices.default_rules())
        return _run_in(cg, img, argv, cfg, upper, work, merged, log, timeout, check, confined, setup_root,
                       apply)


def _as_user(confined, user: str, env: dict) -> None:
    """A ``RUN`` after ``USER``: as docker, the step runs as that user — names resolved in the image's
    own /etc (after the pivot: userdb reads it without following the image's symlinks), the ids
    set by ``apply`` after the bounding set, no effective capabilities for a non-root uid (Docker's
    rule, as ``run -u``), HOME from passwd unless the image's Env names one."""
    from .userdb import resolve_user
    uid, gid, groups, home = resolve_user(user, "/")
    confined.uid, confined.gid, confined.groups = uid, gid, tuple(groups)
    if uid != 0 and confined.caps is not None:
        confined.caps = {**confined.caps, "effective": 0, "ambient": 0}
    env.setdefault("HOME", home)


def _run_in(cg, img, argv, cfg, upper, work, merged, log, timeout, check, confined, setup_root, apply):
    r, w = os.pipe()
    er, ew = os.pipe()                              # setup errors: one line, then exit 125
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(r)
            os.close(er)
            os.dup2(w, 1)
            os.dup2(w, 2)
            syscalls.set_pdeathsig(signal.SIGKILL)
            cg.add(os.getpid())
            syscalls.unshare(syscalls.CLONE_NEWNS | syscalls.CLONE_NEWPID | syscalls.CLONE_NEWUTS
                             | syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWNET)
            syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
            inner = os.fork()
            if inner == 0:
                try:
                    syscalls.set_pdeathsig(signal.SIGKILL)     # dies with the step runner (timeout)
                    syscalls.sethostname("build")
                    mount_overlay(merged, img.lowerdirs, upper, work)
                    setup_root(str(merged), hostname="build", mount_proc=True)
                    try:
                        os.chdir(cfg.get("WorkingDir") or "/")
                    except OSError:
                        os.chdir("/")
                    env = dict(e.split("=", 1) for e in cfg.get("Env", []) if "=" in e)
                    env.setdefault("PATH", DEFAULT_CONFIG["Env"][0][5:])
                    if cfg.get("User"):
                        _as_user(confined, cfg["User"], env)
                    env.setdefault("HOME", "/root")
                    os.closerange(3, ew)                       # nothing of ours leaks into RUN,
                    os.closerange(ew + 1, 1 << 16)             # ew closes itself on exec (CLOEXEC)
                    apply(confined, apparmor_now=True)     # the profile now: pdeathsig survives the exec
                    os.execvpe(argv[0], argv, env)
                except BaseException as exc:          # noqa: BLE001 - reported to the parent
                    os.write(ew, f"{exc}\n".encode())
                finally:
                    os._exit(127)
            _, status = os.waitpid(inner, 0)
            code = exit_code(status)
        except BaseException as exc:                  # noqa: BLE001
            try:
                os.write(ew, f"{exc}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    os.close(ew)
    out = b""
    with os.fdopen(r, "rb") as f:
        buf = b""
        while True:
            ready, _, _ = select.select([f], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                log(" " + line.decode(errors="replace"))
        if buf:
            log(" " + buf.decode(errors="replace"))
    _, status = os.waitpid(pid, 0)
    with os.fdopen(er, "rb") as f:
        err = f.read().decode(errors="replace").strip()
    code = os.waitstatus_to_exitcode(status)
    if err:
        raise ImageError(f"RUN {(argv[2] if argv[:2] == ['/bin/sh', '-c'] and len(argv) == 3 else shlex.join(argv))}: "
                         f"could not start: {err}")
    run_step.last = (code, out.decode(errors="replace"))
    if code != 0 and check:
        tail = out.decode(errors="replace").strip().splitlines()[-5:]
        raise ImageError(f"RUN {(argv[2] if argv[:2] == ['/bin/sh', '-c'] and len(argv) == 3 else shlex.join(argv))}: "
                         f"exited with status {code}" + (f": {' | '.join(tail)}" if tail else ""),
                         hint="fix the command; the steps before it stay cached")
    _rmtree(work)
    return upper


def run_image(ref: str | Image, argv: list[str] | None = None, *, store: ImageStore | None = None,
              timeout: float = 60.0) -> tuple[int, str]:
    """Run an image's command (Entrypoint + Cmd, or ``argv``) once, as a throw-away build step would:
    returns (exit code, output). For tests and notebook 04 before the real runtime (notebook 06)
    exists; its writable layer is discarded."""
    store = store or ImageStore()
    img = ref if isinstance(ref, Image) else store.get(ref)
    cmd = argv or [*img.config.get("Entrypoint", []), *img.config.get("Cmd", [])]
    if not cmd:
        raise ImageError(f"run {img.name}: the image has no command", hint="pass one")
    tmp = store.tmpdir("run-")
    try:
        run_step(store, img, cmd, img.config, tmp, lambda s: None, timeout=timeout, check=False)
        return run_step.last
    finally:
        _rmtree(tmp)


def commit(cid: str, name: str, *, store: ImageStore | None = None, image: str | None = None,
           config: dict | None = None, idmap: dict | None = None) -> Image:
    """``docker commit``: the container's upper dir becomes a new layer on top of its image.
    ``idmap``: a --userns=remap container's maps (its record's): the host ids it wrote become its own.

    The upper dir is copied (``cp -a``: whiteouts and opaque xattrs included), not moved: the
    container keeps its writable layer. Commit a stopped container; a running one may be mid-write.
    """
    store = store or ImageStore()
    layer = store.container_layer(cid)
    iid = image or store.image_of(cid)
    if not iid:
        raise ImageError(f"commit {cid}: which image does it run?",
                         hint="the container's layer records none; pass image=")
    base = store.get(iid)
    with store.lock():
        tmp = store.tmpdir("commit-")
        try:
            dst = tmp / "layer"
            dst.mkdir(mode=0o755)
            copy_tree(layer.upperdir, dst)
            if idmap:
                _unshift(dst, idmap)
            lid = store.add_layer_dir(dst, source=f"commit {cid}")
        finally:
            _rmtree(tmp)
        return store.add_image([*base.layers, lid], config or base.config, name=name, parent=base.id)


def _unshift(tree: Path, idmap: dict) -> None:
    """A --userns=remap container's upper dir stores host ids SUB+N (runtime/userns.py); the
    image's layer holds the container's N, as Docker's commit does. Ids outside the range stay."""
    (u_map,), (g_map,) = idmap["uidMappings"], idmap["gidMappings"]
    uid0, gid0, ucount, gcount = u_map["hostID"], g_map["hostID"], u_map["size"], g_map["size"]
    for dirpath, dirnames, filenames in os.walk(tree):
        for n in (*dirnames, *filenames, *(() if dirpath != os.fspath(tree) else ("",))):
            p = os.path.join(dirpath, n) if n else dirpath
            st = os.lstat(p)
            u = st.st_uid - uid0 if uid0 <= st.st_uid < uid0 + ucount else st.st_uid
            g = st.st_gid - gid0 if gid0 <= st.st_gid < gid0 + gcount else st.st_gid
            if (u, g) != (st.st_uid, st.st_gid):
                mode = stat.S_IMODE(st.st_mode)
                os.chown(p, u, g, follow_symlinks=False)
                if mode & 0o6000 and not stat.S_ISLNK(st.st_mode):
                    os.chmod(p, mode)         # chown clears setuid/setgid: the image keeps them


__all__ = ["build", "commit", "parse_containerfile", "run_step", "BuildResult", "Step", "Instruction"]
