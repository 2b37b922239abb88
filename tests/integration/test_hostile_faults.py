"""SIGKILL `run` at random moments (issue 17), direct and through `minicontainer serve`, then `gc`:
nothing may be left — no mount, cgroup, link, rule (the autouse leak check, and explicit snapshots
here), no record, lease, writable layer, and no change to the image store.

Bounded: a fixed number of seeded iterations, each killed within 0.45 s; every wait has a timeout.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from minicontainer import private
from tests import leakcheck
from tests.integration.hostile_helpers import MC, ROOT, drop_roots, make_roots, mc, store_contents

DIRECT, SERVED = 12, 8


@pytest.fixture
def roots():
    env, base = make_roots()
    mc(env, "run", "--rm", "--network", "none", "busybox", "true", check=0)
    yield env
    drop_roots(env, base)


def _port(rng) -> int:
    return rng.randint(20000, 29999)


def _kill_runs(env, rng, n) -> list[str]:
    """n runs, each SIGKILLed after a random delay; the argv of each, for a failure message."""
    done = []
    for _ in range(n):
        net = rng.choice([["--network", "none"]] * 2 + [["--network", "bridge"],
                                                         ["-p", f"127.0.0.1:{_port(rng)}:80"]])
        argv = [*MC, "run", "--rm", *net, "busybox", "sleep", "0.6"]
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        delay = rng.uniform(0, 0.45)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        done.append(f"{' '.join(net)} killed after {delay:.2f}s")
    return done


def _left(env) -> list[str]:
    """Files under the private state root (records, leases; not locks, not a server's socket) and
    writable layers under the data root."""
    out = []
    state = Path(env["MINICONTAINER_STATE_ROOT"])
    for dirpath, _, files in os.walk(state):
        # seccomp/<key>.bpf: the compiled-profile cache (security/seccomp.py), one file per profile
        # for every container, not a container's state — kept like the image store's layers
        cache = os.path.basename(dirpath) == "seccomp"
        # apparmor/minicontainer-default: the profile as loaded into the kernel, once per boot for every
        # container (security/apparmor.py; only where the kernel has AppArmor: the VMs)
        profile = os.path.basename(dirpath) == "apparmor"
        # .private: the root's mark that old entries were closed (private.tighten_root), the root's own
        out += [os.path.join(dirpath, f) for f in files
                if not f.endswith(".lock") and not (cache and f.endswith(".bpf"))
                and not (profile and f == "minicontainer-default")
                and not (dirpath == str(state) and f == private.MARK)]
    layers = Path(env["MINICONTAINER_DATA_ROOT"], "containers")
    if layers.is_dir():
        out += [str(p) for p in layers.iterdir()]
    return out


def _host() -> dict:
    s = leakcheck.snapshot()
    return {k: s[k] for k in ("mounts", "cgroups", "links", "netns", "firewall")}


def test_sigkill_run_direct_and_served_then_gc_leaves_nothing(roots):
    rng = random.Random(17)
    host, store = _host(), store_contents(roots)
    history = _kill_runs(roots, rng, DIRECT)

    served = dict(roots)
    served.pop("MINICONTAINER_NO_SERVER", None)
    assert "listening on" in mc(served, "serve", "-d", check=0).stdout
    try:
        history += ["served: " + h for h in _kill_runs(served, rng, SERVED)]
    finally:
        mc(served, "serve", "--stop", timeout=60)

    time.sleep(2.2)           # the orphans died (pdeathsig); orphan cgroups are older than gc's 2 s
    gc = mc(roots, "gc", timeout=60)
    assert gc.returncode == 0 and "Traceback" not in gc.stderr, gc
    left = leakcheck.leaks(host, _host()) + _left(roots)
    assert not left, "after " + "; ".join(history) + "\nleft:\n  " + "\n  ".join(left)
    assert store_contents(roots) == store
    assert mc(roots, "gc", check=0).stdout.strip() == "nothing to remove"
