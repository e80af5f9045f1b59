/* The files of a training run, written atomically (fileio.h) or appended line by line. */
#include "cli/train/run_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/common/metrics_json.h"
#include "io/fileio.h"
#include "io/json_write.h"
#include "io/paths.h"

void default_run_dir(char *buf, size_t size)
{
    char stamp[32];
    struct stat st;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(buf, size, "runs/%s", stamp);
    for (int i = 2; stat(buf, &st) == 0 && i < 1000; i++)
        snprintf(buf, size, "runs/%s-%d", stamp, i);
}

void remove_stale_temporaries(const char *dir)
{
    static const char *const names[] = {"checkpoint.next.safetensors", "config.json",
                                        "metrics.jsonl", "model.safetensors", "summary.json",
                                        "trace.jsonl", "steps.jsonl"};
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            size_t len = strlen(names[i]);
            struct stat st;
            /* Only regular files: the temporaries are; anything else is not ours. */
            if (strncmp(e->d_name, names[i], len) == 0 &&
                strncmp(e->d_name + len, ".tmp.", 5) == 0 &&
                fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode))
                unlinkat(dirfd(d), e->d_name, 0);
        }
    closedir(d);
}

int line_file_free(const char *path, nb_error *err)
{
    /* Only a symbolic link leads two runs to one file (their own names are theirs, under
     * their directories' locks, and a hard link is broken by the atomic replacement). */
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;   /* nothing there, or a device or FIFO: written through, not replaced */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return 0;   /* what cannot be read is for the output rule to judge */
    int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    if (busy)
        return nb_fail(err, "%s: the file it leads to is being written by another nabla run now "
                            "(two runs' files linked to one file?): give each run its own",
                       path);
    return 0;
}

int start_appending(const char *path, const char *text, size_t n, nb_error *err)
{
    nb_output o;
    int fd = -1;
    if (line_file_free(path, err) != 0 || nb_output_begin(&o, path, err) != 0)
        return -1;
    if (nb_output_write(&o, text, n, err) != 0) {
        nb_output_abort(&o);
        return -1;
    }
    if (nb_output_commit(&o, &fd, err) != 0)
        return -1;
    /* Ours while it is open (line_file_free). A regular file only; a lock refused cannot be
     * another run's on this new file, and would only make the check above weaker. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* as said */
    }
    return fd;
}

int results_remove(const char *dir, nb_error *err)
{
    static const char *const names[] = RUN_RESULT_FILES;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
        char *path = path_join(dir, names[i]);
        rc = path ? run_file_remove(path, 1, err) : nb_fail(err, "out of memory");
        free(path);
    }
    return rc;
}

int metrics_start(const char *path, nb_error *err)
{
    return start_appending(path, "", 0, err);
}

int run_file_removable(const char *path, int through_ok, nb_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : nb_fail(err, "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode) || (through_ok && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))))
        return 0;
    return nb_fail(err, "%s: is %s, which a run removes when it starts, as an earlier run's file; "
                        "nabla removes only regular files, and follows no link to remove what it "
                        "leads to: move it away",
                   path, nb_file_kind(st.st_mode));
}

int results_writable(const char *dir, nb_error *err)
{
    static const char *const names[] = RUN_RESULT_FILES;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = path_join(dir, names[i]);
        struct stat st;
        int rc = 0;
        if (!path)
            return nb_fail(err, "out of memory");
        if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) &&
            !S_ISFIFO(st.st_mode))
            rc = nb_fail(err, "%s: is %s, put there while the run ran; a run writes its %s as a "
                              "file of its own (or through a device or FIFO), never through a "
                              "link: move it away",
                         path, nb_file_kind(st.st_mode), names[i]);
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int run_file_remove(const char *path, int through_ok, nb_error *err)
{
    struct stat st;
    if (run_file_removable(path, through_ok, err) != 0)
        return -1;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) != 0 && errno != ENOENT)
        return nb_fail(err, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Keeps a copy of what metrics.jsonl holds, for checkpoints. */
static int log_add(metrics_log *log, const char *text, size_t n, nb_error *err)
{
    char *grown = realloc(log->text, log->len + n + 1);
    if (!grown)
        return nb_fail(err, "out of memory");
    memcpy(grown + log->len, text, n);
    log->len += n;
    grown[log->len] = '\0';
    log->text = grown;
    return 0;
}

void metrics_log_free(metrics_log *log)
{
    free(log->text);
    log->text = NULL;
    log->len = 0;
}

int metrics_restore(const char *path, const char *text, metrics_log *log, nb_error *err)
{
    metrics_log_free(log);
    int fd = start_appending(path, text, strlen(text), err);
    if (fd < 0)
        return -1;
    if (log_add(log, text, strlen(text), err) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int metrics_sync(int fd, const char *path, nb_error *err)
{
    if (fd >= 0 && nb_fsync_output(fd) != 0)
        return nb_fail(err, "%s: fsync: %s", path, strerror(errno));
    return 0;
}

int metrics_append(int fd, const char *path, const nb_epoch_metrics *m, metrics_log *log,
                   nb_error *err)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(err, "out of memory");
    cJSON_AddNumberToObject(j, "epoch", m->epoch + 1);
    cJSON_AddItemToObject(j, "lr", json_float(m->lr));
    cJSON_AddNumberToObject(j, "train_loss", m->train_loss);
    cJSON_AddItemToObject(j, "train_accuracy",
                          m->task == NB_TASK_REGRESSION ? cJSON_CreateNull()
                                                        : cJSON_CreateNumber(m->train_accuracy));
    json_add_split(j, "dev", &m->dev);
    json_add_split(j, "test", &m->test);
    cJSON_AddNumberToObject(j, "seconds", m->seconds);
    size_t n;
    char *line = json_line(j, &n, err);
    if (!line)
        return -1;
    /* One write per line: O_APPEND puts it at the end in one piece. No fsync here: the file
     * reaches the disk with each checkpoint (metrics_sync), which holds a copy of it for a
     * resumed run; one fsync per epoch would cost more than a small epoch. A line a stop cut
     * short still goes to the log: the checkpoint keeps it, and --resume writes it. */
    int rc = fd >= 0 ? append_run_line(fd, path, line, n, err) : 0;
    if (rc >= 0 && log && log_add(log, line, n, err) != 0)
        rc = -1;
    free(line);
    return rc;
}

int append_run_line(int fd, const char *path, const char *line, size_t n, nb_error *err)
{
    if (nb_write_all(fd, line, n) == 0)
        return 0;
    if (errno == EINTR) {
        nb_fail(err, "%s: was not being read when the run stopped: its lines from there on "
                     "are not in it (the checkpoint has them, and --resume writes them again)",
                path);
        return APPEND_CUT;
    }
    return nb_fail(err, "%s: %s", path, strerror(errno));
}
