"""``minicontainer-oci``: runc's command line, as conmon (podman) and containerd-shim-runc-v2 call it.

    minicontainer-oci [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] VERB …
      create --bundle B [--pid-file P] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
      start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID
      exec --process FILE [--pid-file P] [--detach] [--console-socket S] [--tty] ID
      pause ID | resume ID | ps [--format table|json] ID | list | features | spec | --version

Only parsing and error reporting live here; each verb is one call into the package. An error is
one line in runc's form (``time=… level=error msg="container does not exist"``) on stderr and in the
``--log`` file, and the exit status is 1 (``exec`` without --detach exits with the program's status).
"""
from __future__ import annotations

import os
import sys

from .. import fastjson
from ..errors import MiniContainerError
from .log import configure, log

VERSION = "0.1.0"


class UsageError(MiniContainerError):
    """Bad command line (runc: "Incorrect Usage")."""


#: verb → (options taking a value, flags, positional names, how many positionals may be missing)
#: A hand-written parser, not argparse: argparse (with gettext) costs ~15 ms of every call, and
#: conmon and the shim call the runtime several times per container.
VERBS = {
    "create": ({"--bundle": "bundle", "-b": "bundle", "--pid-file": "pid_file", "--console-socket": "console_socket",
                "--preserve-fds": "preserve_fds", "--notify-socket": "notify_socket"},
               {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}, ("id",), 0),
    "start": ({}, {}, ("id",), 0),
    "state": ({}, {}, ("id",), 0),
    "pause": ({}, {}, ("id",), 0),
    "resume": ({}, {}, ("id",), 0),
    "kill": ({}, {"--all": "all", "-a": "all"}, ("id", "signal"), 1),
    "delete": ({}, {"--force": "force", "-f": "force"}, ("id",), 0),
    "exec": ({"--process": "process", "-p": "process", "--pid-file": "pid_file", "--console-socket": "console_socket",
              "--preserve-fds": "preserve_fds", "--cwd": "cwd"},
             {"--detach": "detach", "-d": "detach", "--tty": "tty", "-t": "tty"}, ("id",), 0),
    "ps": ({"--format": "format", "-f": "format"}, {}, ("id",), 0),
    "list": ({"--format": "format", "-f": "format"}, {"--quiet": "quiet", "-q": "quiet"}, (), 0),
    "features": ({}, {}, (), 0),
    "spec": ({"--bundle": "bundle", "-b": "bundle"}, {"--rootless": "rootless"}, (), 0),
}
GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format", "--rootless": "rootless",
                 "--criu": "criu"}
GLOBAL_FLAGS = {"--systemd-cgroup": "systemd_cgroup", "--debug": "debug", "-v": "version", "--version": "version",
                "-h": "help", "--help": "help"}
USAGE = __doc__.split("\n\n")[1]


class Args:
    def __init__(self):
        self.root = self.log = self.verb = self.pid_file = self.console_socket = self.process = None
        self.log_format, self.bundle, self.signal, self.format = "text", ".", "SIGTERM", "table"
        self.preserve_fds = 0
        self.tty = None
        self.systemd_cgroup = self.debug = self.version = self.help = self.no_pivot = self.all = False
        self.force = self.detach = self.quiet = False
        self.extra: list[str] = []


def _split(arg: str) -> tuple[str, str | None]:
    if arg.startswith("-") and "=" in arg:
        k, v = arg.split("=", 1)
        return k, v
    return arg, None


