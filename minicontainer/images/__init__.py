"""Images: overlayfs, a content-addressed layer store, import and build. Introduced in notebook 04.

The runtime (notebook 06) calls :class:`ImageStore` (``ensure_busybox``, ``get``,
``create_container_layer``, ``remove_container_layer``, ``mark_in_use``/``release``) and
:func:`mount_overlay`; the CLI calls the module functions below (``images``, ``import``, ``build``,
``rmi``, ``commit``). Split by role: :mod:`.overlay` (the kernel's union mount), :mod:`.store`
(layers and images on disk), :mod:`.importer` (archives, safe extraction), :mod:`.builder`.
Registries (notebook 09): :mod:`.reference` (names), :mod:`.registry` (the v2 protocol on
http.client), :mod:`.pull`, :mod:`.push`, :mod:`.export` (save), :mod:`.credentials` (login),
:mod:`.progress`, :mod:`.userdb` (``-u NAME``), :mod:`.commands` (the CLI's image verbs),
:mod:`.gunzip` (layers' inflate), :mod:`.lab` (a throwaway registry on 127.0.0.1 for the notebook and tests).
"""

from __future__ import annotations

import os

# The names below come from .overlay and .store on first use (PEP 562): a submodule such as .userdb,
# which minicontainer-oci needs inside a container (HOME from /etc/passwd), then costs its own
# import only, not the store's (pathlib, re) and overlay's (ctypes) — bench/README.md.
_FROM = {"overlay": ("OPAQUE_XATTR", "du", "is_opaque", "is_whiteout", "make_opaque", "make_whiteout",
                     "mount_overlay", "overlay_options"),
         "store": ("ContainerLayer", "Image", "ImageStore", "normalize_ref", "tree_digest")}
_WHERE = {name: mod for mod, names in _FROM.items() for name in names}


def __getattr__(name):
    if name in _WHERE:
        import importlib
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["ImageStore", "Image", "ContainerLayer", "overlay_options", "mount_overlay", "make_whiteout",
           "make_opaque", "is_whiteout", "is_opaque", "du", "normalize_ref", "tree_digest", "OPAQUE_XATTR",
           "list_images", "remove_image", "import_archive", "build", "commit"]


def list_images(store: ImageStore | None = None) -> list[Image]:
    """Named images, for ``minicontainer images`` (``img.names``, ``img.id[:12]``, ``img.size()``)."""
    from .store import ImageStore
    return (store or ImageStore()).images()


def remove_image(ref: str, store: ImageStore | None = None) -> list[str]:
    """``minicontainer rmi REF``: refused (ConflictError) while a container uses it."""
    from .store import ImageStore
    return (store or ImageStore()).remove_image(ref)


def import_archive(path: str | os.PathLike, name: str | None = None,
                   progress: Callable[[str, int, int], None] | None = None,
                   store: ImageStore | None = None) -> Image:
    """``minicontainer import FILE [NAME]``: docker-save or OCI-layout tarball (or directory)."""
    from .importer import import_archive as _imp
    return _imp(path, name, store=store, progress=progress)


def build(context_dir: str | os.PathLike, tag: str | None = None,
          progress: Callable[[str], None] | None = None, store: ImageStore | None = None,
          no_cache: bool = False, limits=None, file: str = "Containerfile", build_args=None):
    """``minicontainer build -t TAG DIR``; returns a BuildResult (``.image``, ``.steps``). ``limits``
    (``cgroups.Limits``): the cgroup limits of each RUN step; ``file`` (``-f``) and ``build_args``
    (``--build-arg``): builder.build's."""
    from .builder import build as _build
    return _build(context_dir, tag, store=store, progress=progress, no_cache=no_cache, limits=limits,
                  file=file, build_args=build_args)


def commit(cid: str, name: str, store: ImageStore | None = None, idmap: dict | None = None) -> Image:
    """``minicontainer commit CID NAME``: the container's upper dir as a new layer (``idmap``: a
    --userns=remap container's maps, its record's)."""
    from .builder import commit as _commit
    return _commit(cid, name, store=store, idmap=idmap)
