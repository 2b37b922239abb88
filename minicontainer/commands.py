"""The command line's vocabulary, in one place: every verb, its options, and ``run``'s options.

Three readers use this table: the parser (cli.py builds argparse from it), the launcher (client.py
decides from the verb alone whether a server may run the command) and the server (server.py tells a
foreground ``run`` from a detached one by walking ``run``'s options). Before, each kept its own
copy by hand, and a verb added to one was missing from the others.

And a command as bytes: :func:`request` (the launcher's side) and :func:`parse_request` (the
server's), so that neither of the two imports the other. Imported by the launcher on its fast path:
only modules built into the interpreter (``posix``, ``sys``; see client.py). Rejected: deriving the launcher's lists
from argparse at run time (argparse costs ~6 ms to import, the launcher's whole budget).

To add a verb: a row in :data:`VERBS` and a handler ``_<verb>`` in cli.py (``network create`` →
``_network_create``; a two-word verb becomes a sub-command of its first word). A row is
``(name, help, served, arguments)``: ``served`` says whether ``minicontainer serve`` may run it for
the command (False for ``serve`` itself); each argument is ``(flags, options)`` as argparse's
``add_argument`` takes them, with ``RUN_OPTIONS`` standing for ``run``'s options.
"""

import posix
import sys

#: where records live unless MINICONTAINER_STATE_ROOT says otherwise (paths.py; the launcher reads
#: it before anything else is imported), and the server's socket in it
STATE_ROOT = "/run/minicontainer"
SOCKET_NAME = "server.sock"

_T = {"action": "store_true"}
_CONTAINERS = (("container",), {"nargs": "+"})

#: options of ``run`` and ``create`` (the image and the command follow them)
RUN_OPTIONS = (
    (("--rm",), {**_T, "help": "remove the container when it exits"}),
    (("-d", "--detach"), {**_T, "help": "run in the background (logs: minicontainer logs)"}),
    (("-i", "--interactive"), {**_T, "help": "keep stdin open"}),
    (("-t", "--tty"), {**_T, "help": "allocate a terminal"}),
    (("--name",), {}),
    (("--hostname",), {}),
    (("-e", "--env"), {"action": "append", "default": [], "metavar": "K=V",
                        "help": "K alone: the value of K here (left out if unset)"}),
    (("--env-file",), {"action": "append", "default": [], "metavar": "FILE",
                       "help": "K=V lines (before -e's, which win)"}),
    (("-w", "--workdir"), {"metavar": "DIR"}),
    (("-u", "--user"), {"metavar": "USER[:GROUP]", "help": "names resolved in the image's /etc"}),
    (("--memory",), {"metavar": "SIZE", "help": "e.g. 64m"}),
    (("--cpus",), {"metavar": "N", "help": "e.g. 0.5"}),
    (("--pids-limit",), {"metavar": "N"}),
    (("--ulimit",), {"action": "append", "default": [], "metavar": "NAME=SOFT[:HARD]",
                     "help": "a resource limit of the container's processes, e.g. nofile=1024:4096"}),
    (("--network",), {"default": "bridge", "help": "bridge|host|none|container:NAME|a network's NAME"}),
    (("-p", "--publish"), {"action": "append", "default": [], "metavar": "[IP:]HOST:CTR[/tcp|udp]"}),
    (("-v", "--volume"), {"action": "append", "default": [], "metavar": "SRC:DST[:ro]"}),
    (("--read-only",), _T),
    (("--tmpfs",), {"action": "append", "default": [], "metavar": "DST[:OPTIONS]",
                    "help": "a tmpfs at DST (noexec,nosuid,nodev unless OPTIONS say; size=64m, mode=1770)"}),
    (("--init",), {**_T, "help": "run an init as PID 1 that reaps zombies"}),
    (("--entrypoint",), {"metavar": "CMD", "help": "run CMD instead of the image's Entrypoint; "
                         "the image's Cmd is dropped too (docker's rule)"}),
    (("--pull",), {"choices": ("missing", "always", "never"), "default": "missing",
                   "help": "pull the image first (missing: only when it is not in the store)"}),
    (("-P", "--publish-all"), {**_T, "help": "publish the image's exposed ports"}),
    (("--dns",), {"action": "append", "default": [], "metavar": "IP"}),
    (("--dns-search",), {"action": "append", "default": [], "metavar": "DOMAIN"}),
    (("--cap-add",), {"action": "append", "default": [], "metavar": "CAP",
                      "help": "add a capability to Docker's default 14 (e.g. NET_ADMIN; ALL)"}),
    (("--cap-drop",), {"action": "append", "default": [], "metavar": "CAP",
                       "help": "drop a capability (e.g. NET_RAW; ALL: start from none)"}),
    (("--privileged",), {**_T, "help": "DANGEROUS: every capability, no seccomp, no masked paths, "
                                       "every device: root in the container is root on the host"}),
    (("--security-opt",), {"action": "append", "default": [], "metavar": "OPT",
                           "help": "no-new-privileges, seccomp=unconfined|FILE.json, systempaths=unconfined, "
                                   "apparmor=unconfined|PROFILE (default: Docker's seccomp profile, "
                                   "no_new_privs off, and the AppArmor profile minicontainer-default "
                                   "where the kernel has AppArmor)"}),
    (("--device",), {"action": "append", "default": [], "metavar": "HOST[:CTR][:rwm]",
                     "help": "pass a host device (default: only null, zero, full, random, urandom, tty)"}),
    (("--cgroupns",), {"choices": ("private", "host"), "default": "private",
                       "help": "cgroup namespace (default private: the container sees its own group as /)"}),
    (("--userns",), {"choices": ("host", "remap"), "default": "host",
                     "help": "user namespace (default host, Docker's). remap: root inside is the "
                             "'minicontainer' range of /etc/subuid and /etc/subgid on the host (sudo make "
                             "setup adds it); the image's files show as root's inside. A -v host "
                             "directory keeps its host owners: host root's shows as nobody (65534) and "
                             "container root cannot write it (chown it to the range's start). The image's "
                             "layers are idmapped mounts, or a chowned copy (cached) where the kernel "
                             "refuses them; MINICONTAINER_USERNS_LAYERS=auto|idmap|copy chooses"}),
)
#: --insecure-registry, for the verbs that talk to a registry
_REGISTRY = (("--insecure-registry",), {"action": "append", "metavar": "HOST",
             "help": "allow plain HTTP (and unverified TLS) to HOST, as dockerd's option does"})
