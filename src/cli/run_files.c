/* The files of a training run, written atomically (fileio.h) or appended line by line. */
#include "run_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/fileio.h"

char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t j = a;
    if (a > 0 && dir[a - 1] != '/')
        p[j++] = '/';
    memcpy(p + j, name, b + 1);
    return p;
}

/* Creates one directory; *created tells whether it was new. */
static int make_one_dir(const char *path, int *created, nb_error *err)
{
    struct stat st;
    *created = 0;
    if (mkdir(path, 0777) == 0) {
        *created = 1;
        return 0;
    }
    int saved = errno;
    if (saved == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    char target[4096];
    ssize_t n;
    if (saved == EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        (n = readlink(path, target, sizeof target - 1)) >= 0) {
        target[n] = '\0';
        return nb_fail(err, "cannot create directory %s: it is a symbolic link to %s, which does "
                            "not exist (create it, or give the directory itself)",
                       path, target);
    }
    if (saved == EEXIST)
        return nb_fail(err, "cannot create directory %s: it exists and is %s, not a directory",
                       path, stat(path, &st) == 0 ? nb_file_kind(st.st_mode) : "no directory");
    return nb_fail(err, "cannot create directory %s: %s", path, strerror(saved));
}

int make_dirs(const char *path, nb_error *err)
{
    if (path[0] == '\0')
        return nb_fail(err, "empty directory name");
    char *p = strdup(path);
    if (!p)
        return nb_fail(err, "out of memory");
    /* The prefixes are cut at their '/': marks[i] is the end of the i-th one created here, so
     * that a failure further down (a name too long, a file in the way, no permission) can
     * take back the directories made so far: a failed run leaves nothing behind. */
    size_t len = strlen(p), n_made = 0;
    size_t *made = malloc((len + 1) * sizeof *made);
    if (!made) {
        free(p);
        return nb_fail(err, "out of memory");
    }
    int rc = 0, created;
    /* Every prefix ending before a '/' (not the root's), then the whole path. */
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (i < len && !(p[i] == '/' && p[i - 1] != '/'))
            continue;
        char keep = p[i];
        p[i] = '\0';
        rc = make_one_dir(p, &created, err);
        p[i] = keep;
        if (rc == 0 && created)
            made[n_made++] = i;
    }
    while (rc != 0 && n_made > 0) {
        p[made[--n_made]] = '\0';
        rmdir(p);
    }
    free(made);
    free(p);
    return rc;
}

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

int write_json_file(const char *dir, const char *name, const cJSON *j, nb_error *err)
{
    char *path = path_join(dir, name);
    char *text = cJSON_Print(j);
    int rc;
    if (!path || !text) {
        rc = nb_fail(err, "out of memory");
    } else {
        size_t n = strlen(text);
        /* cJSON_Print leaves room for nothing more, so the newline goes in a copy. */
        char *line = malloc(n + 2);
        if (!line) {
            rc = nb_fail(err, "out of memory");
        } else {
            memcpy(line, text, n);
            line[n] = '\n';
            line[n + 1] = '\0';
            rc = nb_write_file_atomic(path, line, n + 1, err);
            free(line);
        }
    }
    free(path);
    cJSON_free(text);
    return rc;
}

cJSON *json_float(float v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    /* The fewest significant digits that read back as the same float. */
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

cJSON *json_double(double v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    /* cJSON prints 15 digits when they read back within its tolerance, not exactly: a value
     * written and read back must be the value kept. */
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(buf);
}

void json_add_split(cJSON *obj, const char *name, const nb_eval_result *r)
{
    char key[64];
    /* The loss and the accuracy always (null when the split is empty, or the task has no
     * accuracy), then the task's own metrics. */
    for (int i = 0; i < NB_METRICS; i++) {
        const char *metric = nb_metric_name((nb_metric)i);
        int always = i == NB_METRIC_LOSS || i == NB_METRIC_ACCURACY;
        int has = nb_metric_applies((nb_metric)i, r->task);
        if (!always && !has)
            continue;
        snprintf(key, sizeof key, "%s%s%s", name ? name : "", name ? "_" : "", metric);
        cJSON_AddItemToObject(obj, key, r->n > 0 && has
                                            ? cJSON_CreateNumber(nb_metric_value((nb_metric)i, r))
                                            : cJSON_CreateNull());
    }
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

char *json_line(cJSON *j, size_t *len, nb_error *err)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        nb_fail(err, "out of memory");
        return NULL;
    }
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (!line) {
        cJSON_free(text);
        nb_fail(err, "out of memory");
        return NULL;
    }
    memcpy(line, text, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    cJSON_free(text);
    *len = n + 1;
    return line;
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
