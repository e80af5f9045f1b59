/* Strict option values and data loading by --data spec, shared by `nabla train` and `eval`. */
#include "cli/common/options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The last reason noted: one message, one line (nb_fail escapes any line break or control
 * byte in it, since messages quote the user's arguments). */
static nb_error last_error;

static void note(const char *fmt, va_list ap)
{
    char raw[1024];
    vsnprintf(raw, sizeof raw, fmt, ap);
    nb_fail(&last_error, "%s", raw);
}

const char *cli_last_error(void) { return last_error.msg; }

/* Whether the messages are noted only (cli_errors_quiet). */
static int quiet_errors;

int cli_errors_quieted(void) { return quiet_errors; }

int cli_errors_quiet(int quiet)
{
    int was = quiet_errors;
    quiet_errors = quiet;
    return was;
}

void cli_note_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(fmt, ap);
    va_end(ap);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(fmt, ap);
    va_end(ap);
    if (!quiet_errors)
        fprintf(stderr, "nabla: %s\n", last_error.msg);
    return EXIT_RUNTIME;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(fmt, ap);
    va_end(ap);
    if (!quiet_errors)
        fprintf(stderr, "nabla %s: %s\n", cmd, last_error.msg);
    return EXIT_USAGE;
}

/* strtol and friends skip leading blanks and accept an empty string as 0; refuse both. */
static int starts_like_a_number(const char *s)
{
    return s[0] != '\0' && !isspace((unsigned char)s[0]);
}

