/* File I/O: every write by one rule (see fileio.h), whole files read into one buffer. */
#include "io/fileio.h"
#include "core/memcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- where a path leads ---- */

/* The directory part of path ("." for a bare name), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* The final name a dangling chain of symbolic links leads to (it does not exist; writing
 * creates it). A relative link is relative to the directory that holds it. */
static char *dangling_target(const char *path, nb_error *err)
{
    char *at = strdup(path);
    char link[PATH_MAX];
    for (int hops = 0; at && hops < 40; hops++) {
        ssize_t n = readlink(at, link, sizeof link - 1);
        if (n < 0) {
            nb_fail(err, "%s: cannot follow its symbolic link %s: %s", path, at, strerror(errno));
            free(at);
            return NULL;
        }
        link[n] = '\0';
        char *next;
        if (link[0] == '/') {
            next = strdup(link);
        } else {
            char *dir = dir_of(at);
            next = dir ? malloc(strlen(dir) + strlen(link) + 2) : NULL;
            if (next)
                sprintf(next, "%s/%s", dir, link);
            free(dir);
        }
        free(at);
        at = next;
        struct stat st;
        if (!at)
            break;
        if (lstat(at, &st) != 0) {
            if (errno == ENOENT)
                return at;
            nb_fail(err, "%s: its symbolic link leads to %s: %s", path, at, strerror(errno));
            free(at);
            return NULL;
        }
        if (!S_ISLNK(st.st_mode)) {
            /* stat() said the chain leads nowhere, yet this exists: a directory on the way
             * is missing or the chain changed meanwhile. */
            nb_fail(err, "%s: its symbolic link leads to %s, which cannot be written", path, at);
            free(at);
            return NULL;
        }
    }
    if (at) {
        nb_fail(err, "%s: %s", path, strerror(ELOOP));
        free(at);
    } else {
        nb_fail(err, "%s: out of memory", path);
    }
    return NULL;
}

/* How a file is written, by what its path leads to. */
typedef enum write_way { WRITE_REPLACE, WRITE_THROUGH } write_way;

typedef struct destination {
    char *target;    /* path with its links followed (malloc'd) */
    int exists;      /* something is at target */
    mode_t mode;     /* its type and permission bits */
    int via_link;    /* path is a symbolic link */
} destination;

static nb_link_guard link_guard;

void nb_set_link_guard(nb_link_guard guard) { link_guard = guard; }

/* What path leads to. Returns 0, or -1 with a message naming path. */
static int find_destination(const char *path, destination *d, nb_error *err)
{
    memset(d, 0, sizeof *d);
    if (!path || !*path)
        return nb_fail(err, "no file name given");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return nb_fail(err, "%s: %s", path, strerror(errno));
        d->target = strdup(path);
    } else if (!S_ISLNK(st.st_mode)) {
        d->exists = 1;
        d->mode = st.st_mode;
        d->target = strdup(path);
    } else {
        d->via_link = 1;
        if (stat(path, &st) == 0) {
            d->exists = 1;
            d->mode = st.st_mode;
            /* A regular file is replaced in its own directory, so the rename stays within one
             * file system and the link stays a link. A device or FIFO is opened through the
             * link, which also works for the kernel's own links (/dev/stdout). */
            d->target = S_ISREG(st.st_mode) ? realpath(path, NULL) : strdup(path);
            if (!d->target && S_ISREG(st.st_mode))
                return nb_fail(err, "%s: cannot follow its symbolic link: %s", path,
                               strerror(errno));
        } else if (errno == ENOENT) {
            d->target = dangling_target(path, err);
            if (!d->target)
                return -1;
        } else {
            return nb_fail(err, "%s: %s", path, strerror(errno));
        }
    }
    if (!d->target)
        return nb_fail(err, "%s: out of memory", path);
    if (d->via_link && link_guard && link_guard(path, err) != 0) {
        free(d->target);
        d->target = NULL;
        return -1;
    }
    return 0;
}

const char *nb_file_kind(mode_t mode)
{
    return S_ISREG(mode)    ? "a regular file"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISLNK(mode)  ? "a symbolic link"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "of an unknown kind";
}

