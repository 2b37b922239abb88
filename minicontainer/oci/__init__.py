"""minicontainer's OCI runtime: runc/libcontainer's role, a bundle's config.json in, one container out.

Docker's split (seeds 000, 004: dockerd → containerd → containerd-shim → runC): everything about
images, names, networks and logs lives in the engine above; the runtime only creates, starts,
signals and deletes one container described by an OCI runtime spec bundle. Podman (through conmon)
and containerd (through containerd-shim-runc-v2) call it by its command line, ``minicontainer-oci``,
exactly as they call runc.

    spec.py       config.json → validated records (runc's specconv + the spec's types)
    state.py      --root/ID/state.json and exec.fifo; the status computed from /proc
    cgroup.py     linux.cgroupsPath + linux.resources → a minicontainer.cgroups.Cgroup
    create.py     create: the runtime's side, the one teardown (destroy)
    init.py       the container's side of create and exec (runc init / nsexec)
    mounts.py     mounts, devices, masked paths, pivot_root (libcontainer/rootfs_linux.go)
    lifecycle.py  start, state, kill, delete, pause, resume, ps
    exec.py       exec, and run(): the same exec in-process (the engine's `minicontainer exec`)
    hooks.py      the six kinds of OCI hooks
    _security.py  the one door to minicontainer.security (capabilities, seccomp, …)
    log.py        runc's --log/--log-format lines
    cli.py        minicontainer-oci (argument parsing only)

Nothing is imported here: ``minicontainer-oci state`` should not pay for ``create``'s modules.
"""
