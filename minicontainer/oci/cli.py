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

import argparse
import json
import os
import sys

from ..errors import MiniContainerError
from .log import configure, log

VERSION = "0.1.0"


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # one line, runc's form, not argparse's usage block
        log("error", f"{self.prog}: {message}")
        sys.exit(1)


def _parser() -> argparse.ArgumentParser:
    from .state import default_root
    p = _Parser(prog="minicontainer-oci", description="minicontainer's OCI runtime (runc's command line)")
    p.add_argument("--root", default=None, help=f"state directory (default {default_root()})")
    p.add_argument("--log", default=None, help="also write errors to this file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--systemd-cgroup", action="store_true", help="cgroupsPath is slice:prefix:name")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--rootless", default=None, help=argparse.SUPPRESS)
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="verb", parser_class=_Parser)

    c = sub.add_parser("create", help="create a container from a bundle; its program waits for start")
    c.add_argument("--bundle", "-b", default=".")
    c.add_argument("--pid-file", default=None)
    c.add_argument("--console-socket", default=None)
    c.add_argument("--no-pivot", action="store_true")
    c.add_argument("--no-new-keyring", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    c.add_argument("--notify-socket", default=None, help=argparse.SUPPRESS)
    c.add_argument("id")

    for verb, text in (("start", "run the created container's program"), ("state", "print the state as JSON"),
                       ("pause", "freeze every process"), ("resume", "thaw a paused container")):
        sub.add_parser(verb, help=text).add_argument("id")

    k = sub.add_parser("kill", help="send a signal to the container's first process (--all: to every one)")
    k.add_argument("--all", "-a", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")

    d = sub.add_parser("delete", help="remove a stopped (or created) container; --force kills it first")
    d.add_argument("--force", "-f", action="store_true")
    d.add_argument("id")

    e = sub.add_parser("exec", help="run another process in a running container")
    e.add_argument("--process", "-p", required=True)
    e.add_argument("--pid-file", default=None)
    e.add_argument("--detach", "-d", action="store_true")
    e.add_argument("--console-socket", default=None)
    e.add_argument("--tty", "-t", action="store_true", default=None)
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("id")

    ps = sub.add_parser("ps", help="the container's processes")
    ps.add_argument("--format", "-f", default="table", choices=("table", "json"))
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs="*", help=argparse.SUPPRESS)

    sub.add_parser("list", help="the containers under --root")
    sub.add_parser("features", help="what this runtime supports, as JSON")
    s = sub.add_parser("spec", help="write an example config.json")
    s.add_argument("--bundle", "-b", default=".")
    return p


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
            "seccomp": {"enabled": _security.AVAILABLE},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.minicontainer.security": "security" if _security.AVAILABLE
                        else "fallback: ids and umask only"},
    }


def run(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    configure(a.log, a.log_format)
    if a.version:
        from .spec import SPEC_VERSION
        print(f"minicontainer-oci version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    if not a.verb:
        log("error", "minicontainer-oci: a command is needed (create, start, state, kill, delete, exec, …)")
        return 1
    from .state import default_root
    root = a.root or default_root()
    if a.verb == "features":
        print(json.dumps(features(), indent=2))
        return 0
    if a.verb == "spec":
        from .spec import example
        path = os.path.join(a.bundle, "config.json")
        if os.path.exists(path):
            raise MiniContainerError(f"File {path} exists. Remove it first")
        with open(path, "w") as f:
            json.dump(example(), f, indent=2)
        return 0
    if a.verb == "list":
        from .create import status
        from .state import list_ids
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
        print(json.dumps(lifecycle.state(root, a.id), indent=2))
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