int cli_parse_i64(const char *cmd, const char *opt, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = starts_like_a_number(s) ? strtoll(s, &end, 10) : 0;
    if (!starts_like_a_number(s) || *end != '\0' || errno == ERANGE) {
        cli_usage_error(cmd, "%s expects an integer, got '%s'", opt, s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, int *out)
{
    int64_t v;
    if (cli_parse_i64(cmd, opt, s, &v) != 0)
        return -1;
    if (v < INT_MIN || v > INT_MAX) {
        cli_usage_error(cmd, "%s is out of range, got '%s'", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    /* strtoull quietly negates "-1" into a huge number, so a sign is refused up front. */
    if (!starts_like_a_number(s) || s[0] == '-' || s[0] == '+') {
        cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = starts_like_a_number(s) ? strtod(s, &end) : 0;
    if (!starts_like_a_number(s) || *end != '\0') {
        cli_usage_error(cmd, "%s expects a number, got '%s'", opt, s);
        return -1;
    }
    /* ERANGE also flags underflow to a tiny number, which is harmless; overflow gives inf. */
    if (!isfinite(v)) {
        cli_usage_error(cmd, "%s must be finite, got '%s'", opt, s);
        return -1;
    }
    /* The library computes in 32-bit floats: 1e300 is a finite double but an infinite float,
     * found only once training had begun. */
    if (!isfinite((float)v)) {
        cli_usage_error(cmd, "%s is too large for a 32-bit float, got '%s'", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_path(const char *cmd, const char *opt, const char *s, const char **out)
{
    if (s[0] == '\0') {
        cli_usage_error(cmd, "%s needs a file name, got ''", opt);
        return -1;
    }
    *out = s;
    return 0;
}

int cli_option_error(const char *cmd, int c, char **argv)
{
    const char *bad = argv[optind - 1];
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", bad);
    if (optopt && optopt < 256)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", bad);
}

int cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 1;
}

/* ---- data ---------------------------------------------------------------------------- */

const char *data_kind_name(data_kind kind)
{
    switch (kind) {
    case DATA_IDX: return "idx";
    case DATA_CSV: return "csv";
    case DATA_SYNTHETIC: return "synthetic";
    }
    return "?";
}

int data_csv_option(const char *cmd, const char *flag, const char *arg, data_source *src)
{
    nb_csv_options *c = &src->csv;
    if (strcmp(flag, "--target") == 0) {
        if (!*arg) {
            cli_usage_error(cmd, "--target needs column names or indices (from 0), got ''");
            return -1;
        }
        c->target = arg;
    } else if (strcmp(flag, "--header") == 0) {
        if (strcmp(arg, "auto") == 0)
            c->header = 0;
        else if (strcmp(arg, "yes") == 0)
            c->header = 1;
        else if (strcmp(arg, "no") == 0)
            c->header = 2;
        else {
            cli_usage_error(cmd, "--header must be yes, no or auto, got '%s'", arg);
            return -1;
        }
    } else if (strcmp(flag, "--delimiter") == 0) {
        if (strcmp(arg, "auto") == 0)
            c->delimiter = 0;
        else if (strcmp(arg, ",") == 0 || strcmp(arg, ";") == 0)
            c->delimiter = arg[0];
        else if (strcmp(arg, "tab") == 0 || strcmp(arg, "\t") == 0 || strcmp(arg, "\\t") == 0)
            c->delimiter = '\t';
        else {
            cli_usage_error(cmd, "--delimiter must be ',', ';', tab or auto, got '%s'", arg);
            return -1;
        }
    } else if (strcmp(flag, "--missing") == 0) {
        if (strcmp(arg, "error") == 0)
            c->missing = NB_MISSING_REFUSE;
        else if (strcmp(arg, "drop") == 0)
            c->missing = NB_MISSING_DROP;
        else if (strcmp(arg, "mean") == 0)
            c->missing = NB_MISSING_MEAN;
        else {
            cli_usage_error(cmd, "--missing must be error, drop or mean, got '%s'", arg);
            return -1;
        }
    } else if (strcmp(flag, "--allow-many-classes") == 0) {
        c->allow_many_classes = 1;
    } else if (strcmp(flag, "--test-fraction") == 0) {
        if (cli_parse_double(cmd, "--test-fraction", arg, &src->test_fraction) != 0)
            return -1;
        if (!(src->test_fraction >= 0 && src->test_fraction < 1)) {
            cli_usage_error(cmd, "--test-fraction must be in [0, 1), got %s", arg);
            return -1;
        }
    } else {
        return 1;
    }
    return 0;
}

int data_csv_options_given(const data_source *src)
{
    const nb_csv_options *c = &src->csv;
    return c->target || c->header || c->delimiter || c->missing || c->allow_many_classes ||
           src->test_fraction > 0;
}

const char *data_csv_usage(void)
{
    return "  --target COLS         CSV: the target column(s), header names or indices from 0,\n"
          "                        comma-separated; every other column is a feature [the last]\n"
          "  --header H            CSV: yes|no|auto: whether line 1 is a header; auto: when none\n"
          "                        of its fields is a number [auto]\n"
          "  --delimiter D         CSV: ','|';'|tab|auto: the field separator; auto: the one that\n"
          "                        splits the first lines evenly [auto]\n"
          "  --missing M           CSV: error|drop|mean: empty, NA, N/A, NaN, NULL, None, ? fields\n"
          "                        are refused, their rows dropped, or filled (numbers: the\n"
          "                        training mean; categories: no category) [error]\n"
          "  --allow-many-classes  CSV: take a target that looks like a regression target\n"
          "                        (non-integer numbers, more than 20 distinct values and a tenth\n"
          "                        of the rows) as classes\n"
          "  --test-fraction F     CSV: hold out a seeded fraction of --data as the test set,\n"
          "                        0 <= F < 1 (not with --test) [0]\n";
}

const char *data_header_name(int header)
{
    return header == 1 ? "yes" : header == 2 ? "no" : "auto";
}

const char *data_delimiter_name(char delimiter)
{
    return delimiter == ',' ? "," : delimiter == ';' ? ";" : delimiter == '\t' ? "tab" : "auto";
}

const char *data_missing_name(nb_missing missing)
{
    return missing == NB_MISSING_DROP ? "drop" : missing == NB_MISSING_MEAN ? "mean" : "error";
}

int data_classify(const char *data, data_kind *kind, const char **path, nb_error *err)
{
    struct stat st;
    if (strcmp(data, "-") == 0) {
        *kind = DATA_CSV;   /* standard input */
        *path = data;
        return 0;
    }
    if (nb_is_synthetic(data)) {
        *kind = DATA_SYNTHETIC;
        *path = data;
        return 0;
    }
    int fashion = strcmp(data, "fashion-mnist") == 0;
    if (fashion)
        data = NB_FASHION_MNIST_DIR;
    if (stat(data, &st) != 0)
        return nb_fail(err, "%s: %s%s", data, strerror(errno),
                       fashion ? " (install the dataset-fashion-mnist package, or pick another "
                                 "--data)"
                               : "");
    if (S_ISDIR(st.st_mode))
        *kind = DATA_IDX;
    else if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))
        *kind = DATA_CSV;
    else
        return nb_fail(err, "%s: neither a directory of IDX files nor a CSV file (or pipe)",
                       data);
    *path = data;
    return 0;
}

int synthetic_test_samples(int samples)
{
    return samples / 4 > 200 ? samples / 4 : 200;
}

static int check_finite(const nb_dataset *d, const char *what, nb_error *err)
{
    return d->values ? nb_dataset_check_finite(d, what, err) : 0;
}

static int check_not_empty(const nb_dataset *d, const char *what, nb_error *err)
{
    return d->n > 0 ? 0 : nb_fail(err, "%s: no samples", what);
}

/* A CSV file read like the training set (src->csv, with its table), which must hold the
 * targets: a test set is scored against them. */
static int load_csv_like(const char *path, const data_source *src, const nb_table *like,
                         nb_dataset *d, nb_error *err)
{
    nb_csv_options o = src->csv;
    if (like)
        o.like = like;
    if (nb_read_csv(path, &o, d, err) != 0)
        return -1;
    if (!d->labels && !d->target) {
        const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
        nb_dataset_free(d);
        return nb_fail(err, "%s: no target column: a test set needs the targets to be scored "
                            "against", name);
    }
    return 0;
}

/* Loads the --test CSV, read like the training set. */
static int load_csv_test(const char *path, const data_source *src, const nb_dataset *train,
                         nb_dataset *test, nb_error *err)
{
    if (load_csv_like(path, src, train->table, test, err) != 0)
        return -1;
    if (check_not_empty(test, path, err) != 0 || check_finite(test, path, err) != 0)
        return -1;
    return data_check_fits(test, path, 0, "the training set", train->features,
                           train->labels ? train->classes : train->targets, err);
}

int data_load_train(const data_source *src, nb_dataset *train, nb_dataset *test, nb_error *err)
{
    data_kind kind;
    const char *path;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (data_classify(src->data, &kind, &path, err) != 0)
        return -1;
    if (src->test && kind != DATA_CSV)
        return nb_fail(err, "--test needs a CSV training set, not %s", src->data);

    int rc = -1;
    switch (kind) {
    case DATA_IDX:
        rc = nb_load_idx_dir(path, train, src->no_test ? NULL : test, err);
        break;
    case DATA_CSV:
        rc = nb_read_csv(path, &src->csv, train, err);
        if (rc == 0 && src->test)
            rc = load_csv_test(src->test, src, train, test, err);
        else if (rc == 0 && src->test_fraction > 0)
            rc = nb_dataset_split(train, (float)src->test_fraction,
                                  DATA_TEST_SPLIT_SEED(src->seed), test, err);
        break;
    case DATA_SYNTHETIC:
        rc = nb_make_synthetic(path, src->samples, (float)src->noise, src->seed, train, err);
        if (rc == 0)
            rc = nb_make_synthetic(path, synthetic_test_samples(src->samples), (float)src->noise,
                                   src->seed + 1, test, err);
        break;
    }
    if (rc == 0 && src->no_test) {
        nb_dataset_free(test);
        memset(test, 0, sizeof *test);
    }
    if (rc == 0)
        rc = check_not_empty(train, path, err);
    if (rc == 0)
        rc = check_finite(train, path, err);
    if (rc != 0) {
        nb_dataset_free(train);
        nb_dataset_free(test);
        memset(train, 0, sizeof *train);
        memset(test, 0, sizeof *test);
    }
    return rc;
}

void data_idx_file(const char *dir, const char *name, char *out, size_t size)
{
    struct stat st;
    snprintf(out, size, "%s/%s.gz", dir, name);
    if (stat(out, &st) != 0)
        snprintf(out, size, "%s/%s", dir, name);
}

int data_load_eval(const data_source *src, nb_dataset *test, nb_error *err)
{
    data_kind kind;
    const char *path;
    memset(test, 0, sizeof *test);
    if (src->test) {
        kind = DATA_CSV;
        path = src->test;
    } else if (data_classify(src->data, &kind, &path, err) != 0) {
        return -1;
    }

    int rc = -1;
    switch (kind) {
    case DATA_IDX: {
        char images[4096], labels[4096];
        data_idx_file(path, "t10k-images-idx3-ubyte", images, sizeof images);
        data_idx_file(path, "t10k-labels-idx1-ubyte", labels, sizeof labels);
        rc = nb_load_idx(images, labels, test, err);
        break;
    }
    case DATA_CSV:
        if (src->test_fraction > 0 && !src->test) {
            /* The part of --data that train held out. */
            data_source whole = *src;
            whole.no_test = 0;
            nb_dataset train;
            rc = data_load_train(&whole, &train, test, err);
            nb_dataset_free(&train);
        } else {
            rc = load_csv_like(path, src, NULL, test, err);
        }
        break;
    case DATA_SYNTHETIC:
        rc = nb_make_synthetic(path, synthetic_test_samples(src->samples), (float)src->noise,
                               src->seed + 1, test, err);
        break;
    }
    if (rc == 0)
        rc = check_not_empty(test, path, err);
    if (rc == 0)
        rc = check_finite(test, path, err);
    if (rc != 0) {
        nb_dataset_free(test);
        memset(test, 0, sizeof *test);
    }
    return rc;
}

void data_describe_csv(FILE *out, const char *role, const char *path, const nb_dataset *d,
                       int samples, const nb_csv_options *csv)
{
    char count[32] = "";
    if (samples >= 0)
        snprintf(count, sizeof count, "%d samples, ", samples);
    int declared = csv && (csv->header == 1 || csv->header == 2);
    fprintf(out, "%s %s: %s%d features; %s\n", role, strcmp(path, "-") == 0 ? "stdin" : path,
            count, d->features,
            d->header ? (declared ? "line 1 is a header (--header yes), not a sample"
                                  : "line 1 is a header (no number in it), not a sample")
                      : (declared ? "line 1 is a sample (--header no), not a header"
                                  : "line 1 is a sample (it holds numbers), not a header"));
}

int data_check_fits(const nb_dataset *d, const char *what, int first_line, const char *against,
                    int features, int classes, nb_error *err)
{
    if (d->features != features)
        return nb_fail(err, "%s: %d features, but %s has %d", what, d->features, against,
                       features);
    if (!d->labels) {   /* regression or multilabel: classes is the target columns */
        if (d->target && d->targets != classes)
            return nb_fail(err, "%s: %d target columns, but %s has %d", what, d->targets,
                           against, classes);
        return 0;
    }
    for (int i = 0; i < d->n; i++) {
        if (d->labels[i] < classes)
            continue;
        char where[64];
        if (first_line > 0)
            snprintf(where, sizeof where, ":%d:", first_line + i);
        else
            snprintf(where, sizeof where, ": sample %d (counted from 1) has", i + 1);
        return nb_fail(err, "%s%s label %d, but %s has only %d class%s (labels 0 to %d)", what,
                       where, d->labels[i], against, classes, classes == 1 ? "" : "es",
                       classes - 1);
    }
    return 0;
}

/* Appends s to buf, single-quoted for a POSIX shell when it needs it. */
void append_shell_word(char *buf, size_t cap, const char *w)
{
    size_t len = strlen(buf);
    int plain = *w != '\0';
    for (const char *c = w; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,=:+",
                    *c))
            plain = 0;
    if (len && len + 1 < cap)
        buf[len++] = ' ';
    if (plain) {
        snprintf(buf + len, cap - len, "%s", w);
        return;
    }
    if (len + 1 < cap)
        buf[len++] = '\'';
    for (const char *c = w; *c && len + 5 < cap; c++) {
        if (*c == '\'') {
            memcpy(buf + len, "'\\''", 4);
            len += 4;
        } else {
            buf[len++] = *c;
        }
    }
    if (len + 1 < cap)
        buf[len++] = '\'';
    buf[len < cap ? len : cap - 1] = '\0';
}
