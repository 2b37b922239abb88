"""A seeded sample of tests/unit/test_fuzz_parsers.py's invalid inputs through the real command
(issue 17): each one exit 125, one line on stderr, no traceback, and nothing left behind."""

from __future__ import annotations

import random

import pytest

from tests.integration.hostile_helpers import drop_roots, make_roots, mc, nothing_left, store_contents

# (flags, words the one line must hold); every one is refused before anything exists
INVALID = [
    (["--memory", "lots"], "--memory"), (["--memory", "1.5.5m"], "--memory"), (["--memory", "-1"], "--memory"),
    (["--memory", "1k"], "too small"), (["--cpus", "nan"], "cpus"), (["--cpus", "1e400"], "cpus"),
    (["--cpus", "0x1"], "cpus"), (["--pids-limit", "0"], "pids"), (["--pids-limit", "1.5"], "pids"),
    (["-p", "0:80"], "port"), (["-p", "80:80/sctp"], "sctp"), (["-p", "1.2.3.4.5:80:80"], "port"),
    (["-p", "70000:80"], "70000"), (["-v", "/tmp:relative"], "volume"), (["-v", "/tmp:/"], "volume"),
    (["-v", "/tmp:/x:rx"], "rx"), (["-v", "/nonexistent-mc-fuzz:/x"], "/nonexistent-mc-fuzz"),
    (["-u", "bob"], "user"), (["-u", "1:2:3"], "user"), (["--name", "bad/name"], "name"),
    (["--name", "-lead"], "name"), (["-e", "=x"], "environment"),
    (["-w", "rel/dir"], "working directory"), (["--network", "nosuch"], "network"),
]
IMAGES = [("UPPER", "image"), ("a:b:c", "image"), ("nosuch:1", "not found"), ("sha256:0000", "not found")]


@pytest.fixture(scope="module")
def roots():
    env, base = make_roots()
    mc(env, "run", "--rm", "--network", "none", "busybox", "true", check=0)
    yield env
    drop_roots(env, base)


def _check(roots, flags, image, words) -> str | None:
    net = [] if "-p" in flags else ["--network", "none"]
    p = mc(roots, "run", "--rm", *net, *flags, image, "true")
    lines = p.stderr.strip().splitlines()
    if "Traceback" in p.stderr or p.returncode != 125 or len(lines) != 1 or words not in p.stderr:
        return f"{flags + [image]}: exit {p.returncode}, stderr {p.stderr!r}"
    return None


def test_fuzz_sample_through_the_cli(roots):
    rng = random.Random("issue 17 cli sample")
    cases = rng.sample(INVALID, 14) + [([], *rng.choice(IMAGES[:2])), ([], *rng.choice(IMAGES[2:]))]
    before = store_contents(roots)
    bad = [why for flags, *rest in cases
           if (why := _check(roots, flags, rest[0] if len(rest) == 2 else "busybox", rest[-1]))]
    assert not bad, "\n".join(bad)
    nothing_left(roots)
    assert store_contents(roots) == before


# issue 17 item 11: "²".isdigit() is True but int("²") raises; ids are ASCII digits only (userdb)
@pytest.mark.parametrize("user", ["²", "1:①"])
def test_fuzz_non_ascii_uid_through_the_cli(roots, user):
    why = _check(roots, ["-u", user], "busybox", user.split(":")[-1])   # the line names the bad part
    nothing_left(roots)
    assert why is None, why