/* The rule: replace what is missing or a regular file, write through to a character device or
 * a FIFO, refuse the rest. */
static int way_of(const char *path, const destination *d, write_way *way, nb_error *err)
{
    if (!d->exists || S_ISREG(d->mode)) {
        *way = WRITE_REPLACE;
        return 0;
    }
    if (S_ISCHR(d->mode) || S_ISFIFO(d->mode)) {
        *way = WRITE_THROUGH;
        return 0;
    }
    return nb_fail(err, "%s: is %s%s, not a file to write (nabla writes regular files, "
                        "character devices and FIFOs)",
                   path, d->via_link ? "a symbolic link to " : "", nb_file_kind(d->mode));
}

/* Opens path to write into it as it is: never O_TRUNC (flags may add O_CREAT and O_APPEND),
 * and O_NONBLOCK so that a FIFO without a reader fails at once (ENXIO) instead of waiting for
 * one; writes then block as usual. What was opened must be something the rule writes into (the
 * path may have changed since it was looked at). */
static int open_as_is(const char *path, int flags, nb_error *err)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags, 0666);
    if (fd < 0) {
        if (errno == ENXIO)
            return nb_fail(err, "%s: a FIFO with no reader (nabla writes into a FIFO only while "
                                "something reads it)", path);
        return nb_fail(err, "%s: %s%s", path, flags & O_APPEND ? "cannot append: " : "",
                       strerror(errno));
    }
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fstat(fd, &st) != 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return nb_fail(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISREG(st.st_mode)) {
        close(fd);
        return nb_fail(err, "%s: is %s, not a file to write", path, nb_file_kind(st.st_mode));
    }
    return fd;
}

/* ---- one file, one name ----
 * Two names a process writes (a run's metrics.jsonl and config.json, --save-weights) must not
 * lead to one file through links: the second would replace the first, and one of them would be
 * lost without a word. Every file the rule replaces (or appends to) is recorded by where its
 * name is and where it leads, both absolute; a name leading where another name already leads is
 * refused. Devices and FIFOs are written through, in order, and are not recorded. */
typedef struct claim {
    char *name;     /* where the name is: its directory's real path and its last part */
    char *target;   /* where it leads, the same way */
    char *shown;    /* the path as given, for messages */
} claim;

static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static claim *claims;
static size_t n_claims;

/* path's directory made absolute with its links followed, and its last part; NULL when the
 * directory cannot be resolved (it does not exist yet: then nothing of it was written). */
