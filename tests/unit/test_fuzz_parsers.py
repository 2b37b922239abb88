"""Fuzz the CLI's value parsers in-process (issue 17): generated values for every flag a user types.

Seeded generators (reproducible: the seed is the class's name), one class per kind of input. Two
kinds of class:

- *noise*: any string from the flag's alphabet — valid or not, the parser either accepts it or raises
  a MiniContainerError with exit code 125 and a one-line message; never another exception;
- *invalid*: values Docker refuses — each must raise that one-line MiniContainerError here, before
  anything exists on the host.

The classes issue 17 found broken (its items 11 and 13) carried ``xfail(strict=True)`` until their
fixes and are plain tests now. The few inputs sent through the real CLI are in
tests/integration/test_hostile_fuzz_cli.py.
"""

from __future__ import annotations

import random
import string

import pytest

from minicontainer.errors import MiniContainerError
from minicontainer.runtime.config import ContainerConfig

N = 300      # values per class: the whole module runs in well under a second

_UNICODE = "²³¹①٣٤۵१໓߅𝟘𝟙ⅷ"            # str.isdigit() or float() say yes to some of these
_WEIRD = " \t\n\r\x0b\x0c'\"$`\\;&|<>*?~#%@!,=+" + _UNICODE + "é\u202e\ufeff"


def _noise(rng: random.Random, alphabet: str, maxlen: int = 24) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, maxlen)))


def _config(**kw) -> ContainerConfig:
    kw.setdefault("network", "none")
    return ContainerConfig("busybox", ["true"], **kw)


def _judge(value, call, *, must_fail: bool) -> str | None:
    """None if ``call()`` behaved; else what went wrong, for the failure list."""
    try:
        call()
    except MiniContainerError as exc:
        if exc.exit_code != 125:
            return f"{value!r}: exit code {exc.exit_code}"
        if "\n" in str(exc).strip() or not str(exc).strip():
            return f"{value!r}: message not one line: {str(exc)!r}"
        return None
    except Exception as exc:                 # noqa: BLE001 — this is what the test hunts
        return f"{value!r}: {type(exc).__name__}: {exc}"
    return f"{value!r}: accepted" if must_fail else None


def _run_class(name: str, gen, call, *, must_fail: bool, n: int = N) -> None:
    rng = random.Random(name)
    seen, bad = set(), []
    for _ in range(n):
        v = gen(rng)
        if v in seen:
            continue
        seen.add(v)
        why = _judge(v, lambda: call(v), must_fail=must_fail)
        if why:
            bad.append(why)
    assert not bad, f"{len(bad)} of {len(seen)} {name} inputs misbehaved, e.g.:\n  " + "\n  ".join(bad[:8])


def _digits(rng, lo=1, hi=12):
    return "".join(rng.choice(string.digits) for _ in range(rng.randint(lo, hi)))


