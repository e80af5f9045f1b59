/* One writer per directory (see dir_lock.h). */
#include "cli/common/dir_lock.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "io/fileio.h"
#include "io/paths.h"

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

/* The refusal: who holds the lock, as well as the line in DIR/.lock (path) tells. When DIR
 * itself is held (dir_held) and no file there is its holder's lock (none, or one nobody has
 * locked: put there since), the file was removed or replaced behind its holder's back. */
static int held_by(const char *dir, const char *path, int dir_held, nb_error *err)
{
    char line[1024];
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                    (dir_held && flock(fd, LOCK_SH | LOCK_NB) == 0))) {
        close(fd);   /* closing it releases a lock just taken */
        fd = -1;
    }
    ssize_t n = fd >= 0 ? pread(fd, line, sizeof line - 1, 0) : -1;
    if (fd >= 0)
        close(fd);
    line[n > 0 ? n : 0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    printable(line);
    long stale = line[0] ? stale_pid(line) : 0;
    if (fd < 0)
        return nb_fail(err, "%s is in use by another process (its %s/%s was removed or replaced "
                            "while it held it, so who it is cannot be told)",
                       dir, dir, DIR_LOCK_FILE);
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

/* What is wrong with a lock file of this kind and link count, or NULL when nothing is. */
static const char *lock_file_fault(const struct stat *st, char *buf, size_t size)
{
    if (!S_ISREG(st->st_mode)) {
        snprintf(buf, size, "is %s", nb_file_kind(st->st_mode));
        return buf;
    }
    if (st->st_nlink != 1) {
        /* Another name for the same file: whatever it holds would be truncated and written. */
        snprintf(buf, size, "is a regular file with %ju names (a hard link: another name for "
                            "it is elsewhere)", (uintmax_t)st->st_nlink);
        return buf;
    }
    return NULL;
}

/* Opens DIR/.lock (path), creating it; it must be a regular file of one link. What is there is
 * looked at before it is opened (a device must not even be opened, a FIFO must not block, a
 * symbolic link is not followed) and again once it is open. */
static int open_lock_file(const char *path, const char *shown, nb_error *err)
{
    struct stat st;
    char why[128];
    if (lstat(path, &st) == 0 && lock_file_fault(&st, why, sizeof why))
        return nb_fail(err, "%s: %s; the lock must be a regular file of its own: move it away",
                       shown, why);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP)
        return nb_fail(err, "%s: is a symbolic link; the lock must be a regular file of its "
                            "own: move it away", shown);
    if (fd < 0)
        return nb_fail(err, "%s: cannot create the lock: %s", shown, strerror(errno));
    const char *fault =
        fstat(fd, &st) != 0 ? strerror(errno) : lock_file_fault(&st, why, sizeof why);
    if (fault) {
        nb_fail(err, "%s: %s; the lock must be a regular file of its own: move it away", shown,
                fault);
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether fd is the file at path now (not removed or replaced since it was opened). */
static int still_there(int fd, const char *path, int *removed)
{
    struct stat at, held;
    *removed = lstat(path, &at) != 0;
    return !*removed && fstat(fd, &held) == 0 && at.st_dev == held.st_dev &&
           at.st_ino == held.st_ino;
}

/* Waits for the lock on fd (DIR itself when dir_level, else DIR/.lock; what names it in a
 * message) as dir_lock_take says; path is DIR/.lock, whose line says who holds it. */
static int wait_for_lock(int fd, int dir_level, const char *what, const char *dir,
                         const char *path, double wait_seconds, int *said, nb_error *err)
{
    double give_up = nb_monotonic_seconds() + wait_seconds;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            nb_fail(err, "%s: cannot lock it: %s", what, strerror(errno));
            return DIR_LOCK_FAILED;
        }
        held_by(dir, path, dir_level, err);
        if (nb_monotonic_seconds() >= give_up) {
            char who[sizeof err->msg];
            snprintf(who, sizeof who, "%s", err->msg);
            nb_fail(err, "%s; wait for it to end, or stop it", who);
            return DIR_LOCK_HELD;
        }
        if (!*said) {
            fprintf(stderr, "nabla: %s; waiting up to %.0f s for it to end\n", err->msg,
                    wait_seconds);
            *said = 1;
        }
        const struct timespec tick = {0, 100 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    return DIR_LOCK_TAKEN;
}

/* How many times a lock whose file was replaced while it was being taken is taken again. */
#define LOCK_ATTEMPTS 20

int dir_lock_take(dir_lock *l, const char *dir, double wait_seconds, nb_error *err)
{
    l->fd = l->dir_fd = -1;
    l->path = l->dir = NULL;
    char *absolute = realpath(dir, NULL);
    if (!absolute) {
        nb_fail(err, "%s: %s", dir, strerror(errno));
        return DIR_LOCK_FAILED;
    }
    char *path = path_join(absolute, DIR_LOCK_FILE);
    char *name = strdup(dir);
    char *shown = path_join(dir, DIR_LOCK_FILE);
    /* The directory itself first: no file in it can be removed to free it. Nothing is
     * created in DIR while another process holds it. */
    int dir_fd = open(absolute, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(absolute);
    if (!path || !name || !shown) {
        free(path);
        free(name);
        free(shown);
        if (dir_fd >= 0)
            close(dir_fd);
        nb_fail(err, "out of memory");
        return DIR_LOCK_FAILED;
    }
    int said = 0, got = DIR_LOCK_FAILED, fd = -1;
    if (dir_fd < 0)
        nb_fail(err, "%s: cannot open the directory to lock it: %s", dir, strerror(errno));
    else
        got = wait_for_lock(dir_fd, 1, dir, dir, path, wait_seconds, &said, err);
    for (int attempt = 0; got == DIR_LOCK_TAKEN && attempt <= LOCK_ATTEMPTS; attempt++) {
        if (attempt == LOCK_ATTEMPTS) {
            got = nb_fail(err, "%s: was replaced or removed each time it was locked (%d times); "
                               "something else is changing it", shown, LOCK_ATTEMPTS);
            break;
        }
        fd = open_lock_file(path, shown, err);
        if (fd < 0) {
            got = DIR_LOCK_FAILED;
            break;
        }
        got = wait_for_lock(fd, 0, shown, dir, path, wait_seconds, &said, err);
        int removed;
        if (got != DIR_LOCK_TAKEN || still_there(fd, path, &removed))
            break;
        /* Locked, but no longer DIR/.lock: the next process would lock the file there now.
         * Taken again, on the file that is there. */
        close(fd);
        fd = -1;
    }
    free(shown);
    if (got != DIR_LOCK_TAKEN) {
        if (fd >= 0)
            close(fd);
        if (dir_fd >= 0)
            close(dir_fd);
        free(path);
        free(name);
        return got;
    }
    /* Who holds it, for the next one. A line that cannot be written (a full disk) only makes
     * that message vaguer: the lock is held all the same. */
    char line[1024];
    int n = holder_line(line, sizeof line);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n) {
        /* as said: not an error */
    }
    l->fd = fd;
    l->dir_fd = dir_fd;
    l->path = path;
    l->dir = name;
    return DIR_LOCK_TAKEN;
}

int dir_lock_check(const dir_lock *l, nb_error *err)
{
    int removed;
    if (l->fd < 0 || still_there(l->fd, l->path, &removed))
        return 0;
    return nb_fail(err, "%s/%s, this process's lock on %s, was removed or replaced while it "
                        "held it: another process may be writing in %s now; stopping without "
                        "writing more there",
                   l->dir, DIR_LOCK_FILE, l->dir, l->dir);
}

void dir_lock_release(dir_lock *l)
{
    /* Emptied only while it is still the lock: a file put in its place is not ours. */
    int removed;
    if (l->fd >= 0 && still_there(l->fd, l->path, &removed) && ftruncate(l->fd, 0) != 0) {
        /* the next holder overwrites the line anyway */
    }
    if (l->fd >= 0) {
        close(l->fd);
        close(l->dir_fd);
    }
    free(l->path);
    free(l->dir);
    l->fd = l->dir_fd = -1;
    l->path = l->dir = NULL;
}
