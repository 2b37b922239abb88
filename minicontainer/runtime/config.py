"""What a container is made of (notebook 06): the docker run flags as one validated record.

Validation happens here, before anything exists on the host, so bad input leaves nothing behind.
Sizes and quotas are parsed once, when the record is made (the command line's edge): ``--memory
64m`` becomes 67108864 bytes, ``--cpus 0.5`` the number 0.5, ``--pids-limit 20`` the integer 20 —
and the container's record keeps those numbers (docker's inspect shows bytes too). A record read
back (``from_dict``) holds numbers already; parsing a number again is only a range check.
"""

from __future__ import annotations

import os

from .._record import asdict, factory, record

from ..errors import ConfigError

#: what a container's command and -e values may add up to, in bytes (each word + its NUL). Linux
#: guarantees execve at least this much (ARG_MAX is a quarter of the stack limit, never below 32
#: pages); past it the command fails at exec, or sooner: the release message to PID 1 (parked.py)
#: carries both twice, and failed with "Message too long" once the container existed.
MAX_ARGS_BYTES = 128 << 10

#: RFC 1123 host name labels, as Docker checks --hostname; 64 bytes is the kernel's (__NEW_UTS_LEN)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def client_env(values) -> list[str]:
    """``-e`` as docker's client reads it: ``NAME=VALUE`` as given; a bare ``NAME`` takes the value
    from the command's own environment, and is left out when that has none (``-e TERM``,
    ``-e AWS_PROFILE``). At the command line's edge only: a record, or a notebook's
    ``runtime.run(env=[...])``, has no client environment, and ``NAME`` there stays an error
    (:meth:`ContainerConfig.validate`). A served command's worker runs with the command's
    environment, so this reads the same values there."""
    out = []
    for e in values:
        if "=" in e or not e:
            out.append(e)
        elif e in os.environ:
            out.append(f"{e}={os.environ[e]}")
    return out


def env_file(path: str) -> list[str]:
    """``--env-file FILE`` as docker reads it: a ``NAME=VALUE`` per line, taken as written (no
    quotes removed); ``NAME`` alone as ``-e NAME``; blank lines and ``#`` comments skipped. Its
    entries come before ``-e``'s, which win. One-line errors: a missing file, a name with spaces."""
    from ..errors import from_oserror
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_ARGS_BYTES + 1)
    except UnicodeDecodeError:
        raise ConfigError(f"--env-file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise from_oserror(exc, "read the --env-file", path) from None
    if len(text) > MAX_ARGS_BYTES:            # (the environment could not hold it either)
        raise ConfigError(f"--env-file {path}: longer than {MAX_ARGS_BYTES} bytes",
                          hint="pass large data in a file (-v)")
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name = name.lstrip()
        if not name or any(c.isspace() for c in name):
            raise ConfigError(f"--env-file {path} line {no}: variable {name!r} is empty or has whitespace",
                              hint="write NAME=VALUE, one per line")
        out.append(f"{name}={value}" if eq else name)
    return client_env(out)


#: docker's --ulimit names (its go-units table) → the kernel's resource
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
           "rtprio", "rttime", "sigpending", "stack")


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """``--ulimit NAME=SOFT[:HARD]`` (docker's; -1: unlimited; HARD defaults to SOFT) →
    ("RLIMIT_NAME", soft, hard). ConfigError, one line, on anything else."""
    name, eq, values = str(text).partition("=")
    soft_s, _, hard_s = values.partition(":")
    hard_s = hard_s or soft_s

    def num(v: str) -> int | None:
        return int(v) if v == "-1" or (v.isascii() and v.isdigit() and len(v) < 20) else None
    soft, hard = num(soft_s), num(hard_s)
    if name not in ULIMITS or not eq or soft is None or hard is None:
        raise ConfigError(f"invalid --ulimit {text!r}", hint=f"NAME=SOFT[:HARD] with NAME one of {', '.join(ULIMITS)}")
    if hard != -1 and (soft == -1 or soft > hard):
        raise ConfigError(f"invalid --ulimit {text!r}: the soft limit is above the hard one")
    return "RLIMIT_" + name.upper(), soft, hard


#: --tmpfs options that are mount flags (name → (set?, the flag's name in syscalls)) and data keys
_TMPFS_FLAGS = {"ro": (True, "MS_RDONLY"), "rw": (False, "MS_RDONLY"), "nosuid": (True, "MS_NOSUID"),
                "suid": (False, "MS_NOSUID"), "nodev": (True, "MS_NODEV"), "dev": (False, "MS_NODEV"),
                "noexec": (True, "MS_NOEXEC"), "exec": (False, "MS_NOEXEC")}
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes")