def parse(argv: list[str]) -> Args:
    """runc's grammar: global options, a verb, its options and positionals (options may also follow
    the positionals, and Go's single-dash long form ``-bundle`` is accepted)."""
    a = Args()
    it = list(argv)
    i = 0

    def value(opt, inline):
        nonlocal i
        if inline is not None:
            return inline
        i += 1
        if i >= len(it):
            raise UsageError(f"flag needs an argument: {opt}")
        return it[i]

    def norm(opt):
        return "-" + opt if opt.startswith("-") and not opt.startswith("--") and len(opt) > 2 else opt

    while i < len(it):
        opt, inline = _split(it[i])
        opt = norm(opt)
        if opt in GLOBAL_VALUES:
            setattr(a, GLOBAL_VALUES[opt], value(opt, inline))
        elif opt in GLOBAL_FLAGS:
            setattr(a, GLOBAL_FLAGS[opt], True)
        elif opt.startswith("-"):
            raise UsageError(f"flag provided but not defined: {it[i]}")
        else:
            a.verb = opt
            i += 1
            break
        i += 1
    if a.log_format not in ("text", "json"):
        raise UsageError(f"unknown log-format {a.log_format!r}", hint="text or json")
    if a.verb is None:
        return a
    if a.verb not in VERBS:
        raise UsageError(f"No help topic for '{a.verb}'", hint="verbs: " + ", ".join(VERBS))
    values, flags, names, optional = VERBS[a.verb]
    pos = []
    while i < len(it):
        opt, inline = _split(it[i])
        opt = norm(opt)
        if opt == "--":
            pos.extend(it[i + 1:])
            break
        if opt in values:
            setattr(a, values[opt], value(opt, inline))
        elif opt in flags:
            setattr(a, flags[opt], True if inline is None else inline.lower() in ("1", "true"))
        elif opt in ("-h", "--help"):
            a.help = True
        elif opt.startswith("-") and len(opt) > 1 and not (a.verb == "kill" and pos):
            raise UsageError(f"{a.verb}: flag provided but not defined: {it[i]}")
        else:
            pos.append(it[i])
        i += 1
    if a.help:
        return a
    if len(pos) < len(names) - optional:
        raise UsageError(f'"{a.verb}" requires {"exactly " if not optional else "at least "}'
                         f'{len(names) - optional} argument(s): {" ".join(n.upper() for n in names)}')
    if len(pos) > len(names) and a.verb != "ps":
        raise UsageError(f"{a.verb}: unexpected argument {pos[len(names)]!r}")
    for n, v in zip(names, pos):
        setattr(a, n, v)
    a.extra = pos[len(names):]
    try:
        a.preserve_fds = int(a.preserve_fds)
    except ValueError:
        raise UsageError(f"--preserve-fds {a.preserve_fds!r}: not a number") from None
    if a.verb == "exec" and not a.process:
        raise UsageError("exec: --process FILE is required", hint="the process is an OCI process object in JSON")
    if a.format not in ("table", "json"):
        raise UsageError(f"invalid format option {a.format!r}", hint="json or table")
    return a


def features() -> dict:
    from . import mounts, spec
    from . import _security
    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": spec.SPEC_VERSION,
        "hooks": list(spec.HOOK_KINDS),
        "mountOptions": sorted(set(mounts.FLAGS) | set(mounts.PROPAGATION)),
        "linux": {
            "namespaces": list(spec.NAMESPACES),
            "capabilities": None,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": _security.seccomp_version() is not None},
            "apparmor": {"enabled": _security.apparmor_enabled()}, "selinux": {"enabled": False},
        },
        # runc's key: podman and containerd read which libseccomp applies a profile
        "annotations": {"io.github.seccomp.libseccomp.version": _security.seccomp_version() or "none"},
    }


def run(argv: list[str]) -> int:
    a = parse(argv)
    configure(a.log, a.log_format)
    if a.help or (a.verb is None and not a.version):
        print(USAGE)
        return 0 if a.help else 1
    if a.version:
        from .spec import SPEC_VERSION
        print(f"minicontainer-oci version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    from .state import default_root
    root = a.root or default_root()
    if a.verb == "features":
        print(fastjson.dumps(features(), indent=2))
        return 0
    if a.verb == "spec":
        from .spec import example
        path = os.path.join(a.bundle, "config.json")
        if os.path.exists(path):
            raise MiniContainerError(f"File {path} exists. Remove it first")
        with open(path, "w") as f:
            f.write(fastjson.dumps(example(), indent=2))
        return 0
    if a.verb == "list":
        from .state import list_ids, status
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} BUNDLE")
        for cid in list_ids(root):
            try:
                st, _, s = status(root, cid)
            except MiniContainerError:
                continue
            print(f"{cid:<20} {st.pid:<8} {s:<10} {st.data.get('bundle', '')}")
        return 0
    if a.verb == "create":
        from .create import create
        return create(root, a.id, a.bundle, pid_file=a.pid_file, console_socket=a.console_socket,
                      no_pivot=a.no_pivot, preserve_fds=a.preserve_fds, systemd_cgroup=a.systemd_cgroup)
    if a.verb == "exec":
        from .exec import exec_process
        return exec_process(root, a.id, a.process, pid_file=a.pid_file, detach=a.detach,
                            console_socket=a.console_socket, tty=a.tty, preserve_fds=a.preserve_fds)
    from . import lifecycle
    if a.verb == "state":
        print(fastjson.dumps(lifecycle.state(root, a.id), indent=2))
    elif a.verb == "start":
        lifecycle.start(root, a.id)
    elif a.verb == "kill":
        lifecycle.kill(root, a.id, a.signal, a.all)
    elif a.verb == "delete":
        lifecycle.delete(root, a.id, a.force)
    elif a.verb == "pause":
        lifecycle.pause(root, a.id)
    elif a.verb == "resume":
        lifecycle.resume(root, a.id)
    elif a.verb == "ps":
        print(lifecycle.ps(root, a.id, a.format))
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = run(argv)
    except MiniContainerError as exc:
        log("error", str(exc))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback only with --debug
        if "--debug" in argv or os.environ.get("MINICONTAINER_DEBUG"):
            import traceback
            traceback.print_exc()
        log("error", f"internal error: {type(exc).__name__}: {exc}")
        code = 1
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
