"""A Containerfile's text: its instructions, and the ones that only change the image's config.

``minicontainer build`` (builder.py) runs the steps; this module reads them. The config-only
instructions — ``ENV``, ``CMD``, ``ENTRYPOINT``, ``USER``, ``LABEL``, ``EXPOSE``, ``STOPSIGNAL`` —
are docker's "empty layers": :func:`apply_config` changes the image's config and nothing else. What
they set is what ``run`` reads from an image: ``User`` (the container's user unless ``-u``; a
``RUN`` after it runs as that user too), ``ExposedPorts`` (``-P``), ``StopSignal`` (``stop``),
``Labels``.
"""

from __future__ import annotations

import json
import shlex

from ..errors import ConfigError

INSTRUCTIONS = ("FROM", "RUN", "ENV", "COPY", "WORKDIR", "CMD", "ENTRYPOINT", "USER", "LABEL", "EXPOSE",
                "STOPSIGNAL")
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
        buf = ""
    if not out or out[0].keyword != "FROM":
        raise ConfigError("Containerfile: the first instruction must be FROM")
    return out


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


def _expand(value: str, env: list[str]) -> str:
    import string
    return string.Template(value).safe_substitute(dict(e.split("=", 1) for e in env if "=" in e))


def apply_config(kw: str, args: str, cfg: dict) -> None:
    """A config-only instruction (:data:`CONFIG_ONLY`) applied to the image config ``cfg``, in place.
    ConfigError, one line, on a bad argument: before any step of the build runs."""
    if kw == "ENV":
        for k, v in _env_pairs(args):
            cfg["Env"] = _set_env(cfg["Env"], k, _expand(v, cfg["Env"]))
    elif kw in ("CMD", "ENTRYPOINT"):
        cfg["Cmd" if kw == "CMD" else "Entrypoint"] = _command(args)
        if kw == "ENTRYPOINT":
            cfg["Cmd"] = [] if not args.startswith("[") else cfg["Cmd"]
    elif kw == "USER":
        from .userdb import parse_spec
        user = _expand(args, cfg["Env"]).strip()
        parse_spec(user)                     # resolved in the image's /etc when it runs, as docker
        cfg["User"] = user
    elif kw == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        for k, v in _env_pairs(args, what="LABEL"):
            labels[k] = _expand(v, cfg["Env"])
        cfg["Labels"] = labels
    elif kw == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in _expand(args, cfg["Env"]).split():
            num, _, proto = word.partition("/")
            proto = proto or "tcp"
            if not num.isascii() or not num.isdigit() or not 1 <= int(num) <= 65535 or proto not in ("tcp", "udp"):
                raise ConfigError(f"EXPOSE {word!r}: expected PORT[/tcp|udp]", hint="e.g. EXPOSE 80 53/udp")
            ports[f"{int(num)}/{proto}"] = {}
        cfg["ExposedPorts"] = ports
    elif kw == "STOPSIGNAL":
        from ..signals import number
        sig = _expand(args, cfg["Env"]).strip()
        if number(sig) is None:              # a bad one fails the build, not a later `stop`
            raise ConfigError(f"STOPSIGNAL {sig!r}: not a signal", hint="a name such as SIGTERM or SIGQUIT, or a number")
        cfg["StopSignal"] = sig


