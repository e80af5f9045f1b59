/* Whole-file I/O: atomic replacement on write, one buffer on read. See fileio.h. */
#include "fileio.h"
#include "memcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Distinguishes temporary names made by threads of one process; O_EXCL settles any race. */
static atomic_uint tmp_counter;

/* Creates "<path>.tmp.<pid>.<n>" exclusively. Same directory as path, so rename() is atomic
 * (it never crosses a file system). Mode 0666 lets the umask decide, as for a plain fopen. */
static int create_temp(const char *path, char **tmp_out, int *fd_out, nb_error *err)
{
    size_t len = strlen(path) + 64;
    char *tmp = malloc(len);
    if (!tmp)
        return nb_fail(err, "%s: out of memory", path);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1u);
        snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), n);
        nb_temp_register(tmp);   /* before it exists: never a file the record misses */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            *fd_out = fd;
            return 0;
        }
        int e = errno;
        nb_temp_forget(tmp);
        if (e != EEXIST) {
            free(tmp);
            return nb_fail(err, "%s: cannot create a temporary file next to it: %s", path,
                           strerror(e));
        }
    }
    free(tmp);
    return nb_fail(err, "%s: cannot create a temporary file next to it: too many exist", path);
}

/* fsync of the directory makes the rename durable. Some file systems refuse fsync on a
 * directory (EINVAL); nothing more can be done there, so that is not an error. */
int nb_sync_parent_dir(const char *path, nb_error *err)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(len + 1);
        if (dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
        }
    }
    if (!dir)
        return nb_fail(err, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0) {
        rc = nb_fail(err, "%s: written, but cannot open its directory to sync it: %s", path,
                     strerror(errno));
    } else {
        if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
            rc = nb_fail(err, "%s: written, but syncing its directory failed: %s", path,
                         strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

int nb_write_file_atomic(const char *path, const void *data, size_t n, nb_error *err)
{
    nb_file_part part = {data, n};
    return nb_write_parts_atomic(path, &part, 1, err);
}

int nb_write_parts_atomic(const char *path, const nb_file_part *parts, int n_parts,
                          nb_error *err)
{
    if (!path || !*path)
        return nb_fail(err, "no file name given");
    for (int i = 0; i < n_parts; i++)
        if (!parts[i].data && parts[i].size > 0)
            return nb_fail(err, "%s: no data to write", path);

    char *tmp = NULL;
    int fd = -1;
    if (create_temp(path, &tmp, &fd, err) != 0)
        return -1;

    const char *failed = NULL;
    int e = 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        e = errno;
        close(fd);
        failed = "cannot open the temporary file";
    } else {
        for (int i = 0; i < n_parts && !failed; i++)
            if (parts[i].size > 0 && fwrite(parts[i].data, 1, parts[i].size, f) != parts[i].size) {
                e = errno;
                failed = "write failed";
            }
        if (failed) {
            /* reported below */
        } else if (fflush(f) != 0) {
            e = errno;
            failed = "write failed";
        } else if (fsync(fileno(f)) != 0) {
            e = errno;
            failed = "fsync failed";
        }
        /* fclose reports errors of buffered writes too; the stream is gone either way. */
        if (fclose(f) != 0 && !failed) {
            e = errno;
            failed = "close failed";
        }
    }
    if (!failed && rename(tmp, path) != 0) {
        e = errno;
        failed = e == EISDIR ? "cannot replace it" : "cannot rename the temporary file to it";
    }
    if (failed)
        unlink(tmp);
    nb_temp_forget(tmp);
    free(tmp);
    if (failed)
        return nb_fail(err, "%s: %s: %s", path, failed, strerror(e));
    return nb_sync_parent_dir(path, err);
}

int nb_open_regular(const char *path, nb_error *err)
{
    if (!path || !*path)
        return nb_fail(err, "no file name given");
    /* O_NONBLOCK makes the open of a FIFO return at once, so that fstat can refuse it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return nb_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nb_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nb_fail(err, "%s: %s", path,
                       S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                           : "not a regular file (a FIFO, device or socket)");
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return nb_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    return fd;
}

int nb_read_file(const char *path, unsigned char **data, size_t *n, nb_error *err)
{
    *data = NULL;
    *n = 0;
    int fd = nb_open_regular(path, err);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nb_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    /* The size from stat is a first guess only: files in /proc report 0 and files can change,
     * so read until end of file and grow as needed. +2: one byte for the terminating zero, one
     * so that the read that sees end of file has room and the buffer need not grow for it. */
    size_t cap = 65536;
    if (st.st_size > 0 && nb_check_memory((uint64_t)st.st_size + 2, path, err) != 0) {
        close(fd);
        return -1;
    }
    if (st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX - 2)
        cap = (size_t)st.st_size + 2;
    unsigned char *buf = malloc(cap);
    size_t len = 0;
    if (!buf) {
        close(fd);
        return nb_fail(err, "%s: out of memory for %zu bytes", path, cap);
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                close(fd);
                return nb_fail(err, "%s: too large to read into memory", path);
            }
            if (nb_check_memory((uint64_t)cap * 2, path, err) != 0) {
                free(buf);
                close(fd);
                return -1;
            }
            unsigned char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                close(fd);
                return nb_fail(err, "%s: out of memory for %zu bytes", path, cap * 2);
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return nb_fail(err, "%s: read failed: %s", path, strerror(e));
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    *data = buf;
    *n = len;
    return 0;
}

/* ---- the temporary files being written, for a signal handler (fileio.h) ----
 * A fixed table, as a handler may neither lock nor allocate: a slot is claimed by moving its
 * state from FREE to FILLING (compare-and-swap, so threads never share one), filled, and made
 * ACTIVE; the handler reads only ACTIVE slots. A name registered while every slot is taken
 * goes unrecorded (more than TEMP_SLOTS files written at once). */
#define TEMP_SLOTS 16
#define TEMP_NAME_MAX 4200
enum { SLOT_FREE, SLOT_FILLING, SLOT_ACTIVE };
static struct {
    atomic_int state;
    char name[TEMP_NAME_MAX];
} temps[TEMP_SLOTS];

void nb_temp_register(const char *tmp)
{
    if (strlen(tmp) >= TEMP_NAME_MAX)
        return;
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (atomic_compare_exchange_strong(&temps[i].state, &expected, SLOT_FILLING)) {
            memcpy(temps[i].name, tmp, strlen(tmp) + 1);
            atomic_store(&temps[i].state, SLOT_ACTIVE);
            return;
        }
    }
}

void nb_temp_forget(const char *tmp)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temps[i].state) == SLOT_ACTIVE && strcmp(temps[i].name, tmp) == 0) {
            atomic_store(&temps[i].state, SLOT_FREE);
            return;
        }
}

void nb_remove_unfinished_files(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temps[i].state) == SLOT_ACTIVE)
            unlink(temps[i].name);
}
