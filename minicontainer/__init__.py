"""minicontainer — a real Linux container runtime, built one kernel feature per notebook.

Notebook 00 maps the course; each later notebook adds one module:

===========================================  =========================================
notebook                                     module
===========================================  =========================================
00_a_container_is_just_a_process             errors, syscalls, host, busybox, course
01_namespaces                                namespaces
02_cgroups                                   cgroups/
03_rootfs                                    rootfs
04_images                                    images
05_network                                   network
06_runtime                                   runtime, cli
07_security                                  security
08_oci_runtime                               oci (minicontainer-oci), runtime.ocispec
09_registry                                  images.registry, pull, push, lab
10_multi_host                                network/ (user-defined and overlay), netlab
===========================================  =========================================

This file imports nothing on purpose: the ``minicontainer`` command imports the package before
anything else (client.py), and every module imported here would cost every command.
"""

__version__ = "0.1.0"


def __getattr__(name):
    """``minicontainer.MiniContainerError``, imported on first use (PEP 562)."""
    if name == "MiniContainerError":
        from .errors import MiniContainerError
        return MiniContainerError
    raise AttributeError(f"module 'minicontainer' has no attribute {name!r}")
