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
===========================================  =========================================

This file stays import-light on purpose: ``minicontainer run`` must start fast, so nothing heavy
(pyroute2, matplotlib) is imported here.
"""

__version__ = "0.1.0"

from .errors import MiniContainerError  # noqa: E402,F401