def parse_tmpfs(text: str) -> tuple[str, int, str]:
    """``--tmpfs DST[:OPTIONS]`` (docker's: noexec, nosuid and nodev unless the options say
    otherwise; ``size=64m``, ``mode=1770``, ``uid=``, ``gid=``) → (DST, mount flags, data).
    ConfigError, one line, on anything else."""
    from .. import syscalls as sc
    from ..rootfs import runtime_mount_of
    dst, _, opts = str(text).partition(":")
    if not dst.startswith("/") or "\0" in text:
        raise ConfigError(f"invalid --tmpfs {text!r}: the path must be absolute", hint="e.g. --tmpfs /run:size=64m")
    dst = "/" + os.path.normpath(dst).lstrip("/")
    own = runtime_mount_of(dst)
    if dst == "/" or own:
        raise ConfigError(f"invalid --tmpfs {text!r}: {dst} is " + (f"the runtime's own mount ({own})" if own
                          else "the root"), hint="mount it somewhere else, e.g. /run or /cache")
    flags, data = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, {}
    for o in filter(None, opts.split(",")):
        key, eq, value = o.partition("=")
        if not eq and key in _TMPFS_FLAGS:
            on, name = _TMPFS_FLAGS[key]
            flags = flags | getattr(sc, name) if on else flags & ~getattr(sc, name)
        elif eq and key in _TMPFS_DATA and value and value.isascii() and value.replace("%", "").rstrip("kmgKMG").isdigit():
            data[key] = value
        else:
            raise ConfigError(f"invalid --tmpfs option {o!r} in {text!r}",
                              hint="rw, ro, exec, noexec, suid, nosuid, dev, nodev, size=, mode=, uid=, gid=, nr_inodes=")
    return dst, flags, ",".join(f"{k}={v}" for k, v in data.items())


def owned_tmpfs_data(data: str, owner: tuple[int, int] | None) -> str:
    """A parsed --tmpfs's data with a remapped container's root (host ids) as the owner of the
    tmpfs's root, unless the options name uid/gid themselves."""
    if owner is None:
        return data
    keys = {o.partition("=")[0] for o in data.split(",") if o}
    extra = [f"{k}={v}" for k, v in (("uid", owner[0]), ("gid", owner[1])) if k not in keys]
    return ",".join(filter(None, [data, *extra]))


def _parsed(value, parse, shape: tuple, what: str) -> list:
    """One --ulimit/--tmpfs as the record keeps it: parsed once (from the flag's text), or the
    record's own list read back (each item of the right type, else the record is refused)."""
    if isinstance(value, str):
        return list(parse(value))
    if isinstance(value, (list, tuple)) and len(value) == len(shape) and \
            all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(value, shape)):
        return list(value)
    raise ConfigError(f"invalid {what} {value!r}", hint="give it as on the command line")


