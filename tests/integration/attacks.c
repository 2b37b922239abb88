/* The attack suite's probe (issue 16): each named attack makes one system call from inside a
 * container and prints "name RESULT" — OK, or the errno's name (EPERM, EROFS, ...). Built static
 * by tests/integration/test_security_attacks.py and bind-mounted read-only into the container.
 * Every attack is harmless on the host even when it succeeds: files are opened for writing but
 * never written, modules and handles are garbage or the container's own, mounts are on scratch
 * directories of the container's own root and are undone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int host_pid;

static int rc(long r) { return r < 0 ? errno : 0; }

static int open_w(const char *path) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);   /* opened for writing, never written */
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                    const char *data) {
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, data) < 0) return errno;
    umount2(dst, MNT_DETACH);
    return 0;
}

static int node(const char *path, mode_t kind, int ma, int mi) {
    unlink(path);
    if (mknod(path, kind | 0600, makedev(ma, mi)) < 0) return errno;
    unlink(path);
    return 0;
}

static int node_open(const char *path, int ma, int mi) {
    /* the node made where allowed, then opened for reading only: the device cgroup's answer
     * (in /dev: the container's /tmp is nodev, where any node's open is EACCES) */
    unlink(path);
    if (mknod(path, S_IFCHR | 0600, makedev(ma, mi)) < 0) return errno;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    unlink(path);
    return e;
}

