# Solutions for notebook 07. Try the exercises first!

# %% Exercise 07.1
# Exercise 07.1 — drop_sys_admin(): CAP_SYS_ADMIN out of the bounding, permitted and effective sets
import ctypes


def drop_sys_admin() -> None:
    """Drop capability 21 (CAP_SYS_ADMIN) from this process, and only that one."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    if libc.prctl(24, 21, 0, 0, 0) != 0:              # PR_CAPBSET_DROP, CAP_SYS_ADMIN: the ceiling first
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    hdr, data = Header(0x20080522, 0), (Data * 2)()   # _LINUX_CAPABILITY_VERSION_3: two words per set
    if libc.capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~(1 << 21)
    data[0].permitted &= ~(1 << 21)
    if libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

# %% Exercise 07.2
# Exercise 07.2 — block(name, err): a seccomp filter under which one system call fails with err
import errno


def block(name: str, err: int) -> None:
    """Load a filter: the system call `name` fails with errno `err`; everything else is allowed."""
    import pyseccomp
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    f.add_rule(pyseccomp.ERRNO(err), name)
    f.load()

# %% Exercise 07.3
# Exercise 07.3 — confine_devices(cg): only /dev/null and /dev/zero may be opened in this cgroup


def confine_devices(cg) -> None:
    """Allow c 1:3 and c 1:5 (read, write, mknod) in cgroup `cg`; deny every other device."""
    from minicontainer.security import devices
    devices.apply(cg, [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}])
