"""A Containerfile's text: its instructions, and the ones that only change the image's config.

``minicontainer build`` (builder.py) runs the steps; this module reads them. The config-only
instructions — ``ENV``, ``CMD``, ``ENTRYPOINT``, ``USER``, ``LABEL``, ``EXPOSE``, ``STOPSIGNAL`` —
are docker's "empty layers": :func:`apply_config` changes the image's config and nothing else. What
they set is what ``run`` reads from an image: ``User`` (the container's user unless ``-u``; a
``RUN`` after it runs as that user too), ``ExposedPorts`` (``-P``), ``StopSignal`` (``stop``),
``Labels``. ``ARG NAME[=DEFAULT]`` (``build --build-arg NAME=VALUE``) is a build-time variable:
``${NAME}`` in the instructions after it and an environment variable of their ``RUN`` steps, kept
out of the image's config (docker's rule: an ``ENV`` of the same name wins).
"""

from __future__ import annotations

import json
import shlex

from ..errors import ConfigError

INSTRUCTIONS = ("FROM", "ARG", "RUN", "ENV", "COPY", "WORKDIR", "CMD", "ENTRYPOINT", "USER", "LABEL",
                "EXPOSE", "STOPSIGNAL")
#: the instructions that add no layer
CONFIG_ONLY = ("ENV", "CMD", "ENTRYPOINT", "USER", "LABEL", "EXPOSE", "STOPSIGNAL")


class Instruction:
    """One instruction: its keyword (upper case), its argument text, its first line."""

    def __init__(self, keyword: str, args: str, line: int):
        self.keyword, self.args, self.line = keyword, args, line

    def __eq__(self, other) -> bool:
        return isinstance(other, Instruction) and (self.keyword, self.args, self.line) == \
            (other.keyword, other.args, other.line)

    def __repr__(self) -> str:
        return f"Instruction({self.keyword!r}, {self.args!r}, {self.line})"

    def __str__(self) -> str:
        return f"{self.keyword} {self.args}"


def parse_containerfile(text: str) -> list[Instruction]:
    """Lines → instructions; ConfigError (with the line number) for anything outside the subset."""
    out: list[Instruction] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        kw, _, args = buf.partition(" ")
        kw = kw.upper()
        if kw not in INSTRUCTIONS:
            raise ConfigError(f"Containerfile line {start}: unsupported instruction {kw!r}",
                              hint=f"this subset knows {', '.join(INSTRUCTIONS)}")
        if not args.strip():
            raise ConfigError(f"Containerfile line {start}: {kw} needs an argument")
        out.append(Instruction(kw, args.strip(), start))
        _check(out[-1])
        buf = ""
    first = next((i for i in out if i.keyword != "ARG"), None)
    if first is None or first.keyword != "FROM":
        raise ConfigError("Containerfile: the first instruction must be FROM (only ARG may come before it)")
    return out


def _check(ins: Instruction) -> None:
    """A config-only instruction or an ARG that is wrong whatever the variables say fails now, with
    its line, before any step runs (one with ``$`` is checked when its values are known)."""
    if "$" in ins.args:
        return
    try:
        if ins.keyword == "ARG":
            parse_arg(ins.args)
        elif ins.keyword in ("USER", "LABEL", "EXPOSE", "STOPSIGNAL"):
            apply_config(ins.keyword, ins.args, {"Env": [], "Cmd": []})
    except ConfigError as exc:
        raise ConfigError(f"Containerfile line {ins.line}: {exc.message}", hint=exc.hint) from None


def _command(args: str) -> list[str]:
    """JSON (exec) form ``["a","b"]`` or shell form ``a b`` → argv."""
    if args.startswith("["):
        try:
            v = json.loads(args)
        except ValueError as exc:
            raise ConfigError(f"bad JSON form {args!r}: {exc}") from exc
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"bad JSON form {args!r}: expected a list of strings")
        return v
    return ["/bin/sh", "-c", args]


def _env_pairs(args: str, what: str = "ENV") -> list[tuple[str, str]]:
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [(words[0], args.split(None, 1)[1] if len(words) > 1 else "")]   # ENV KEY value
    pairs = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise ConfigError(f"{what} {args!r}: expected KEY=VALUE")
        pairs.append((k, v))
    return pairs


def _set_env(env: list[str], key: str, value: str) -> list[str]:
    return [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]


def _expand(value: str, env: list[str], build_args: dict | None = None) -> str:
    """``$NAME`` and ``${NAME}`` from the image's Env, then from the build's ARGs (an ENV wins)."""
    import string
    values = dict(build_args or {})
    values.update(e.split("=", 1) for e in env if "=" in e)
    return string.Template(value).safe_substitute(values)


def parse_arg(text: str) -> tuple[str, str | None]:
    """``ARG NAME`` / ``ARG NAME=DEFAULT`` → (name, default or None)."""
    name, eq, default = text.strip().partition("=")
    if not name.isidentifier() or not name.isascii():
        raise ConfigError(f"ARG {text!r}: expected NAME or NAME=DEFAULT", hint="e.g. ARG VERSION=1.0")
    return name, (default if eq else None)


def apply_config(kw: str, args: str, cfg: dict, build_args: dict | None = None) -> None:
    """A config-only instruction (:data:`CONFIG_ONLY`) applied to the image config ``cfg``, in place.
    ConfigError, one line, on a bad argument: before any step of the build runs."""
    if kw == "ENV":
        for k, v in _env_pairs(args):
            cfg["Env"] = _set_env(cfg["Env"], k, _expand(v, cfg["Env"], build_args))
    elif kw in ("CMD", "ENTRYPOINT"):
        cfg["Cmd" if kw == "CMD" else "Entrypoint"] = _command(args)
        if kw == "ENTRYPOINT":
            cfg["Cmd"] = [] if not args.startswith("[") else cfg["Cmd"]
    elif kw == "USER":
        from .userdb import parse_spec
        user = _expand(args, cfg["Env"], build_args).strip()
        parse_spec(user)                     # resolved in the image's /etc when it runs, as docker
        cfg["User"] = user
    elif kw == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        for k, v in _env_pairs(args, what="LABEL"):
            labels[k] = _expand(v, cfg["Env"], build_args)
        cfg["Labels"] = labels
    elif kw == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in _expand(args, cfg["Env"], build_args).split():
            num, _, proto = word.partition("/")
            proto = proto or "tcp"
            if not num.isascii() or not num.isdigit() or not 1 <= int(num) <= 65535 or proto not in ("tcp", "udp"):
                raise ConfigError(f"EXPOSE {word!r}: expected PORT[/tcp|udp]", hint="e.g. EXPOSE 80 53/udp")
            ports[f"{int(num)}/{proto}"] = {}
        cfg["ExposedPorts"] = ports
    elif kw == "STOPSIGNAL":
        from ..signals import number
        sig = _expand(args, cfg["Env"], build_args).strip()
        if number(sig) is None:              # a bad one fails the build, not a later `stop`
            raise ConfigError(f"STOPSIGNAL {sig!r}: not a signal", hint="a name such as SIGTERM or SIGQUIT, or a number")
        cfg["StopSignal"] = sig