static int shocker(void) {
    /* open_by_handle_at, CVE-2014-3519 "Shocker": a handle of the container's own /dev */
    struct { struct file_handle fh; unsigned char buf[128]; } h;
    int mnt;
    h.fh.handle_bytes = 128;
    /* /dev: a tmpfs, which has file handles (the overlay root has none without nfs_export) */
    if (name_to_handle_at(AT_FDCWD, "/dev", &h.fh, &mnt, 0) < 0) return errno;
    int root = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = open_by_handle_at(root, &h.fh, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    close(root);
    return e;
}

static int perf(void) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.exclude_kernel = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int bpf_map(void) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int in_child(int flags) {
    /* unshare in a child, so the probe itself stays where it is */
    pid_t p = fork();
    if (p == 0) _exit(unshare(flags) < 0 ? errno : 0);
    int st;
    waitpid(p, &st, 0);
    return WEXITSTATUS(st);
}

static int symlink_target(void) {
    /* a mount whose target is a symlink to /proc/sys: the kernel follows it */
    mkdir("/tmp/atk", 0755);
    unlink("/tmp/atk/lnk");
    symlink("/proc/sys", "/tmp/atk/lnk");
    int e = mount("none", "/tmp/atk/lnk", "tmpfs", 0, "size=1k") < 0 ? errno : 0;
    if (!e) umount2("/tmp/atk/lnk", MNT_DETACH);
    unlink("/tmp/atk/lnk");
    return e;
}

static int attack(const char *n) {
    if (!strcmp(n, "mount_tmpfs")) return do_mount("none", "/tmp/m1", "tmpfs", 0, "size=1k");
    if (!strcmp(n, "mount_proc")) return do_mount("proc", "/tmp/m2", "proc", 0, NULL);
    if (!strcmp(n, "mount_sysfs")) return do_mount("sysfs", "/tmp/m3", "sysfs", 0, NULL);
    if (!strcmp(n, "mount_cgroup_v1")) return do_mount("none", "/tmp/m4", "cgroup", 0, "pids");
    if (!strcmp(n, "mount_cgroup2")) return do_mount("none", "/tmp/m5", "cgroup2", 0, NULL);
    if (!strcmp(n, "mount_bind_host_dev")) return do_mount("/dev", "/tmp/m6", NULL, MS_BIND, NULL);
    if (!strcmp(n, "mount_symlink_target")) return symlink_target();
    if (!strcmp(n, "unmask_timer_list")) return rc(umount2("/proc/timer_list", MNT_DETACH));
    if (!strcmp(n, "remount_proc_sys_rw"))
        return rc(mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
    if (!strcmp(n, "remount_sys_rw")) return rc(mount(NULL, "/sys", NULL, MS_REMOUNT, NULL));
    if (!strcmp(n, "open_core_pattern_w")) return open_w("/proc/sys/kernel/core_pattern");
    if (!strcmp(n, "open_sysrq_trigger_w")) return open_w("/proc/sysrq-trigger");
    if (!strcmp(n, "open_sys_w")) return open_w("/sys/kernel/profiling");
    if (!strcmp(n, "mknod_kmsg_read")) return node_open("/dev/mc-kmsg", 1, 11);
    if (!strcmp(n, "mknod_mem")) return node("/dev/mc-mem", S_IFCHR, 1, 1);
    if (!strcmp(n, "mknod_disk")) return node("/dev/mc-sda", S_IFBLK, 8, 0);
    if (!strcmp(n, "mknod_null_ok")) return node_open("/dev/mc-null", 1, 3);
    if (!strcmp(n, "shocker")) return shocker();
    if (!strcmp(n, "ptrace_host")) return rc(ptrace(PTRACE_ATTACH, host_pid, 0, 0));
    if (!strcmp(n, "kill_host")) return rc(kill(host_pid, 0));
    if (!strcmp(n, "add_key"))
        return rc(syscall(SYS_add_key, "user", "mc-attack", "x", 1, -2 /* session keyring */));
    if (!strcmp(n, "keyctl")) return rc(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0));
    if (!strcmp(n, "request_key")) return rc(syscall(SYS_request_key, "user", "mc-none", NULL, 0));
    if (!strcmp(n, "bpf")) return bpf_map();
    if (!strcmp(n, "init_module")) return rc(syscall(SYS_init_module, NULL, 0, ""));
    if (!strcmp(n, "finit_module")) return rc(syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(n, "delete_module")) return rc(syscall(SYS_delete_module, "mc_no_such_module", O_NONBLOCK));
    if (!strcmp(n, "kexec_load")) return rc(syscall(SYS_kexec_load, 0, 0, NULL, 0));
    if (!strcmp(n, "perf_event_open")) return perf();
    if (!strcmp(n, "userfaultfd")) return rc(syscall(SYS_userfaultfd, O_CLOEXEC));
    if (!strcmp(n, "unshare_user")) return in_child(CLONE_NEWUSER);
    if (!strcmp(n, "unshare_mnt")) return in_child(CLONE_NEWNS);
    if (!strcmp(n, "unshare_cgroup")) return in_child(CLONE_NEWCGROUP);
    if (!strcmp(n, "setns_host")) {
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/ns/mnt", host_pid);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? errno : 0;
    }
    if (!strcmp(n, "sethostname")) return rc(sethostname("mc-attack", 9));
    if (!strcmp(n, "setdomainname")) return rc(setdomainname("mc-attack", 9));
    if (!strcmp(n, "settimeofday")) {
        struct timeval tv = { 0, 0 };          /* refused before the value matters */
        return rc(settimeofday(&tv, NULL));
    }
    if (!strcmp(n, "reboot")) return rc(syscall(SYS_reboot, 0, 0, 0 /* bad magic */, NULL));
    if (!strcmp(n, "swapon")) return rc(syscall(SYS_swapon, "/tmp/no-such-swap", 0));
    if (!strcmp(n, "acct")) return rc(syscall(SYS_acct, NULL));
#ifdef SYS_iopl
    if (!strcmp(n, "iopl")) return rc(syscall(SYS_iopl, 0));     /* x86 only */
#endif
    if (!strcmp(n, "pivot_root")) return rc(syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (!strcmp(n, "fsopen")) {
        long fd = syscall(SYS_fsopen, "tmpfs", 0);
        if (fd < 0) return errno;
        close(fd);
        return 0;
    }
    if (!strcmp(n, "open_tree")) {
        long fd = syscall(SYS_open_tree, AT_FDCWD, "/proc", 1 /* OPEN_TREE_CLONE */);
        if (fd < 0) return errno;
        close(fd);
        return 0;
    }
    if (!strcmp(n, "chroot_ok")) return rc(chroot("/"));
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: attacks HOST_PID NAME...\n");
        return 2;
    }
    host_pid = atoi(argv[1]);
    for (int i = 2; i < argc; i++) {
        int e = attack(argv[i]);
        if (e < 0) printf("%s UNKNOWN\n", argv[i]);
        else printf("%s %s\n", argv[i], e ? strerrorname_np(e) : "OK");
        fflush(stdout);
    }
    return 0;
}
