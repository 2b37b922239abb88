"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_conda_and_pip_dependencies_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = set(map(_norm, project["dependencies"]))
    for extra in ("course", "test"):
        pip_deps |= set(map(_norm, project["optional-dependencies"][extra]))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip_section = set(), []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep.get("pip", [])
            continue
        name, spec = _norm(dep)
        if name not in ("python", "pip"):
            conda.add((name, spec))
    # packages conda-forge does not carry may sit in the pip: section
    conda |= {_norm(p) for p in pip_section if not p.startswith("-")}
    assert conda == pip_deps, (f"only in environment.yml: {sorted(conda - pip_deps)}; "
                               f"only in pyproject.toml: {sorted(pip_deps - conda)}")
    assert "-e ." in pip_section, "environment.yml must install the package itself with pip"
    assert env["channels"] == ["conda-forge"]