_QUIET = (("-q", "--quiet"), _T)
_IMAGE_AND_COMMAND = ((("image",), {}), (("command",), {"nargs": "..."}))   # "...": argparse.REMAINDER

VERBS = (
    ("run", "create and start a container", True, ("RUN_OPTIONS", *_IMAGE_AND_COMMAND)),
    ("create", "create a container (start it with `start`)", True, ("RUN_OPTIONS", *_IMAGE_AND_COMMAND)),
    ("start", "start a created container", True, ((("-a", "--attach"), _T), (("container",), {}))),
    ("ps", "list containers", True, ((("-a", "--all"), _T),)),
    ("exec", "run a command in a running container", True, (
        (("-i", "--interactive"), _T),
        (("-t", "--tty"), _T),
        (("-e", "--env"), {"action": "append", "default": [], "metavar": "K=V",
                        "help": "K alone: the value of K here (left out if unset)"}),
        (("-w", "--workdir"), {}),
        (("-u", "--user"), {"metavar": "USER[:GROUP]", "help": "default: the container's user"}),
        (("container",), {}),
        (("command",), {"nargs": "..."}))),
    ("logs", "print a detached container's output", True, ((("-f", "--follow"), _T), (("container",), {}))),
    ("stop", "SIGTERM, then SIGKILL after a grace period", True,
     ((("-t", "--time"), {"type": float, "default": 10}), _CONTAINERS)),
    ("kill", "send a signal to a container's PID 1", True,
     ((("-s", "--signal"), {"default": "KILL"}), _CONTAINERS)),
    ("pause", "freeze every process of a container", True, (_CONTAINERS,)),
    ("unpause", "thaw a paused container", True, (_CONTAINERS,)),
    ("rm", "remove containers", True, ((("-f", "--force"), _T), _CONTAINERS)),
    ("inspect", "a container's record as JSON", True, ((("container",), {}),)),
    ("stats", "cgroup statistics of running containers", True,
     ((("--no-stream",), _T), (("container",), {"nargs": "*"}))),
    ("images", "list images", True, ((("--digests",), {**_T, "help": "(always shown)"}),
                                     (("-q", "--quiet"), {**_T, "help": "only the image ids"}))),
    ("pull", "download an image from a registry", True, (
        _REGISTRY, (("--platform",), {"metavar": "OS/ARCH[/VARIANT]", "help": "default: the host's"}),
        _QUIET, (("image",), {}))),
    ("push", "upload an image to a registry", True, (
        _REGISTRY, (("--format",), {"choices": ("v2s2", "oci"), "default": "v2s2",
                                    "help": "manifest format (default: Docker v2 schema 2)"}),
        _QUIET, (("image",), {}))),
    ("tag", "give an image another name", True, ((("source",), {}), (("target",), {}))),
    ("save", "write an image as a docker-save or OCI-layout tar", True, (
        (("-o", "--output"), {"required": True, "metavar": "FILE"}),
        (("--format",), {"choices": ("docker", "oci"), "default": "docker"}), (("image",), {}))),
    ("login", "store credentials for a registry (config.json, mode 0600)", True, (
        _REGISTRY, (("-u", "--username"), {}), (("-p", "--password"), {}),
        (("--password-stdin",), _T), (("server",), {}))),
    ("logout", "remove the stored credentials of a registry", True, ((("server",), {}),)),
    ("import", "import a docker-save or OCI archive", True, ((("file",), {}), (("name",), {"nargs": "?"}))),
    ("build", "build an image from a Containerfile", True, (
        (("-t", "--tag"), {}),
        (("-f", "--file"), {"metavar": "FILE", "help": "the Containerfile (default: CONTEXT/Containerfile "
                                                       "or Dockerfile)"}),
        (("--build-arg",), {"action": "append", "default": [], "metavar": "NAME=VALUE",
                            "help": "a value for the Containerfile's ARG NAME (NAME alone: its value here)"}),
        (("--no-cache",), {**_T, "help": "run every step again"}),
        (("-m", "--memory"), {"help": "memory limit of each RUN step"}),
        (("context",), {}))),
    ("rmi", "remove images (by name, NAME@DIGEST, or id)", True,
     ((("-f", "--force"), _T), (("image",), {"nargs": "+"}))),
    ("commit", "a container's changes as a new image", True, ((("container",), {}), (("name",), {}))),
    ("gc", "remove what crashed runs left behind", True, ()),
    # run in the command's own process, never by `serve`: `network create` starts the network's
    # DNS responder, a daemon that must not be a child of a server's worker
    ("network create", "create a bridge or overlay network", False, (
        (("-d", "--driver"), {"default": "bridge", "help": "bridge (default) or overlay"}),
        (("--subnet",), {"metavar": "CIDR"}),
        (("--gateway",), {"metavar": "IP", "help": "bridge only (default: the subnet's first address)"}),
        (("--peer",), {"action": "append", "default": [], "metavar": "IP",
                       "help": "overlay: another host's underlay address (repeatable)"}),
        (("--peers-file",), {"metavar": "FILE", "help": "overlay: peers, one address a line"}),
        (("--local",), {"metavar": "IP", "help": "overlay: this host's underlay address (default: the "
                                                 "source address of the route to the first peer)"}),
        (("--vni",), {"metavar": "N", "help": "overlay: VXLAN network id (default: lowest free from 4096)"}),
        (("name",), {}))),
    ("network ls", "list networks", False, (_QUIET,)),
    ("network inspect", "a network's record, address plan and containers as JSON", False,
     ((("name",), {"nargs": "+"}),)),
    ("network rm", "remove networks (refused while containers are attached)", False,
     ((("name",), {"nargs": "+"}),)),
    ("network connect", "plug a running container into a network (one more ethN)", False,
     ((("network",), {}), (("container",), {}))),
    ("network disconnect", "unplug a container from a network", False,
     ((("network",), {}), (("container",), {}))),
    ("serve", "keep the runtime loaded; commands forward themselves to it (fast starts)", False, (
        (("-d", "--detach"), {**_T, "help": "run in the background"}),
        (("--idle",), {"type": float, "default": 0, "metavar": "SECONDS",
                       "help": "exit after this long without a command (0: never)"}),
        (("--stop",), {**_T, "help": "stop the running server"}),
        (("--status",), {**_T, "help": "is a server running, and how many commands has it run"}))),
)

