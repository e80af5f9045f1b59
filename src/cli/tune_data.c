/* The training data of a study, decompressed once (see tune_data.h). */
#include "tune_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* gunzip from → to, written by the output rule (fileio.h): atomically, as a regular file. */
static int gunzip_file(const char *from, const char *to, nb_error *err)
{
    gzFile in = gzopen(from, "rb");
    if (!in)
        return nb_fail(err, "%s: %s", from, strerror(errno ? errno : ENOMEM));
    char *buf = malloc(1 << 20);
    nb_output out;
    int rc = buf ? nb_output_begin(&out, to, err) : nb_fail(err, "out of memory");
    int begun = rc == 0;
    while (rc == 0) {
        int n = gzread(in, buf, 1 << 20);
        if (n < 0) {
            int zerr;
            rc = nb_fail(err, "%s: %s", from, gzerror(in, &zerr));
        } else if (n == 0) {
            break;
        } else {
            rc = nb_output_write(&out, buf, (size_t)n, err);
        }
    }
    gzclose(in);
    free(buf);
    if (rc != 0) {
        if (begun)
            nb_output_abort(&out);
        return -1;
    }
    return nb_output_commit(&out, NULL, err);
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
