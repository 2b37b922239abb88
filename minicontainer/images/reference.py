"""Image references with Docker's rules: ``[DOMAIN/]PATH[:TAG][@DIGEST]``. Notebook 09.

The grammar is distribution's ``reference`` package (``reference/regexp.go``, ``normalize.go``):

* ``PATH`` is ``/``-separated components of lower-case letters and digits joined by ``.``, ``_``,
  ``__`` or runs of ``-``; the whole name (domain included) is at most 255 characters;
* the first component is a *domain* only if it contains ``.`` or ``:`` or is ``localhost`` (so
  ``library/busybox`` is a path, ``127.0.0.1:5000/busybox`` and ``ghcr.io/x/y`` are not);
* no domain → ``docker.io``; a one-component path on docker.io → ``library/NAME``;
* ``TAG`` is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; no tag and no digest → ``latest``;
* ``DIGEST`` is ``ALGO:HEX`` (sha256: 64 hex digits).

What Docker refuses we refuse too, e.g. ``Busybox`` (upper case), ``a//b``, ``-x``, and a bare
``sha256:…`` (that is an image id, not a name: ``rmi`` takes it, ``pull`` does not). Rejected: a
laxer split on the last ``:`` (``127.0.0.1:5000/x`` would have tag ``5000/x``).
"""

from __future__ import annotations

import re

from .._record import record  # not dataclasses: every `run` parses a reference, and dataclasses imports inspect (bench/README.md)
from ..errors import ConfigError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"   # what old configs and docker login store for Docker Hub
OFFICIAL_PREFIX = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_HINT = "use NAME[:TAG] or NAME@sha256:DIGEST, e.g. busybox:1.36 or 127.0.0.1:5000/team/app:v1"


@record(frozen=True)
class Reference:
    """A parsed reference. ``str()`` gives the full form (``docker.io/library/busybox:latest``)."""
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short form ``docker images`` shows: ``busybox``, ``me/app``, ``127.0.0.1:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix(OFFICIAL_PREFIX) if self.path.count("/") == 1 else self.path

    @property
    def familiar(self) -> str:
        """``busybox:latest``; ``name@sha256:…`` for a digest-only reference."""
        if self.tag:
            return f"{self.familiar_name}:{self.tag}"
        return f"{self.familiar_name}@{self.digest}"

    @property
    def selector(self) -> str:
        """What goes in ``/v2/<path>/manifests/<selector>``: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def registry_host(self) -> str:
        """Where to connect: Docker Hub's API lives at registry-1.docker.io."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(ref: str) -> Reference:
    """Parse ``ref`` with Docker's rules (see the module docstring); ConfigError if it is not one."""
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise ConfigError(f"invalid reference format: {ref!r}", hint=_HINT)
    rest, digest = ref, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise ConfigError(f"invalid reference format: {ref!r}: bad digest {digest!r}", hint=_HINT)
        algo, _, hexd = digest.partition(":")
        if algo == "sha256" and not _HEX64.fullmatch(hexd):
            raise ConfigError(f"invalid reference format: {ref!r}: a sha256 digest has 64 hex digits",
                              hint=_HINT)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise ConfigError(f"invalid reference format: {ref!r}: bad tag {tag!r}", hint=_HINT)
    domain, path = split_domain(rest, ref)
    if len(rest) > 255:
        raise ConfigError(f"invalid reference format: {ref[:40]}…: the name is over 255 characters")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        if tag and path == "sha256" and re.fullmatch(r"[a-f0-9]+", tag):
            raise ConfigError(f"invalid reference format: {ref!r} is an image id, not a name", hint=_HINT)
        path = OFFICIAL_PREFIX + path
    if _HEX64.fullmatch(path.removeprefix(OFFICIAL_PREFIX)):
        raise ConfigError(f"invalid repository name {ref!r}: cannot be 64 hex digits (that is an id)",
                          hint=_HINT)
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def split_domain(name: str, ref: str | None = None) -> tuple[str, str]:
    """``127.0.0.1:5000/a/b`` → (``127.0.0.1:5000``, ``a/b``); ``a/b`` → (``docker.io``, ``a/b``)."""
    ref = name if ref is None else ref
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, remainder
        if not _DOMAIN.fullmatch(domain):
            raise ConfigError(f"invalid reference format: {ref!r}: bad registry {domain!r}", hint=_HINT)
        if domain == LEGACY_DOMAIN:
            domain = DEFAULT_DOMAIN
    else:
        domain, path = DEFAULT_DOMAIN, name
    if not _PATH.fullmatch(path):
        why = "repository name must be lowercase" if path.lower() != path else "bad repository name"
        raise ConfigError(f"invalid reference format: {ref!r}: {why}", hint=_HINT)
    return domain, path


def is_digest(s: str) -> bool:
    """``sha256:<64 hex>``: an image id or a manifest digest, not a name."""
    algo, _, hexd = s.partition(":")
    return algo == "sha256" and bool(_HEX64.fullmatch(hexd))
