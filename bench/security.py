"""How much the security defaults cost on the start path (measured, never asserted).

    .venv/bin/python bench/security.py [N] [--no-apply]   # as root for the apply() figures

- prepare() cold: a fresh interpreter, no cache (imports pyseccomp, converts Docker's profile,
  compiles it with libseccomp, writes the cache file);
- prepare() file-cached: a fresh interpreter, the compiled program read from the state root;
- prepare() memory-cached: the same process again (what the server pays per container);
- apply() in a forked child: rlimits, caps, ids, no_new_privs, seccomp load (root only).

The state root is a private temp dir (removed at the end).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20

_ONE = r"""
import sys, time
t0 = time.perf_counter()
from minicontainer.security import ProcessSecurity, prepare, default_capabilities, default_seccomp
t1 = time.perf_counter()
caps = default_capabilities()
p = prepare(ProcessSecurity(capabilities=caps, seccomp=default_seccomp(caps)))
t2 = time.perf_counter()
p = prepare(ProcessSecurity(capabilities=caps, seccomp=default_seccomp(caps)))
t3 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
"""


def _run(env) -> list[float]:
    out = subprocess.run([sys.executable, "-c", _ONE], env=env, capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]


def _apply_ms(n: int) -> list[float]:
    from minicontainer.security import ProcessSecurity, apply, default_capabilities, default_seccomp, prepare
    caps = default_capabilities()
    p = prepare(ProcessSecurity(capabilities=caps, seccomp=default_seccomp(caps), no_new_privileges=True))
    out = []
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            t = time.perf_counter()
            apply(p)
            os.write(w, str((time.perf_counter() - t) * 1e3).encode())
            os._exit(0)
        os.close(w)
        out.append(float(os.read(r, 100)))
        os.close(r)
        os.waitpid(pid, 0)
    return out


def main() -> None:
    root = tempfile.mkdtemp(prefix="mcsec-bench-")
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=root)
    try:
        cold, warm = [], []
        for _ in range(N):
            shutil.rmtree(os.path.join(root, "seccomp"), ignore_errors=True)
            cold.append(_run(env))
            warm.append(_run(env))
        med = lambda xs: statistics.median(xs)   # noqa: E731
        print(f"N={N}, medians in ms")
        print(f"import minicontainer.security:           {med([c[0] for c in cold]):6.2f}")
        print(f"prepare() cold (compile + write cache):  {med([c[1] for c in cold]):6.2f}")
        print(f"prepare() file-cached (new process):     {med([w[1] for w in warm]):6.2f}")
        print(f"prepare() memory-cached (same process):  {med([w[2] for w in warm]):6.2f}")
        if os.geteuid() == 0 and "--no-apply" not in sys.argv:
            os.environ["MINICONTAINER_STATE_ROOT"] = root
            print(f"apply() in a forked child (nnp+seccomp): {med(_apply_ms(N)):6.2f}")
        else:
            print("apply(): needs root")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
