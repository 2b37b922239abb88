"""Registry credentials, stored like Docker's ``config.json``. Notebook 09.

``{"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}}}`` in ``config.json`` under
``$MINICONTAINER_CONFIG`` (default ``~/.minicontainer``, as Docker's is ``$DOCKER_CONFIG`` or
``~/.docker``). The file is created with mode 0600 (never readable by other users, even for an
instant: ``O_CREAT`` with the mode, then an atomic rename) and its directory 0700. Like Docker
without a credential helper, the password is only base64-encoded: the file's mode is the protection.
Docker Hub's entry is the legacy key ``https://index.docker.io/v1/``, as Docker writes it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from ..errors import ConfigError, from_oserror

HUB_KEY = "https://index.docker.io/v1/"


def config_dir() -> Path:
    return Path(os.environ.get("MINICONTAINER_CONFIG") or Path.home() / ".minicontainer")


def _key(domain: str) -> str:
    return HUB_KEY if domain in ("docker.io", "index.docker.io", "registry-1.docker.io") else domain


def _load(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
        return doc if isinstance(doc, dict) else {}
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigError(f"read credentials {path}: not JSON ({exc})",
                          hint="fix or remove the file, then log in again") from None
    except OSError as exc:
        raise from_oserror(exc, "read credentials", path) from exc


def _save(path: Path, doc: dict) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(doc, f, indent="\t")
        os.replace(tmp, path)
    except OSError as exc:
        raise from_oserror(exc, "write credentials", path) from exc


def lookup(domain: str, directory: Path | None = None) -> tuple[str, str] | None:
    """(user, password) stored for ``domain``, or None (anonymous)."""
    doc = _load((directory or config_dir()) / "config.json")
    entry = (doc.get("auths") or {}).get(_key(domain)) or {}
    if not entry.get("auth"):
        return None
    try:
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"credentials for {domain}: malformed auth entry",
                          hint=f"minicontainer login {domain} again") from None
    return user, password


def store(domain: str, user: str, password: str, directory: Path | None = None) -> Path:
    path = (directory or config_dir()) / "config.json"
    doc = _load(path)
    doc.setdefault("auths", {})[_key(domain)] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _save(path, doc)
    return path


def remove(domain: str, directory: Path | None = None) -> bool:
    path = (directory or config_dir()) / "config.json"
    doc = _load(path)
    if _key(domain) not in (doc.get("auths") or {}):
        return False
    del doc["auths"][_key(domain)]
    _save(path, doc)
    return True
