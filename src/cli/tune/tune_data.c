/* The training data of a study, decompressed once (see tune_data.h). */
#include "cli/tune/tune_data.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/fileio.h"
#include "io/paths.h"
#include "cli/common/options.h"

static const char *const TRAINING_FILES[] = {"train-images-idx3-ubyte",
                                             "train-labels-idx1-ubyte"};

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The header of an IDX file of unsigned bytes: its magic and sizes, and the size of the file
 * they make (header and data). Returns the header's length, or 0 if hdr is not one. */
static size_t idx_header(const unsigned char *hdr, size_t n, uint64_t *file_size)
{
    if (n < 4 || hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] < 1 || hdr[3] > 3)
        return 0;
    size_t len = 4 + 4 * (size_t)hdr[3];
    if (n < len)
        return 0;
    uint64_t size = 1;
    for (size_t i = 4; i < len; i += 4)
        size *= (uint64_t)hdr[i] << 24 | (uint64_t)hdr[i + 1] << 16 | (uint64_t)hdr[i + 2] << 8 |
                hdr[i + 3];
    *file_size = size + len;
    return len;
}

/* The first n bytes of a file (fewer if it is shorter), gzip'd or not. Returns the count, or
 * -1. */
static long read_head(const char *path, unsigned char *buf, unsigned n)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return -1;
    int got = gzread(f, buf, n);
    gzclose(f);
    return got;
}

/* What is wrong with the decompressed copy `to` of the gzip'd IDX file `from` (written into
 * why), or NULL when it matches: a regular file, not older than the data, of the size the
 * gzip trailer gives (the uncompressed size, modulo 2^32) and the IDX header implies, with the
 * data's header. A copy cut short, damaged or left by other data is decompressed again. */
static const char *cache_fault(const char *from, const char *to, char *why, size_t size)
{
    struct stat src, st;
    unsigned char want[16], have[16], trailer[4];
    uint64_t want_size = 0;
    long n_want = read_head(from, want, sizeof want);
    size_t hlen = n_want > 0 ? idx_header(want, (size_t)n_want, &want_size) : 0;
    FILE *gz = fopen(from, "rb");
    int have_trailer = gz && fseek(gz, -4, SEEK_END) == 0 && fread(trailer, 1, 4, gz) == 4;
    if (gz)
        fclose(gz);
    uint32_t isize = (uint32_t)trailer[0] | (uint32_t)trailer[1] << 8 |
                     (uint32_t)trailer[2] << 16 | (uint32_t)trailer[3] << 24;
    if (stat(to, &st) != 0)
        snprintf(why, size, "%s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(why, size, "it is %s", nb_file_kind(st.st_mode));
    else if (stat(from, &src) == 0 && st.st_mtime < src.st_mtime)
        snprintf(why, size, "it is older than the data");
    else if (!hlen || !have_trailer)
        snprintf(why, size, "the data's IDX header or gzip trailer cannot be read");
    else if ((uint32_t)st.st_size != isize || (uint64_t)st.st_size != want_size)
        snprintf(why, size, "it has %lld bytes, the data %llu", (long long)st.st_size,
                 (unsigned long long)want_size);
    else if (read_head(to, have, (unsigned)hlen) != (long)hlen || memcmp(want, have, hlen) != 0)
        snprintf(why, size, "its IDX header is not the data's");
    else
        return NULL;
    return why;
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
        char why[256];
        struct stat st;
        const char *fault = to && exists(to) ? cache_fault(from, to, why, sizeof why) : NULL;
        int rc = 0;
        if (!to)
            rc = nb_fail(err, "out of memory");
        else if (fault && (lstat(to, &st) != 0 || !S_ISREG(st.st_mode)))
            rc = nb_fail(err, "%s does not match %s (%s), and is not a regular file nabla can "
                              "replace: move it away",
                         to, from, fault);
        else if (fault)
            fprintf(stderr, "nabla: %s does not match %s (%s): decompressing it again\n", to,
                    from, fault);
        if (rc == 0 && (!exists(to) || fault))
            rc = gunzip_file(from, to, err);
        free(to);
        if (rc != 0) {
            free(cache);
            return -1;
        }
    }
    *dir = cache;
    return 1;
}