def check_workdir(path, where: str = "-w") -> str:
    """A working directory must be an absolute path (a string): never an integer, which ``os.chdir``
    would take as a file descriptor (an ``fchdir`` to whatever the runtime had open)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"invalid working directory {path!r} ({where})", hint="use an absolute path")
    return path


@record
class ContainerConfig:
    image: str
    command: list[str] = factory(list)
    name: str | None = None
    env: list[str] = factory(list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    memory: int | None = None          # bytes (given as "64m" or bytes)
    cpus: float | None = None          # CPUs, CFS quota / period (given as "0.5" or a number)
    pids_limit: int | None = None
    network: str = "bridge"
    ports: list[str] = factory(list)
    volumes: list[str] = factory(list)
    read_only: bool = False
    init: bool = False
    tty: bool = False
    rm: bool = False
    dns: list[str] = factory(list)
    dns_search: list[str] = factory(list)
    cap_add: list[str] = factory(list)
    cap_drop: list[str] = factory(list)
    privileged: bool = False
    security_opt: list[str] = factory(list)
    devices: list[str] = factory(list)
    cgroupns: str = "private"          # Docker's default on cgroup v2; "host" shares the host's
    userns: str = "host"               # Docker's default; "remap": root inside is a subordinate uid
    entrypoint: str | None = None      # --entrypoint: replaces the image's Entrypoint and Cmd
    ulimits: list = factory(list)      # --ulimit: ["RLIMIT_NOFILE", soft, hard], parsed once (parse_ulimit)
    tmpfs: list = factory(list)        # --tmpfs: [DST, mount flags, data], parsed once (parse_tmpfs)

    def __post_init__(self):
        self.ulimits = [_parsed(u, parse_ulimit, (str, int, int), "--ulimit") for u in self.ulimits]
        self.tmpfs = [_parsed(t, parse_tmpfs, (str, int, str), "--tmpfs") for t in self.tmpfs]
        if self.memory is not None or self.cpus is not None or self.pids_limit is not None:
            from ..cgroups.values import MIN_MEMORY, parse_cpus, parse_memory, parse_pids
            if self.memory is not None:
                self.memory = parse_memory(self.memory, minimum=MIN_MEMORY)
            if self.cpus is not None:
                self.cpus = parse_cpus(self.cpus)
            if self.pids_limit is not None:
                self.pids_limit = parse_pids(self.pids_limit)

    def to_dict(self) -> dict:
        return asdict(self)

    def rlimits(self) -> tuple:
        """``--ulimit``'s values as security.ProcessSecurity's rlimits: (("RLIMIT_NOFILE", soft, hard), …)."""
        return tuple(tuple(u) for u in self.ulimits)

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__record_fields__})

    def validate(self) -> "ContainerConfig":
        """Raise ConfigError/NotFoundError on bad input. Network and volume parsers come from their
        modules (lazily: ``network`` is only imported when ports or a non-trivial mode are used)."""
        for e in self.env:
            if "=" not in e or e.startswith("="):
                raise ConfigError(f"invalid environment variable {e!r}", hint="use -e KEY=VALUE")
        if self.user is not None:           # names are resolved in the image's /etc at start
            from ..images.userdb import parse_spec
            parse_spec(self.user)
        if self.dns or self.dns_search:
            from ..resolvconf import validate
            validate(self.dns, self.dns_search)
        if self.name is not None:
            import re
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", self.name):
                raise ConfigError(f"invalid container name {self.name!r}",
                                  hint="letters, digits, '_', '.', '-'; at most 63 characters")
        if self.hostname is not None:
            import re
            if len(self.hostname) > 64 or not re.fullmatch(rf"{_LABEL}(?:\.{_LABEL})*", self.hostname):
                raise ConfigError(f"invalid hostname {self.hostname!r}",
                                  hint="RFC 1123: letters, digits and '-' in dot-separated labels, "
                                       "at most 64 characters")
        if self.entrypoint is not None and not isinstance(self.entrypoint, str):
            raise ConfigError(f"invalid --entrypoint {self.entrypoint!r}", hint="give one program: --entrypoint sh")
        words = (*self.command, *self.env, *((self.entrypoint,) if self.entrypoint else ()))
        size = sum(len(w.encode(errors="surrogateescape")) + 1 for w in words)
        if size > MAX_ARGS_BYTES:
            raise ConfigError(f"the command and environment are too long ({size} bytes)",
                              hint=f"at most {MAX_ARGS_BYTES} bytes; pass large data in a file (-v)")
        if self.workdir is not None:
            check_workdir(self.workdir, "-w")
        if self.cgroupns not in ("private", "host"):
            raise ConfigError(f"invalid --cgroupns {self.cgroupns!r}", hint="use private (the default) or host")
        self.check_userns()
        self.limits()
        if self.init:                        # the host's static init must be there (init.py)
            from .init import host_binary
            host_binary()
        if self.cap_add or self.cap_drop or self.privileged or self.security_opt or self.devices:
            from .confine import fields      # Docker's defaults need no check; flags do
            fields(self)
        from ..rootfs import parse_volume
        for v in self.volumes:
            parse_volume(v)
        if self.network not in ("none", "host") or self.ports:
            from .. import network
            network.parse_mode(self.network)
            published = [network.parse_publish(p) for p in self.ports]
            if self.ports and self.network != "bridge":
                raise ConfigError("-p needs --network bridge")
            if published:
                from ..network import ports
                ports.check_unique(published)
                for p in published:
                    ports.check_address(p)
        return self

    def check_userns(self) -> None:
        """``--userns``: host (Docker's default) or remap (runtime/userns.py); what remap cannot do
        is refused as Docker refuses it."""
        if self.userns not in ("host", "remap"):
            raise ConfigError(f"invalid --userns {self.userns!r}", hint="use host (the default) or remap")
        if self.userns != "remap":
            return
        if self.privileged:
            raise ConfigError("--privileged is incompatible with --userns=remap (Docker's rule: a "
                              "privileged container is root on the host anyway)",
                              hint="use --userns=host with --privileged")
        if self.network == "host":          # (container:NAME: a remapped peer's, userns.check_peer)
            raise ConfigError(f"--network {self.network} is not supported with --userns=remap (that "
                              "network namespace is not owned by the container's user namespace)",
                              hint="use --network bridge, none, a user network or container:NAME of a "
                                   "remapped container, or --userns=host")

    def limits(self):
        """The cgroup limits (None: none given), from the numbers parsed at construction."""
        if self.memory is None and self.cpus is None and self.pids_limit is None:
            return None
        from ..cgroups import Limits
        return Limits(memory=self.memory, cpus=self.cpus, pids=self.pids_limit)
