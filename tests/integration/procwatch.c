/* procwatch: what a process inside a container sees of the processes that appear in its PID namespace
 * (tests/integration/test_init_tini.py). Built static on the host, bind-mounted read-only.
 *
 *   procwatch SECONDS STOPFILE
 *
 * Until STOPFILE exists (or SECONDS pass) it walks /proc as fast as it can and, for every process but
 * itself, reads the link /proc/PID/exe and lists /proc/PID/map_files — CVE-2019-5736's first step: a
 * host binary reachable there can be opened, and later written. Each new (pid, exe, map_files)
 * triple is printed once, tab-separated: the exe's path or the errno's name; "listed" or the errno's
 * name. Nothing is opened for writing.
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

static void look(const char *pid) {
    char path[64], exe[4096], mf[32], line[4300];
    snprintf(path, sizeof path, "/proc/%s/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n < 0)
        snprintf(exe, sizeof exe, "%s", err_name(errno));
    else
        exe[n] = 0;
    snprintf(path, sizeof path, "/proc/%s/map_files", pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        snprintf(mf, sizeof mf, "%s", err_name(errno));
    } else {
        errno = 0;
        while (readdir(d) != NULL)
            ;
        snprintf(mf, sizeof mf, "%s", errno ? err_name(errno) : "listed");
        closedir(d);
    }
    snprintf(line, sizeof line, "%s\t%s\t%s", pid, exe, mf);
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