static char *located(const char *path)
{
    char *dir = dir_of(path);
    char *real = dir ? realpath(dir, NULL) : NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *out = NULL;
    if (real && *base && (out = malloc(strlen(real) + strlen(base) + 2)) != NULL)
        sprintf(out, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
    free(dir);
    free(real);
    return out;
}

/* Records that this process writes path, which leads to d (replaced, not written through).
 * Returns 0, or -1 when another name it writes leads to the same file. */
static int claim_target(const char *path, const destination *d, nb_error *err)
{
    char *name = located(path);
    char *target = d->via_link ? located(d->target) : name ? strdup(name) : NULL;
    char *shown = strdup(path);
    int rc = 0;
    if (!name || !target || !shown) {
        free(name);
        free(target);
        free(shown);
        return 0;   /* cannot tell: its directory is not there yet, or out of memory */
    }
    pthread_mutex_lock(&claims_lock);
    size_t same_name = n_claims;
    for (size_t i = 0; i < n_claims; i++) {
        if (strcmp(claims[i].name, name) == 0)
            same_name = i;
        else if (strcmp(claims[i].target, target) == 0)
            rc = nb_fail(err, "%s: leads to the same file as %s (%s), which this command writes "
                              "too; one would replace the other: give each its own file",
                         path, claims[i].shown, target);
    }
    if (rc == 0 && same_name < n_claims) {
        /* The same name again: where it leads now (a link may have changed meanwhile). */
        free(claims[same_name].target);
        claims[same_name].target = target;
        target = NULL;
    } else if (rc == 0) {
        claim *grown = realloc(claims, (n_claims + 1) * sizeof *claims);
        if (grown) {
            claims = grown;
            claims[n_claims++] = (claim){name, target, shown};
            name = target = shown = NULL;
        }
    }
    pthread_mutex_unlock(&claims_lock);
    free(name);
    free(target);
    free(shown);
    return rc;
}

int nb_output_check(const char *path, nb_error *err)
{
    destination d;
    write_way way = WRITE_REPLACE;
    if (find_destination(path, &d, err) != 0)
        return -1;
    int rc = way_of(path, &d, &way, err);
    if (rc == 0 && way == WRITE_REPLACE)
        rc = claim_target(path, &d, err);
    if (rc == 0 && way == WRITE_THROUGH && access(d.target, W_OK) != 0)
        rc = nb_fail(err, "%s: %s", path, strerror(errno));
    if (rc == 0 && way == WRITE_REPLACE) {
        char *dir = dir_of(d.target);
        struct stat st;
        if (!dir)
            rc = nb_fail(err, "%s: out of memory", path);
        else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = nb_fail(err, "%s: directory %s does not exist", path, dir);
        else if (access(dir, W_OK | X_OK) != 0)
            rc = nb_fail(err, "%s: cannot write to directory %s: %s", path, dir,
                         strerror(errno));
        free(dir);
    }
    free(d.target);
    return rc;
}

/* ---- the temporary files being written, for a signal handler (fileio.h) ----
 * Every temporary file nabla makes is made by create_temp, which puts its name on record
 * before creating it; the name is forgotten once the file is renamed into place or removed.
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

static void temp_register(const char *tmp)
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

static void temp_forget(const char *tmp)
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

/* ---- writing ---- */

/* Why a temporary file could not be made next to o's target (errno e), in the words of
 * nb_output_check: its directory is missing, or cannot be written. */
static int temp_failure(const nb_output *o, int e, nb_error *err)
{
    char *dir = dir_of(o->target);
    int rc;
    if (!dir)
        rc = nb_fail(err, "%s: out of memory", o->name);
    else if (e == ENOENT || e == ENOTDIR)
        rc = nb_fail(err, "%s: directory %s does not exist", o->name, dir);
    else if (e == EACCES || e == EPERM || e == EROFS)
        rc = nb_fail(err, "%s: cannot write to directory %s: %s", o->name, dir, strerror(e));
    else
        rc = nb_fail(err, "%s: cannot create a temporary file next to it: %s", o->name,
                     strerror(e));
    free(dir);
    return rc;
}

/* Distinguishes temporary names made by threads of one process; O_EXCL settles any race. */
static atomic_uint tmp_counter;

/* Creates "<target>.tmp.<pid>.<n>" exclusively. Same directory as target, so rename() is atomic
 * (it never crosses a file system). Mode 0666 lets the umask decide, as for a plain fopen;
 * O_APPEND so that the descriptor can go on appending once the file is in place. */
static int create_temp(nb_output *o, nb_error *err)
{
    size_t len = strlen(o->target) + 64;
    char *tmp = malloc(len);
    if (!tmp)
        return nb_fail(err, "%s: out of memory", o->name);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1u);
        snprintf(tmp, len, "%s.tmp.%ld.%u", o->target, (long)getpid(), n);
        temp_register(tmp);   /* before it exists: never a file the record misses */
        int fd = open(tmp, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            o->tmp = tmp;
            o->fd = fd;
            return 0;
        }
        int e = errno;
        temp_forget(tmp);
        if (e != EEXIST) {
            free(tmp);
            return temp_failure(o, e, err);
        }
    }
    free(tmp);
    return nb_fail(err, "%s: cannot create a temporary file next to it: too many exist",
                   o->name);
}

static void output_release(nb_output *o)
{
    free(o->name);
    free(o->target);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}

