"""The ``minicontainer`` command: parses arguments and calls the library. Nothing else.

Introduced in notebook 00 (``--version``, the root check, error reporting); notebook 06 adds the
docker-shaped verbs. Imports are lazy: starting a ``--network none`` container must never import
pyroute2, matplotlib or ipywidgets.

Errors: every :class:`~minicontainer.errors.MiniContainerError` becomes one line on stderr and the
docker exit code (125 runtime error, 126 cannot execute, 127 not found, 128+N killed by signal N);
no traceback unless ``MINICONTAINER_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .client import VERBS as _VERBS
from .errors import MiniContainerError


class _Skip:
    """Stands in for the sub-parsers of verbs not being run: building all 20 costs ~20 ms of start."""

    def add_argument(self, *a, **k):
        pass

    def set_defaults(self, **k):
        pass


_parsers: dict = {}


def parser_for(verb: str | None):
    """The parser for one verb (None: all), built once per process: `minicontainer serve` builds
    them all before forking its workers (~3 ms of every command otherwise)."""
    if verb not in _parsers:
        _parsers[verb] = build_parser(verb)
    return _parsers[verb]


def build_parser(only: str | None = None):
    import argparse  # here: a command forwarded to `minicontainer serve` never needs it (~6 ms)
    p = argparse.ArgumentParser(prog="minicontainer",
                                description="A real Linux container runtime, built in the course.")
    p.add_argument("--version", action="version", version=f"minicontainer {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    _verbs(sub, only)
    return p


def _run_opts(v):
    v.add_argument("--rm", action="store_true", help="remove the container when it exits")
    v.add_argument("-d", "--detach", action="store_true", help="run in the background (logs: minicontainer logs)")
    v.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    v.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    v.add_argument("--name")
    v.add_argument("--hostname")
    v.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    v.add_argument("-w", "--workdir", metavar="DIR")
    v.add_argument("-u", "--user", metavar="UID[:GID]")
    v.add_argument("--memory", metavar="SIZE", help="e.g. 64m")
    v.add_argument("--cpus", metavar="N", help="e.g. 0.5")
    v.add_argument("--pids-limit", metavar="N")
    v.add_argument("--network", default="bridge", help="bridge|host|none|container:NAME")
    v.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CTR[/tcp|udp]")
    v.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    v.add_argument("--read-only", action="store_true")
    v.add_argument("--init", action="store_true", help="run an init as PID 1 that reaps zombies")
    v.add_argument("image")
    v.add_argument("command", nargs="...")          # argparse.REMAINDER


def _verbs(sub, only=None):
    def verb(name, func, help):
        if only is not None and name != only:
            return _Skip()
        v = sub.add_parser(name, help=help, description=help)
        v.set_defaults(func=func)
        return v

    _run_opts(verb("run", _run, "create and start a container"))
    _run_opts(verb("create", _create, "create a container (start it with `start`)"))
    v = verb("start", _start, "start a created container")
    v.add_argument("-a", "--attach", action="store_true")
    v.add_argument("container")
    v = verb("ps", _ps, "list containers")
    v.add_argument("-a", "--all", action="store_true")
    v = verb("exec", _exec, "run a command in a running container")
    v.add_argument("-i", "--interactive", action="store_true")
    v.add_argument("-t", "--tty", action="store_true")
    v.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    v.add_argument("-w", "--workdir")
    v.add_argument("container")
    v.add_argument("command", nargs="...")
    v = verb("logs", _logs, "print a detached container's output")
    v.add_argument("-f", "--follow", action="store_true")
    v.add_argument("container")
    v = verb("stop", _stop, "SIGTERM, then SIGKILL after a grace period")
    v.add_argument("-t", "--time", type=float, default=10)
    v.add_argument("container", nargs="+")
    v = verb("kill", _kill, "send a signal to a container's PID 1")
    v.add_argument("-s", "--signal", default="KILL")
    v.add_argument("container", nargs="+")
    for name, f, h in (("pause", _pause, "freeze every process of a container"),
                       ("unpause", _unpause, "thaw a paused container")):
        verb(name, f, h).add_argument("container", nargs="+")
    v = verb("rm", _rm, "remove containers")
    v.add_argument("-f", "--force", action="store_true")
    v.add_argument("container", nargs="+")
    verb("inspect", _inspect, "a container's record as JSON").add_argument("container")
    v = verb("stats", _stats, "cgroup statistics of running containers")
    v.add_argument("--no-stream", action="store_true")
    v.add_argument("container", nargs="*")
    verb("images", _images, "list images")
    v = verb("import", _import, "import a docker-save or OCI archive")
    v.add_argument("file")
    v.add_argument("name", nargs="?")
    v = verb("build", _build, "build an image from a Containerfile")
    v.add_argument("-t", "--tag")
    v.add_argument("context")
    verb("rmi", _rmi, "remove images").add_argument("image", nargs="+")
    v = verb("commit", _commit, "a container's changes as a new image")
    v.add_argument("container")
    v.add_argument("name")
    verb("gc", _gc, "remove what crashed runs left behind")
    v = verb("serve", _serve, "keep the runtime loaded; commands forward themselves to it (fast starts)")
    v.add_argument("-d", "--detach", action="store_true", help="run in the background")
    v.add_argument("--idle", type=float, default=0, metavar="SECONDS",
                   help="exit after this long without a command (0: never)")
    v.add_argument("--stop", action="store_true", help="stop the running server")
    v.add_argument("--status", action="store_true", help="is a server running, and how many commands has it run")
    if only in (None, "network"):
        from .network.commands import add_parsers   # the `network` verbs live with the networks
        add_parsers(sub)


def _config(a):
    from .runtime.config import ContainerConfig
    return ContainerConfig(image=a.image, command=a.command, name=a.name, env=a.env, workdir=a.workdir,
                           user=a.user, hostname=a.hostname, memory=a.memory, cpus=a.cpus,
                           pids_limit=a.pids_limit, network=a.network, ports=a.publish,
                           volumes=a.volume, read_only=a.read_only, init=a.init, tty=a.tty,
                           rm=getattr(a, "rm", False))


def _run(a):
    from .runtime import process
    cfg = _config(a)
    if a.detach:
        if cfg.rm:
            from .errors import ConfigError
            raise ConfigError("--rm and -d together are not supported yet")
        print(process.run_detached(cfg)["id"])
        return 0
    if cfg.tty:
        from .runtime.tty import Terminal
        with Terminal() as term:         # not a terminal → a clear error before anything exists
            return process.start(process.create(cfg), stdio=(term.slave,) * 3,
                                 on_started=lambda _rec: term.start_relay())
    return process.start(process.create(cfg))


def _create(a):
    from .runtime import process, state
    rec = process.create(_config(a))
    state.update(rec["id"], owner=None)  # created and left for `start`: not a crashed run
    print(rec["id"])


def _start(a):
    from .runtime import process, state
    rec = state.find(a.container)
    if a.attach:
        return process.start(rec)
    # detached start: the same supervisor as run -d, for this very record (same id, same layer)
    cfg = process.ContainerConfig.from_dict(rec["config"])
    print(process.run_detached(cfg, rec)["id"])


def _ps(a):
    from .runtime import process
    print(f"{'CONTAINER ID':14}{'NAME':20}{'STATUS':12}{'IMAGE':16}COMMAND")
    for r in process.list_containers(all=a.all):
        st = r.get("status", "?")
        if st == "stopped" and r.get("exit_code") is not None:
            st = f"exited({r['exit_code']})"
        print(f"{r['id'][:12]:14}{str(r.get('name')):20}{st:12}{r.get('config', {}).get('image', '?'):16}"
              + " ".join(r.get("argv") or []))


def _exec(a):
    from .runtime import process
    if not a.command:
        from .errors import ConfigError
        raise ConfigError("exec needs a command", hint="minicontainer exec NAME CMD…")
    if a.tty:
        from .runtime.tty import Terminal
        with Terminal() as term:
            return process.exec_in(a.container, a.command, env=a.env, workdir=a.workdir,
                                   stdio=(term.slave,) * 3, tty=True, on_started=term.start_relay)
    return process.exec_in(a.container, a.command, env=a.env, workdir=a.workdir)


def _logs(a):
    import time
    from .runtime import process
    path = process.logs_path(a.container)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        while True:
            chunk = f.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                continue
            if not a.follow or process.inspect(a.container)["status"] not in ("running", "paused"):
                return 0
            time.sleep(0.1)


def _each(names, f):
    for n in names:
        f(n)
        print(n)


def _stop(a):
    from .runtime import process
    _each(a.container, lambda n: process.stop(n, a.time))


def _kill(a):
    from .runtime import process
    sig = process.parse_signal(a.signal)
    _each(a.container, lambda n: process.kill(n, sig))


def _pause(a):
    from .runtime import process
    _each(a.container, process.pause)


def _unpause(a):
    from .runtime import process
    _each(a.container, process.unpause)


def _rm(a):
    from .runtime import process
    _each(a.container, lambda n: process.remove(n, force=a.force))


def _inspect(a):
    import json
    from .runtime import process
    print(json.dumps(process.inspect(a.container), indent=2, sort_keys=True))


def _stats(a):
    from .runtime import process
    names = a.container or [r["name"] for r in process.list_containers()]
    print(f"{'NAME':20}{'CPU(us)':>12}{'MEM':>12}{'PEAK':>12}{'PIDS':>6}")
    for n in names:
        s = process.stats(n)
        print(f"{s['name']:20}{s['cpu_usage_usec']:>12}{s['memory_current']:>12}{s['memory_peak']:>12}{s['pids_current']:>6}")


def _images(a):
    from .images import list_images
    print(f"{'NAME':30}{'IMAGE ID':14}SIZE")
    for img in list_images():
        print(f"{img.name:30}{img.id[:12]:14}{img.size()}")


def _import(a):
    from .images import import_archive
    print(import_archive(a.file, a.name).id)


def _build(a):
    from .images import build
    print(build(a.context, a.tag, progress=print).image.id)


def _rmi(a):
    from .images import remove_image
    for ref in a.image:
        for line in remove_image(ref):
            print(line)


def _commit(a):
    from .images import commit
    from .runtime import state
    print(commit(state.find(a.container)["id"], a.name).id)


def _gc(a):
    from .runtime import process
    removed = process.gc()
    for r in removed:
        print("removed", r)
    if not removed:
        print("nothing to remove")


def _serve(a):
    from . import server
    if a.stop or a.status:
        print(server.control("stop" if a.stop else "status") or "no server is running")
        return 0
    return server.serve(detach=a.detach, idle=a.idle)


def main(argv: list[str] | None = None) -> int:
    """The command: forwarded to a running ``minicontainer serve`` when there is one (client.py;
    the installed launcher calls ``client.main`` directly), else run here."""
    argv = sys.argv[1:] if argv is None else argv
    from .client import served
    code = served(argv, os.environ)
    return execute(argv) if code is None else code


def execute(argv: list[str]) -> int:
    """Parse and run one command in this process."""
    first = argv[0] if argv else None
    parser = parser_for(first if first and not first.startswith("-") and first in _VERBS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 0
    try:
        from .host import require_root
        require_root(f"minicontainer {args.verb}")
        return int(args.func(args) or 0)
    except MiniContainerError as exc:
        if os.environ.get("MINICONTAINER_DEBUG"):
            raise
        print(f"minicontainer: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