# --- the generators --------------------------------------------------------------------------------
GEN = {
    "memory noise": lambda r: _noise(r, string.digits + ".kmgtKMGTbiB -+e_x" + _UNICODE),
    "memory huge": lambda r: "9" * r.randint(20, 400) + r.choice(["", "b", "k", "m", "g", "t"]),
    "cpus noise": lambda r: r.choice(["nan", "inf", "-inf", "1e400", "-0", "0x1", "1_0"]) if r.random() < .2
    else _noise(r, string.digits + ".e-+_ " + _UNICODE, 12),
    "pids noise": lambda r: _noise(r, string.digits + "-+_. " + _UNICODE, 30),
    "ports noise": lambda r: _noise(r, string.digits + ":./tcpudp" + "abcx[]-", 24),
    "ports invalid": lambda r: r.choice([f"{_digits(r, 6, 9)}:80", f"0:{_digits(r, 1, 4)}", "80:0",
                                         f"{r.randint(65536, 10**9)}:80", "80:80/sctp", "1.2.3.4.5:80:80",
                                         f"{r.randint(256, 999)}.0.0.1:80:80", ":80", "80:", "::80",
                                         "80:80/", "8o:80"]),
    "volumes noise": lambda r: _noise(r, "/:abcro.w-" + _WEIRD.replace("\x00", ""), 30),
    "volumes invalid": lambda r: r.choice(["relative:/x", "/tmp:relative", "/tmp:/", "/tmp:/x:rx",
                                           "/tmp:/x:ro:ro", ":", "/tmp:", ":/x", "/tmp:/x:", "/tmp:/.",
                                           f"/nonexistent-{_digits(r)}:/x"]),
    "volumes over / or /proc": lambda r: "/tmp:" + r.choice(["//", "//.", "/proc", "/proc/", "//proc",
                                                              "/proc/sys", "/./proc"]),
    "users noise": lambda r: _noise(r, string.digits + ":-+ " + "abc", 14),
    "users out of range": lambda r: r.choice([str(r.randint(2**32 - 1, 10**30)),
                                              f"0:{r.randint(2**32 - 1, 10**30)}",
                                              f"{r.randint(2**32 - 1, 10**30)}:0"]),
    "users non-ascii digits": lambda r: r.choice(["", "1:"]) + "".join(
        r.choice(_UNICODE[:12]) for _ in range(r.randint(1, 3))),
    "names noise": lambda r: _noise(r, string.ascii_letters + string.digits + "_.-/:" + _WEIRD, 70),
    "env noise": lambda r: _noise(r, string.ascii_letters + "=_" + _WEIRD, 30),
    "env over the kernel's per-string limit": lambda r: "A=" + "x" * r.randint(128 * 1024, 400 * 1024),
    "hostnames invalid": lambda r: r.choice(["h\n1.2.3.4 evil", "-lead", "trail-", "a" * r.randint(64, 300),
                                             "sp ace", "sl/ash", "tab\there", "dot..dot", "", "é",
                                             "h\x1b[31m"]),
    "workdirs noise": lambda r: "/" + _noise(r, "abc/._-" + _WEIRD, 30),
    "image refs noise": lambda r: _noise(r, string.ascii_lowercase + string.digits + ":/@._-A" + _WEIRD, 30),
}

CALL = {
    "memory": lambda v: _config(memory=v).validate(),
    "cpus": lambda v: _config(cpus=v).validate(),
    "pids": lambda v: _config(pids_limit=v).validate(),
    "ports": lambda v: _config(network="bridge", ports=[v]).validate(),
    "volumes": lambda v: _config(volumes=[v]).validate(),
    "users": lambda v: _config(user=v).validate(),
    "names": lambda v: _config(name=v).validate(),
    "env": lambda v: _config(env=[v]).validate(),
    "hostnames": lambda v: _config(hostname=v).validate(),
    "workdirs": lambda v: _config(workdir=v).validate(),
}

NOISE = ["memory noise", "cpus noise", "pids noise", "ports noise", "volumes noise", "users noise",
         "names noise", "env noise", "workdirs noise"]
INVALID_OK = ["ports invalid", "volumes invalid", "memory huge", "volumes over / or /proc"]


@pytest.mark.parametrize("name", NOISE)
def test_fuzz_noise_only_one_line_errors(name):
    _run_class(name, GEN[name], CALL[name.split()[0]], must_fail=False)


@pytest.mark.parametrize("name", INVALID_OK)
def test_fuzz_invalid_refused_in_one_line(name):
    _run_class(name, GEN[name], CALL[name.split()[0]], must_fail=True, n=60)


@pytest.mark.parametrize("name", [
    "users out of range",                              # fixed: userdb.parse_spec, 0..2**32-2
    "users non-ascii digits",                          # fixed: userdb.parse_spec, ASCII only
    "env over the kernel's per-string limit",          # fixed: config.MAX_ARGS_BYTES
    "hostnames invalid",                               # fixed: RFC 1123, 64 bytes
])
def test_fuzz_invalid_known_broken(name):
    _run_class(name, GEN[name], CALL[name.split()[0]], must_fail=True, n=60)


def test_fuzz_image_refs_on_an_empty_store(tmp_path):
    from minicontainer.images.store import ImageStore
    store = ImageStore(tmp_path / "data")
    _run_class("image refs noise", GEN["image refs noise"], store.resolve, must_fail=True)


def test_fuzz_digest_prefixes_without_digits(tmp_path):
    from minicontainer.images.store import ImageStore
    store = ImageStore(tmp_path / "data")
    (tmp_path / "data" / "images").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "images" / ("ab" * 32 + ".json")).write_text("{}")
    _run_class("digest prefixes", lambda r: "sha256:" + r.choice(["", "a", "ab", "abc", ":", " "]),
               store.resolve, must_fail=True, n=30)
