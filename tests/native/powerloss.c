/* LD_PRELOAD shim simulating a power loss for files under $POWERLOSS_DIR.
 *
 * The real writes go to the real files (the process sees a normal file system), but only what a
 * process made durable survives: on every fsync/fdatasync of such a file its current content is
 * copied to "<file>.durable". After killing the process, the test replaces every file by its
 * ".durable" copy (and deletes files that were never synced): what the OS page cache held but no
 * fsync flushed is gone, as after a power cut.  Build: cc -shared -fPIC -o powerloss.so powerloss.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void snapshot(int fd) {
    const char *dir = getenv("POWERLOSS_DIR");
    char link[64], path[PATH_MAX], tmp[PATH_MAX + 16], dst[PATH_MAX + 16], buf[65536];
    if (dir == NULL) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if (strncmp(path, dir, strlen(dir)) != 0) return;
    snprintf(tmp, sizeof tmp, "%s.durable.tmp", path);
    snprintf(dst, sizeof dst, "%s.durable", path);
    int in = open(path, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in >= 0 && out >= 0) {
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0) {
            if (write(out, buf, (size_t)r) != r) break;
        }
        rename(tmp, dst); /* atomic: a kill mid-copy leaves the previous durable copy */
    }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
}

int fsync(int fd) {
    static int (*real)(int) = NULL;
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    snapshot(fd);
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int) = NULL;
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    snapshot(fd);
    return real(fd);
}
