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
from .commands import RUN_OPTIONS, VERB_NAMES as _VERBS, VERBS, Args, parse_run
from .errors import MiniContainerError


_parsers: dict = {}


def parser_for(verb: str | None):
    """The parser for one verb (None: all), built once per process: `minicontainer serve` builds
    them all before forking its workers (~3 ms of every command otherwise)."""
    if verb not in _parsers:
        _parsers[verb] = build_parser(verb)
    return _parsers[verb]


def build_parser(only: str | None = None):
    """argparse from the table in commands.py; ``only``: just that verb's sub-parser (building all
    ~20 costs ~20 ms of a command's start)."""
    import argparse  # here: a command forwarded to `minicontainer serve` never needs it (~6 ms)
    p = argparse.ArgumentParser(prog="minicontainer",
                                description="A real Linux container runtime, built in the course.")
    p.add_argument("--version", action="version", version=f"minicontainer {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    groups: dict = {}
    for name, help, _served, arguments in VERBS:
        words = name.split()
        if only is not None and words[0] != only:
            continue
        where = sub
        if len(words) == 2:          # `network create`: a sub-command of `network`
            if words[0] not in groups:
                g = sub.add_parser(words[0], help=f"{words[0]} commands")
                groups[words[0]] = g.add_subparsers(dest="subverb", metavar="COMMAND", required=True)
            where = groups[words[0]]
        v = where.add_parser(words[-1], help=help, description=help)
        v.set_defaults(func=globals()["_" + "_".join(words).replace("-", "_")])
        for arg in arguments:
            for flags, options in (RUN_OPTIONS if arg == "RUN_OPTIONS" else (arg,)):
                v.add_argument(*flags, **options)
    return p


def _config(a):
    from .images.commands import prepare_run, publish_all
    prepare_run(a)                       # --pull: the image is there before the container exists
    a.publish = a.publish + publish_all(a)                       # -P
    from .runtime.config import ContainerConfig, client_env, env_file
    env = [e for f in a.env_file for e in env_file(f)] + client_env(a.env)
    return ContainerConfig(image=a.image, command=a.command, name=a.name, env=env,
                           workdir=a.workdir, user=a.user, hostname=a.hostname, memory=a.memory, cpus=a.cpus,
                           pids_limit=a.pids_limit, network=a.network, ports=a.publish,
                           volumes=a.volume, read_only=a.read_only, init=a.init, tty=a.tty,
                           rm=getattr(a, "rm", False), dns=a.dns, dns_search=a.dns_search,
                           cap_add=a.cap_add, cap_drop=a.cap_drop, privileged=a.privileged,
                           security_opt=a.security_opt, devices=a.device,
                           cgroupns=a.cgroupns, userns=a.userns, entrypoint=a.entrypoint,
                           ulimits=a.ulimit, tmpfs=a.tmpfs)


def _run(a):
    cfg = _config(a)
    if a.detach:
        if cfg.rm:
            from .errors import ConfigError
            raise ConfigError("--rm and -d together are not supported yet")
        from .runtime.monitor import run_detached
        print(run_detached(cfg)["id"])
        return 0
    from .runtime.container import create
    from .runtime.start_path import start
    if cfg.tty:
        from .runtime.tty import Terminal
        with Terminal() as term:         # not a terminal → a clear error before anything exists
            return start(create(cfg), pty=term.adopt, on_started=lambda _rec: term.start_relay())
    return start(create(cfg))


def _create(a):
    from .runtime import state
    from .runtime.container import create
    rec = create(_config(a))
    state.update(rec["id"], owner=None)  # created and left for `start`: not a crashed run
    print(rec["id"])


def _start(a):
    from .runtime import state
    rec = state.find(a.container)
    if a.attach:
        from .runtime.start_path import start
        return start(rec)
    # detached start: the same monitor as run -d, for this very record (same id, same layer)
    from .runtime.config import ContainerConfig
    from .runtime.monitor import run_detached
    print(run_detached(ContainerConfig.from_dict(rec["config"]), rec)["id"])


def _ps(a):
    from .runtime import lifecycle
    print(f"{'CONTAINER ID':14}{'NAME':20}{'STATUS':12}{'IMAGE':16}COMMAND")
    for r in lifecycle.list_containers(all=a.all):
        st = r.get("status", "?")
        if st == "stopped" and r.get("exit_code") is not None:
            st = f"exited({r['exit_code']})"
        print(f"{r['id'][:12]:14}{str(r.get('name')):20}{st:12}{r.get('config', {}).get('image', '?'):16}"
              + " ".join(r.get("argv") or []))


def _exec(a):
    from .runtime.config import client_env
    from .runtime.exec import exec_in
    a.env = client_env(a.env)
    if not a.command:
        from .errors import ConfigError
        raise ConfigError("exec needs a command", hint="minicontainer exec NAME CMD…")
    if a.tty:
        from .runtime.tty import Terminal
        with Terminal() as term:
            return exec_in(a.container, a.command, env=a.env, workdir=a.workdir, user=a.user,
                           pty=term.adopt, tty=True, on_started=term.start_relay)
    return exec_in(a.container, a.command, env=a.env, workdir=a.workdir, user=a.user)


def _logs(a):
    import time
    from .runtime import lifecycle
    path = lifecycle.logs_path(a.container)
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
            if not a.follow or lifecycle.inspect(a.container)["status"] not in ("running", "paused"):
                return 0
            time.sleep(0.1)


def _each(names, f):
    for n in names:
        f(n)
        print(n)


def _stop(a):
    from .runtime import lifecycle
    _each(a.container, lambda n: lifecycle.stop(n, a.time))


def _kill(a):
    from .runtime import lifecycle
    sig = lifecycle.parse_signal(a.signal)
    _each(a.container, lambda n: lifecycle.kill(n, sig))


def _pause(a):
    from .runtime import lifecycle
    _each(a.container, lifecycle.pause)


def _unpause(a):
    from .runtime import lifecycle
    _each(a.container, lifecycle.unpause)


def _rm(a):
    from .runtime import lifecycle
    _each(a.container, lambda n: lifecycle.remove(n, force=a.force))


def _inspect(a):
    import json
    from .runtime import lifecycle
    print(json.dumps(lifecycle.inspect(a.container), indent=2, sort_keys=True))


def _stats(a):
    from .runtime import lifecycle
    names = a.container or [r["name"] for r in lifecycle.list_containers()]
    print(f"{'NAME':20}{'CPU(us)':>12}{'MEM':>12}{'PEAK':>12}{'PIDS':>6}")
    for n in names:
        s = lifecycle.stats(n)
        print(f"{s['name']:20}{s['cpu_usage_usec']:>12}{s['memory_current']:>12}{s['memory_peak']:>12}{s['pids_current']:>6}")


def _import(a):
    from .images import import_archive
    print(import_archive(a.file, a.name).id)


def _build(a):
    from .images import build
    limits = None
    if getattr(a, "memory", None):
        from .cgroups import Limits
        limits = Limits(memory=a.memory)
    file = "Containerfile"
    if a.file:      # docker's -f: a path from here (or, failing that, in the context)
        file = os.path.abspath(a.file) if os.path.exists(a.file) else a.file
    print(build(a.context, a.tag, progress=print, limits=limits, file=file, build_args=a.build_arg,
                no_cache=a.no_cache).image.id)


def _commit(a):
    from .images import commit
    from .runtime import state
    rec = state.find(a.container)
    print(commit(rec["id"], a.name, idmap=rec.get("idmap")).id)


def _images(a):
    from .images import commands
    return commands.images(a)


def _rmi(a):
    from .images import commands
    return commands.rmi(a)


def _pull(a):
    from .images import commands
    return commands.pull(a)


def _push(a):
    from .images import commands
    return commands.push(a)


def _tag(a):
    from .images import commands
    return commands.tag(a)


def _save(a):
    from .images import commands
    return commands.save(a)


def _login(a):
    from .images import commands
    return commands.login(a)


def _logout(a):
    from .images import commands
    return commands.logout(a)


def _network_create(a):
    from .network import commands
    return commands._create(a)


def _network_ls(a):
    from .network import commands
    return commands._ls(a)


def _network_inspect(a):
    from .network import commands
    return commands._inspect(a)


def _network_rm(a):
    from .network import commands
    return commands._rm(a)


def _network_connect(a):
    from .network import commands
    return commands._connect(a)


def _network_disconnect(a):
    from .network import commands
    return commands._disconnect(a)


def _gc(a):
    from . import server
    from .runtime.garbage import gc
    removed = gc() + server.remove_stale_socket()
    for r in removed:
        print("removed", r)
    if not removed:
        print("nothing to remove")


def _serve(a):
    from . import server
    if a.stop or a.status:
        print(server.control("stop" if a.stop else "status") or "no server is running")
        return 0
    return server.serve(execute, parser_for, detach=a.detach, idle=a.idle)


def main(argv: list[str] | None = None) -> int:
    """Run the command in this process. The command a user types goes through the launcher first
    (``client.main``: to a running ``minicontainer serve`` when there is one, else here); so does
    ``python -m minicontainer.cli`` (below). The launcher sits above this module, not below it:
    this module never imports it (tests/unit/test_structure.py)."""
    return execute(sys.argv[1:] if argv is None else argv)


def execute(argv: list[str]) -> int:
    """Parse and run one command in this process."""
    first = argv[0] if argv else None
    values = parse_run(argv[1:]) if first in ("run", "create") else None
    if values is not None:     # the common line, read from the table without argparse (commands.py)
        args = Args(verb=first, func=_run if first == "run" else _create, **values)
    else:
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


if __name__ == "__main__":     # python -m minicontainer.cli: forwarded like the installed command
    from minicontainer.client import served
    _code = served(sys.argv[1:], os.environ)
    sys.exit(main() if _code is None else _code)
