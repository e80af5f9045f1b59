/* One writer per directory (see dir_lock.h). */
#include "dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "run_files.h"

/* Characters a terminal shows as they are; anything else in a line read back becomes '?'. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* This process's command line, arguments separated by spaces: /proc/self/cmdline on Linux,
 * else just "nabla". */
static void own_command(char *buf, size_t size)
{
    snprintf(buf, size, "nabla");
    FILE *f = fopen("/proc/self/cmdline", "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    if (n == 0) {
        snprintf(buf, size, "nabla");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    printable(buf);
}

/* "pid 4242 on host h since 2025-06-01 12:00:05 +0200: nabla train ...\n" */
static int holder_line(char *buf, size_t size)
{
    char host[256] = "?", when[64] = "?", command[512];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    printable(host);
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", &tm);
    own_command(command, sizeof command);
    int n = snprintf(buf, size, "pid %ld on host %s since %s: %s\n", (long)getpid(), host, when,
                     command);
    return n < 0 ? 0 : n < (int)size ? n : (int)size - 1;
}

/* The pid a line names if that is a process of this machine that has ended, else 0: then the
 * line was left by an earlier holder (killed before it could empty it), and the present one
 * has not written its own yet. */
static long stale_pid(const char *line)
{
    long pid;
    char host[256], own[256] = "";
    if (sscanf(line, "pid %ld on host %255s ", &pid, host) != 2 || pid <= 0)
        return 0;
    gethostname(own, sizeof own - 1);
    own[sizeof own - 1] = '\0';
    return strcmp(host, own) == 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH ? pid : 0;
}

/* The refusal: who holds the lock, as well as the line in the file tells. */
static int held_by(const char *dir, int fd, nb_error *err)
{
    char line[1024];
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    line[n > 0 ? n : 0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    printable(line);
    long stale = line[0] ? stale_pid(line) : 0;
    if (!line[0])
        return nb_fail(err, "%s is in use by another process, which has not written who it is "
                            "yet (%s/%s is empty)",
                       dir, dir, DIR_LOCK_FILE);
    if (stale)
        return nb_fail(err, "%s is in use by another process, which has not written who it is "
                            "yet (%s/%s still names an earlier holder, pid %ld, which has "
                            "ended)",
                       dir, dir, DIR_LOCK_FILE, stale);
    return nb_fail(err, "%s is in use by another process: %.300s", dir, line);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Opens DIR/.lock, creating it; it must be a regular file (a FIFO or device there must not
 * block or be written, a symbolic link not followed). */
static int open_lock_file(const char *dir, nb_error *err)
{
    char *path = path_join(dir, DIR_LOCK_FILE);
    if (!path)
        return nb_fail(err, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 && errno == ELOOP)
        nb_fail(err, "%s: is a symbolic link; the lock must be a regular file: move it away",
                path);
    else if (fd < 0)
        nb_fail(err, "%s: cannot create the lock: %s", path, strerror(errno));
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        nb_fail(err, "%s: is %s; the lock must be a regular file: move it away", path,
                nb_file_kind(st.st_mode));
        close(fd);
        fd = -1;
    }
    free(path);
    return fd;
}

int dir_lock_take(dir_lock *l, const char *dir, double wait_seconds, nb_error *err)
{
    l->fd = -1;
    int fd = open_lock_file(dir, err);
    if (fd < 0)
        return DIR_LOCK_FAILED;
    double give_up = now_seconds() + wait_seconds;
    int said = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            nb_fail(err, "%s/%s: cannot lock it: %s", dir, DIR_LOCK_FILE, strerror(errno));
            close(fd);
            return DIR_LOCK_FAILED;
        }
        held_by(dir, fd, err);
        if (now_seconds() >= give_up) {
            close(fd);
            char who[sizeof err->msg];
            snprintf(who, sizeof who, "%s", err->msg);
            nb_fail(err, "%s; wait for it to end, or stop it", who);
            return DIR_LOCK_HELD;
        }
        if (!said) {
            fprintf(stderr, "nabla: %s; waiting up to %.0f s for it to end\n", err->msg,
                    wait_seconds);
            said = 1;
        }
        const struct timespec tick = {0, 100 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    /* Who holds it, for the next one. A line that cannot be written (a full disk) only makes
     * that message vaguer: the lock is held all the same. */
    char line[1024];
    int n = holder_line(line, sizeof line);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n) {
        /* as said: not an error */
    }
    l->fd = fd;
    return DIR_LOCK_TAKEN;
}

void dir_lock_release(dir_lock *l)
{
    if (l->fd < 0)
        return;
    if (ftruncate(l->fd, 0) != 0) {
        /* the next holder overwrites the line anyway */
    }
    close(l->fd);
    l->fd = -1;
}
