"""Run every benchmark in bench/ in turn (sudo make bench). Each prints its own figures."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run_all.py",) or script.name.startswith("_"):
            continue
        if script.name.startswith("ab_"):
            # an A/B comparison of two checkouts: it needs the two commands (see its docstring)
            print(f"=== {script.name}: skipped (A/B of two checkouts; run it by hand)", flush=True)
            continue
        print(f"=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
        sys.exit(1)
