"""The embedded ``busybox`` image: a root filesystem built offline from the host's static busybox.

Introduced in notebook 00; notebook 03 chroots and pivots into it, notebook 04 stores it as the
first image of the layer store.

Why not download an image? The course must work with no network, and a static busybox is one file
that is every tool a small container needs (``sh``, ``ls``, ``ps``, ``httpd``, …): we copy it into
``bin/`` and create one symlink per applet, plus the few files and directories every Linux root
filesystem has (the list in the seeds: /dev, /proc, /sys, /bin, /etc, /lib, /usr, /tmp).

It must be *static*: a dynamically linked busybox would need the host's libc inside the root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import ImageError

#: Where Debian's and Ubuntu's ``busybox-static`` package installs it, then PATH.
CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
INSTALL_HINT = "install Debian's/Ubuntu's package `busybox-static` (apt-get install busybox-static)"

DIRS = ("bin", "dev", "etc", "home", "lib", "proc", "root", "sys", "tmp", "usr/bin", "usr/sbin",
        "var/log", "var/www", "run")

FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hostname": "busybox\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/resolv.conf": "",
    "etc/os-release": 'NAME="minicontainer busybox"\nID=busybox\n',
    "var/www/index.html": "<h1>hello from a minicontainer</h1>\n",
}


def find_busybox() -> Path:
    """Return the host's static busybox, or raise :class:`ImageError` naming the package."""
    # PATH only when the usual places have none: shutil.which walks PATH (~0.4 ms of every start)
    for cand in (*CANDIDATES, None):
        cand = cand or shutil.which("busybox")
        if cand and Path(cand).is_file():
            p = Path(cand)
            if not is_static(p):
                continue
            return p
    raise ImageError("no static busybox found on this host (looked in /bin, /usr/bin and PATH)",
                     hint=INSTALL_HINT)


def is_static(path: Path) -> bool:
    """True if the ELF file has no PT_INTERP program header (i.e. needs no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:   # 64-bit ELF only; enough for our hosts
            return False
        order = "little" if head[5] == 1 else "big"
        phoff = int.from_bytes(head[32:40], order)
        phentsize = int.from_bytes(head[54:56], order)
        phnum = int.from_bytes(head[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if int.from_bytes(table[i * phentsize:i * phentsize + 4], order) == 3:   # PT_INTERP
            return False
    return True


def applets(busybox: Path) -> list[str]:
    """The applets this busybox build provides, as paths (``bin/sh``, ``usr/sbin/httpd``, …)."""
    import subprocess
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def digest(busybox: Path | None = None, cache: Path | None = None) -> str:
    """sha256 of the busybox binary: the image's identity (a new busybox is a new image).

    With ``cache`` (a small file), the hash is recomputed only when the binary's device, inode, size
    or mtime changed: hashing 2 MB on every ``minicontainer run`` cost ~4 ms of its start.
    """
    busybox = busybox or find_busybox()
    st = os.stat(busybox)
    key = f"{busybox}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    if cache is not None:
        try:
            cached_key, cached = cache.read_text().split()
            if cached_key == key:
                return cached
        except (OSError, ValueError):
            pass
    import hashlib
    h = hashlib.sha256()
    with open(busybox, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if cache is not None:
        from . import private
        try:
            private.write(cache, f"{key} {h.hexdigest()}\n")
        except OSError:
            pass
    return h.hexdigest()


def build_rootfs(dest: str | os.PathLike, busybox: Path | None = None) -> Path:
    """Build the busybox root filesystem in ``dest`` (which must not exist or be empty).

    Built in a temporary sibling directory and renamed into place, so that a crash never leaves a
    half-built root that looks complete.
    """
    busybox = busybox or find_busybox()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ImageError(f"build busybox rootfs in {dest}: directory is not empty",
                         hint="remove it or choose another directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix=".busybox-", dir=dest.parent))
    try:
        for d in DIRS:
            (tmp / d).mkdir(parents=True, exist_ok=True)
        os.chmod(tmp / "tmp", 0o1777)
        os.chmod(tmp / "root", 0o700)
        shutil.copy2(busybox, tmp / "bin/busybox")
        for applet in applets(busybox):
            link = tmp / applet
            if applet == "bin/busybox" or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            # relative link, so it resolves the same on the host and inside the container
            link.symlink_to(os.path.relpath(tmp / "bin/busybox", link.parent))
        for rel, text in FILES.items():
            (tmp / rel).write_text(text)
        os.chmod(tmp, 0o755)
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