int nb_output_begin(nb_output *o, const char *path, nb_error *err)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    destination d;
    write_way way = WRITE_REPLACE;
    if (find_destination(path, &d, err) != 0)
        return -1;
    if (way_of(path, &d, &way, err) != 0 ||
        (way == WRITE_REPLACE && claim_target(path, &d, err) != 0)) {
        free(d.target);
        return -1;
    }
    o->target = d.target;
    o->name = strdup(path);
    if (!o->name) {
        output_release(o);
        return nb_fail(err, "%s: out of memory", path);
    }
    if (way == WRITE_THROUGH) {
        o->fd = open_as_is(o->target, 0, err);
        if (o->fd < 0) {
            output_release(o);
            return -1;
        }
        return 0;
    }
    if (create_temp(o, err) != 0) {
        output_release(o);
        return -1;
    }
    /* The new file keeps the permission bits of the one it replaces. */
    if (d.exists && fchmod(o->fd, d.mode & 07777) != 0) {
        int e = errno;
        nb_output_abort(o);
        return nb_fail(err, "%s: cannot give the new file the old one's permissions: %s", path,
                       strerror(e));
    }
    return 0;
}

static volatile sig_atomic_t *write_stop;

void nb_set_write_stop(volatile sig_atomic_t *stop) { write_stop = stop; }

/* With a stop under way: how much of n bytes may be written to fd without waiting (0: none,
 * give up). *may_wait caches whether fd is anything but a regular file (-1: not known yet). */
static size_t room_now(int fd, size_t n, int *may_wait)
{
    if (*may_wait < 0) {
        struct stat st;
        *may_wait = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
    }
    if (!*may_wait)
        return n;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 0) != 1)
        return 0;
    /* POLLERR, POLLHUP: the write says what went wrong (EPIPE). */
    return n < PIPE_BUF ? n : PIPE_BUF;
}

int nb_write_all(int fd, const void *data, size_t n)
{
    /* SIGPIPE is blocked for the write and, if the write raised it, taken back: a FIFO
     * whose reader left is an EPIPE error to report, not a reason to die. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    const char *p = data;
    int rc = 0, e = 0, may_wait = -1;
    while (n > 0) {
        size_t piece = write_stop && *write_stop ? room_now(fd, n, &may_wait) : n;
        if (piece == 0) {
            e = EINTR;   /* a stop: the rest would wait for a reader that does not read */
            rc = -1;
            break;
        }
        ssize_t w = write(fd, p, piece);
        if (w < 0 && errno == EINTR)
            continue;   /* a signal: a stop it set is seen above */
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            rc = -1;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (e == EPIPE && !sigismember(&old, SIGPIPE)) {
        const struct timespec now = {0, 0};
        sigtimedwait(&pipe_set, NULL, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return rc;
}

int nb_fsync_output(int fd)
{
    if (fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP)
        return 0;
    return -1;
}

int nb_output_write(nb_output *o, const void *data, size_t n, nb_error *err)
{
    if (n == 0)
        return 0;
    if (!data)
        return nb_fail(err, "%s: no data to write", o->name);
    if (nb_write_all(o->fd, data, n) != 0)
        return nb_fail(err, "%s: write failed: %s", o->name, strerror(errno));
    return 0;
}

void nb_output_abort(nb_output *o)
{
    if (o->fd >= 0)
        close(o->fd);
    if (o->tmp) {
        unlink(o->tmp);
        temp_forget(o->tmp);
    }
    output_release(o);
}

int nb_output_commit(nb_output *o, int *keep_fd, nb_error *err)
{
    if (!o->tmp) {
        /* Written through: nothing to sync or rename. */
        int fd = o->fd;
        o->fd = -1;
        if (keep_fd) {
            *keep_fd = fd;
        } else if (close(fd) != 0) {
            nb_fail(err, "%s: write failed: %s", o->name, strerror(errno));
            output_release(o);
            return -1;
        }
        output_release(o);
        return 0;
    }
    const char *failed = NULL;
    int e = 0;
    if (fsync(o->fd) != 0) {
        e = errno;
        failed = "fsync failed";
    } else if (!keep_fd) {
        /* close reports a delayed write error (NFS) too; the descriptor is gone either way. */
        int rc = close(o->fd);
        o->fd = -1;
        if (rc != 0) {
            e = errno;
            failed = "close failed";
        }
    }
    if (!failed && rename(o->tmp, o->target) != 0) {
        e = errno;
        failed = "cannot rename the temporary file to it";
    }
    if (failed) {
        nb_fail(err, "%s: %s: %s", o->name, failed, strerror(e));
        nb_output_abort(o);
        return -1;
    }
    temp_forget(o->tmp);   /* renamed: no temporary left to remove */
    int rc = nb_sync_parent_dir(o->target, err);
    if (keep_fd && rc == 0)
        *keep_fd = o->fd;
    else if (keep_fd)
        close(o->fd);
    o->fd = -1;
    output_release(o);
    return rc;
}

/* fsync of the directory makes the rename durable. Some file systems refuse fsync on a
 * directory (EINVAL); nothing more can be done there, so that is not an error. */
int nb_sync_parent_dir(const char *path, nb_error *err)
{
    char *dir = dir_of(path);
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
    nb_output o;
    if (nb_output_begin(&o, path, err) != 0)
        return -1;
    for (int i = 0; i < n_parts; i++)
        if (nb_output_write(&o, parts[i].data, parts[i].size, err) != 0) {
            nb_output_abort(&o);
            return -1;
        }
    return nb_output_commit(&o, NULL, err);
}

int nb_open_append(const char *path, nb_error *err)
{
    destination d;
    write_way way = WRITE_REPLACE;
    if (find_destination(path, &d, err) != 0)
        return -1;
    int fd = -1;
    if (way_of(path, &d, &way, err) == 0 &&
        (way == WRITE_THROUGH || claim_target(path, &d, err) == 0))
        fd = way == WRITE_THROUGH ? open_as_is(d.target, O_APPEND, err)
                                  : open_as_is(d.target, O_APPEND | O_CREAT, err);
    free(d.target);
    return fd;
}

int nb_open_regular(const char *path, uint64_t *size, nb_error *err)
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
    if (size)
        *size = (uint64_t)st.st_size;
    return fd;
}

