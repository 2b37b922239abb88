/* procwatch: what a process inside a container sees of the processes that appear in its PID namespace
 * (tests/integration/test_init_tini.py). Built static on the host, bind-mounted read-only.
 *
 *   procwatch SECONDS STOPFILE
 *
 * Until STOPFILE exists (or SECONDS pass) it walks /proc as fast as it can and, for every process but
 * itself, reads the link /proc/PID/exe, lists /proc/PID/map_files, and reads the link again —
 * CVE-2019-5736's first step: a host binary reachable there can be opened, and later written. Each
 * new (pid, exe, map_files, exe again) line is printed once, tab-separated: a link's path or the
 * errno's name; the number of map_files entries or the errno's name. Nothing is opened for writing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 20000

static char *seen[MAX_SEEN];
static int nseen;

static const char *err_name(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

static void link_of(const char *path, char *out, size_t size) {
    ssize_t n = readlink(path, out, size - 1);
    if (n < 0)
        snprintf(out, size, "%s", err_name(errno));
    else
        out[n] = 0;
}

static void look(const char *pid) {
    char exe_path[64], mf_path[64], exe[2048], exe2[2048], mf[32], line[4200];
    snprintf(exe_path, sizeof exe_path, "/proc/%s/exe", pid);
    snprintf(mf_path, sizeof mf_path, "/proc/%s/map_files", pid);
    link_of(exe_path, exe, sizeof exe);
    DIR *d = opendir(mf_path);
    if (d == NULL) {
        snprintf(mf, sizeof mf, "%s", err_name(errno));
    } else {
        int count = 0;
        struct dirent *e;
        errno = 0;
        while ((e = readdir(d)) != NULL)
            count += e->d_name[0] != '.';
        if (errno)
            snprintf(mf, sizeof mf, "%s", err_name(errno));
        else
            snprintf(mf, sizeof mf, "%d", count);
        closedir(d);
    }
    link_of(exe_path, exe2, sizeof exe2);
    snprintf(line, sizeof line, "%s\t%s\t%s\t%s", pid, exe, mf, exe2);
    for (int i = 0; i < nseen; i++)
        if (!strcmp(seen[i], line))
            return;
    if (nseen < MAX_SEEN)
        seen[nseen++] = strdup(line);
    printf("%s\n", line);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: procwatch SECONDS STOPFILE\n");
        return 2;
    }
    time_t end = time(NULL) + atoi(argv[1]);
    char self[16];
    snprintf(self, sizeof self, "%d", getpid());
    printf("ready\n");
    fflush(stdout);
    while (time(NULL) < end && access(argv[2], F_OK) != 0) {
        DIR *d = opendir("/proc");
        if (d == NULL)
            return 1;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && strcmp(e->d_name, self))
                look(e->d_name);
        closedir(d);
    }
    return 0;
}