#: first words of the command line that are verbs, and those a server may run
VERB_NAMES = frozenset(v[0].split()[0] for v in VERBS)
SERVED = frozenset(v[0].split()[0] for v in VERBS if v[2])


def takes_value(options: dict) -> bool:
    """Does an option with these argparse settings consume the next word?"""
    return options.get("action") not in ("store_true", "store_false", "count") and "nargs" not in options


class Args:
    """What argparse's ``Namespace`` is to a handler in cli.py: the parsed values as attributes."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self):
        return "Args(%s)" % ", ".join(f"{k}={v!r}" for k, v in sorted(self.__dict__.items()))


_RUN_FLAGS: dict = {}


def _run_flags() -> dict:
    """flag -> (dest, options) for ``run``'s options, built once (argparse's dest rule: the first
    long flag, dashes to underscores)."""
    if not _RUN_FLAGS:
        for flags, options in RUN_OPTIONS:
            long = next((f for f in flags if f.startswith("--")), flags[0])
            for f in flags:
                _RUN_FLAGS[f] = (long.lstrip("-").replace("-", "_"), options)
    return _RUN_FLAGS


def run_defaults() -> dict:
    """``run``'s options as argparse sets them before reading a word (fresh lists each time)."""
    out = {}
    for dest, options in _run_flags().values():
        d = options.get("default", False if options.get("action") == "store_true" else None)
        out[dest] = list(d) if isinstance(d, list) else d
    return out


