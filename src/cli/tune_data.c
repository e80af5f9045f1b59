/* The training data of a study, decompressed once (see tune_data.h). */
#include "tune_data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"
#include "options.h"
#include "run_files.h"

static const char *const TRAINING_FILES[] = {"train-images-idx3-ubyte",
                                             "train-labels-idx1-ubyte"};

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* gunzip from → to, through a temporary file renamed into place. */
static int gunzip_file(const char *from, const char *to, nb_error *err)
{
    char tmp[CLI_MAX_PATH + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", to, (long)getpid());
    nb_temp_register(tmp);   /* a second Ctrl-C removes it (fileio.h) */
    gzFile in = gzopen(from, "rb");
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char *buf = malloc(1 << 20);
    int rc = in && out >= 0 && buf ? 0 : -1;
    int saved = errno;
    while (rc == 0) {
        int n = gzread(in, buf, 1 << 20);
        if (n < 0) {
            int zerr;
            nb_fail(err, "%s: %s", from, gzerror(in, &zerr));
            rc = -2;
        } else if (n == 0) {
            break;
        } else if (write(out, buf, (size_t)n) != n) {
            saved = errno;
            rc = -1;
        }
    }
    if (rc == 0 && fsync(out) != 0) {
        saved = errno;
        rc = -1;
    }
    if (out >= 0 && close(out) != 0 && rc == 0) {
        saved = errno;
        rc = -1;
    }
    if (in)
        gzclose(in);
    free(buf);
    if (rc == 0 && rename(tmp, to) != 0) {
        saved = errno;
        rc = -1;
    }
    if (rc != 0)
        unlink(tmp);
    nb_temp_forget(tmp);
    if (rc != 0) {
        if (rc == -1)
            nb_fail(err, "%s: %s", to, strerror(saved ? saved : ENOMEM));
        return -1;
    }
    return nb_sync_parent_dir(to, err);
}

int tune_prepare_data(const char *study_dir, const char *data, char **dir, nb_error *err)
{
    data_kind kind;
    const char *path;
    *dir = NULL;
    if (data_classify(data, &kind, &path, err) != 0)
        return -1;
    if (kind != DATA_IDX)
        return 0;
    char from[CLI_MAX_PATH + 64];
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s.gz", path, TRAINING_FILES[i]);
        if (!exists(from))
            return 0; /* not compressed (or missing: the trials will say) */
    }
    char *cache = path_join(study_dir, "data");
    if (!cache || make_dirs(cache, err) != 0) {
        if (!cache)
            nb_fail(err, "out of memory");
        free(cache);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        char *to = path_join(cache, TRAINING_FILES[i]);
        snprintf(from, sizeof from, "%s/%s.gz", path, TRAINING_FILES[i]);
        int rc = to ? (exists(to) ? 0 : gunzip_file(from, to, err)) : nb_fail(err, "out of memory");
        free(to);
        if (rc != 0) {
            free(cache);
            return -1;
        }
    }
    *dir = cache;
    return 1;
}