/* Reads fd to its end into a new buffer (see nb_read_file); size is a first guess (0: none).
 * Closes fd. */
static int read_to_end(int fd, uint64_t size, const char *path, unsigned char **data, size_t *n,
                       nb_error *err)
{
    /* The size from stat is a first guess only: files in /proc report 0 and files can change,
     * so read until end of file and grow as needed. +2: one byte for the terminating zero, one
     * so that the read that sees end of file has room and the buffer need not grow for it. */
    size_t cap = 65536;
    if (size > 0 && nb_check_memory(size + 2, path, err) != 0) {
        close(fd);
        return -1;
    }
    if (size > 0 && size < SIZE_MAX - 2)
        cap = (size_t)size + 2;
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

int nb_read_file(const char *path, unsigned char **data, size_t *n, nb_error *err)
{
    *data = NULL;
    *n = 0;
    uint64_t size;
    int fd = nb_open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    return read_to_end(fd, size, path, data, n, err);
}

int nb_read_input(const char *path, unsigned char **data, size_t *n, nb_error *err)
{
    *data = NULL;
    *n = 0;
    struct stat st;
    if (path && strcmp(path, "-") == 0) {
        int fd = dup(STDIN_FILENO);
        if (fd < 0 || fstat(fd, &st) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return nb_fail(err, "standard input: %s", strerror(e));
        }
        if (isatty(fd)) {
            close(fd);
            return nb_fail(err, "standard input is a terminal: pipe the data into nabla "
                                "(cat data.csv | nabla ... --data -) or name the file");
        }
        return read_to_end(fd, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0, "stdin", data,
                           n, err);
    }
    if (!path || !*path || stat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return nb_read_file(path, data, n, err);   /* which names what is wrong */
    if (!S_ISFIFO(st.st_mode))
        return nb_fail(err, "%s: %s, not a file or a pipe", path, nb_file_kind(st.st_mode));
    /* A FIFO (or /dev/stdin on a pipe): opened to wait for its writer, read to its end. */
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return nb_fail(err, "%s: %s", path, strerror(errno));
    return read_to_end(fd, 0, path, data, n, err);
}