def parse_run(words: list[str]):
    """The words after ``run`` or ``create`` → ``{dest: value}`` exactly as argparse would parse them
    from the table above, plus ``image`` and ``command`` — or None where argparse must speak: help,
    a mistake (an unknown or abbreviated option, a missing value, a value not among the choices, no
    image), ``--`` or a value that looks like an option. cli.py then parses with argparse, which
    gives its usual answer; so a line parsed here is parsed as argparse would, and one not parsed
    here costs only the import. Why: argparse's import (with gettext and locale) and its parser's
    construction are a measurable part of a plain start (bench/README.md), and the table already
    says everything about ``run``'s options (tests/unit/test_cli_parsing.py checks the two agree).
    Rejected: a second table written for this parser (two lists again, which this module ended)."""
    flags, values = _run_flags(), run_defaults()

    def store(dest, options, value, explicit=False) -> bool:
        # a separate word that starts with "-" is an option to argparse ("expected one argument");
        # a value glued on (--name=-x, -e-x) is taken as it is
        if (value.startswith("-") and not explicit) or ("choices" in options and value not in options["choices"]):
            return False
        if options.get("action") == "append":
            values[dest].append(value)
        else:
            values[dest] = value
        return True

    i, n = 0, len(words)
    while i < n:
        w = words[i]
        if not w.startswith("-") or w == "-":
            break                                  # the image: the rest is the command
        if w.startswith("--"):
            name, eq, value = w.partition("=")
            if name not in flags:
                return None                        # also "--" itself, and abbreviations
            dest, options = flags[name]
            if not takes_value(options):
                if eq:
                    return None
                values[dest] = True
            elif eq:
                if not store(dest, options, value, explicit=True):
                    return None
            else:
                i += 1
                if i >= n or not store(dest, options, words[i]):
                    return None
        else:
            for j in range(1, len(w)):
                entry = flags.get("-" + w[j])
                if entry is None:
                    return None
                dest, options = entry
                if not takes_value(options):
                    values[dest] = True
                    continue
                value, explicit = w[j + 1:], True
                if not value:
                    i += 1
                    if i >= n:
                        return None
                    value, explicit = words[i], False
                if value.startswith("=") or not store(dest, options, value, explicit):
                    return None
                break
        i += 1
    if i >= n or "--" in words[i:]:
        return None        # no image: argparse's error; a "--" in the command: argparse drops it
    values["image"], values["command"] = words[i], words[i + 1:]
    return values


#: ``run``'s options that consume the next word (``--name X``, ``-e K=V``…)
RUN_VALUE_FLAGS = frozenset(f for flags, o in RUN_OPTIONS if takes_value(o) for f in flags)
#: ``run``'s one-letter options that consume a value: in a cluster (``-de K=V``, ``-eK=V``) the
#: rest of the cluster, or the next word, is that value
RUN_VALUE_LETTERS = frozenset(f[1] for f in RUN_VALUE_FLAGS if len(f) == 2)


# --- a command as bytes: the request the launcher sends the server (client.py, server.py) -------
MAGIC = b"MC1"
_FSENC = sys.getfilesystemencoding()


def socket_path(env) -> str:
    """Where ``minicontainer serve`` listens: in the state root, so each root has its own server."""
    return env.get("MINICONTAINER_STATE_ROOT", STATE_ROOT).rstrip("/") + "/" + SOCKET_NAME


def request(kind: bytes, argv: list[str], env) -> bytes:
    """The request's bytes (the format: client.py's docstring). ValueError: a NUL in an argument."""
    umask = posix.umask(0)
    posix.umask(umask)
    try:
        cwd = posix.getcwd()
    except FileNotFoundError:
        cwd = "/"
    enc = _FSENC
    fields = [kind, cwd.encode(enc, "surrogateescape"), b"%d" % umask, b"%d" % len(argv),
              *(a.encode(enc, "surrogateescape") for a in argv),
              *(f"{k}={v}".encode(enc, "surrogateescape") for k, v in env.items())]
    if any(b"\0" in f for f in fields):
        raise ValueError("NUL byte in an argument or the environment")
    body = b"\0".join(fields)
    return MAGIC + len(body).to_bytes(4, "big") + body


def parse_request(body: bytes) -> tuple[bytes, str, int, list[str], dict]:
    """The server's side of :func:`request` (without MAGIC and length): kind, cwd, umask, argv, env."""
    def dec(b: bytes) -> str:
        return b.decode(_FSENC, "surrogateescape")          # os.fsdecode, without importing os
    fields = body.split(b"\0")
    kind, cwd, umask, argc = fields[0], dec(fields[1]), int(fields[2]), int(fields[3])
    argv = [dec(a) for a in fields[4:4 + argc]]
    env = {}
    for item in fields[4 + argc:]:
        k, _, v = item.partition(b"=")
        if k:
            env[dec(k)] = dec(v)
    return kind, cwd, umask, argv, env


