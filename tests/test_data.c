/* Data: IDX and CSV loaders, synthetic sets, splits, statistics, batches.
 *
 * Fixture files are written into a fresh temporary directory, removed at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/clock.h"
#include "core/memcheck.h"
#include "nabla.h"

static char tmpdir[256];

/* ---- helpers --------------------------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t size)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)size), (int)size);
    assert_int_equal(gzclose(f), Z_OK);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* An IDX image file image in memory: header for [n, rows, cols], then `pixels` bytes. */
static size_t idx_images(uint8_t *buf, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                         const uint8_t *pixels, size_t pixel_bytes)
{
    size_t k = 0;
    k += put_be32(buf + k, magic);
    k += put_be32(buf + k, n);
    k += put_be32(buf + k, rows);
    k += put_be32(buf + k, cols);
    memcpy(buf + k, pixels, pixel_bytes);
    return k + pixel_bytes;
}

static size_t idx_labels(uint8_t *buf, uint32_t n, const uint8_t *labels, size_t count)
{
    size_t k = 0;
    k += put_be32(buf + k, 0x00000801);
    k += put_be32(buf + k, n);
    memcpy(buf + k, labels, count);
    return k + count;
}

/* Three 2x3 images and their labels. */
static const uint8_t PIX[18] = {0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 60, 255, 254, 253, 128, 127, 0};
static const uint8_t LAB[3] = {2, 0, 4};

static void write_idx_pair(const char *images, const char *labels, int gz)
{
    uint8_t buf[64];
    size_t size = idx_images(buf, 0x00000803, 3, 2, 3, PIX, sizeof PIX);
    (gz ? write_gz : write_bytes)(images, buf, size);
    size = idx_labels(buf, 3, LAB, sizeof LAB);
    (gz ? write_gz : write_bytes)(labels, buf, size);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/nabla_test_data_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

/* Expects a failure whose message is exactly `want` (formatted). */
static void expect_message(const nb_error *err, const char *fmt, ...)
{
    char want[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    assert_string_equal(err->msg, want);
}

static int is_zeroed(const nb_dataset *d)
{
    return d->n == 0 && d->features == 0 && d->classes == 0 && !d->pixels && !d->values &&
           !d->labels;
}

/* ---- IDX ------------------------------------------------------------------------------- */

static void check_three_images(const nb_dataset *d)
{
    assert_int_equal(d->n, 3);
    assert_int_equal(d->features, 6);
    assert_int_equal(d->classes, 5);   /* 1 + largest label 4 */
    assert_non_null(d->pixels);
    assert_null(d->values);
    assert_memory_equal(d->pixels, PIX, sizeof PIX);
    assert_int_equal(d->labels[0], 2);
    assert_int_equal(d->labels[1], 0);
    assert_int_equal(d->labels[2], 4);
}

static void test_idx_plain(void **state)
{
    (void)state;
    const char *img = tmp_path("plain-images"), *lab = tmp_path("plain-labels");
    write_idx_pair(img, lab, 0);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_idx(img, lab, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);
}

static void test_idx_gzip(void **state)
{
    (void)state;
    const char *img = tmp_path("gz-images.gz"), *lab = tmp_path("gz-labels.gz");
    write_idx_pair(img, lab, 1);
    /* really compressed: starts with the gzip magic */
    FILE *f = fopen(img, "rb");
    assert_non_null(f);
    assert_int_equal(fgetc(f), 0x1f);
    assert_int_equal(fgetc(f), 0x8b);
    fclose(f);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_idx(img, lab, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);
}

static void test_idx_truncated(void **state)
{
    (void)state;
    uint8_t buf[64];
    const char *img = tmp_path("trunc-images"), *lab = tmp_path("trunc-labels");
    size_t size = idx_images(buf, 0x00000803, 3, 2, 3, PIX, 10);   /* 10 of 18 pixel bytes */
    write_bytes(img, buf, size);
    write_bytes(lab, buf, idx_labels(buf, 3, LAB, 3));
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: truncated: expected 18 bytes of pixels, found 10", img);
    assert_true(is_zeroed(&d));

    /* the same through gzip */
    const char *gz = tmp_path("trunc-images.gz");
    size = idx_images(buf, 0x00000803, 3, 2, 3, PIX, 10);
    write_gz(gz, buf, size);
    assert_int_equal(nb_load_idx(gz, lab, &d, &err), -1);
    expect_message(&err, "%s: truncated: expected 18 bytes of pixels, found 10", gz);

    /* header cut short */
    write_bytes(img, buf, 9);
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: truncated: header ends after 9 of 16 bytes", img);

    /* labels short */
    size = idx_images(buf, 0x00000803, 3, 2, 3, PIX, sizeof PIX);
    write_bytes(img, buf, size);
    write_bytes(lab, buf, idx_labels(buf, 3, LAB, 2));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: truncated: expected 3 bytes of labels, found 2", lab);
}

static void test_idx_gzip_stream_cut(void **state)
{
    (void)state;
    /* A gzip file whose compressed stream stops in the middle (an interrupted download):
     * enough random pixels that the cut falls inside the deflate data. */
    enum { N = 50, PIXELS = N * 28 * 28 };
    uint8_t *raw = malloc(16 + PIXELS);
    assert_non_null(raw);
    uint8_t *pix = malloc(PIXELS);
    assert_non_null(pix);
    nb_rng r;
    nb_rng_seed(&r, 1);
    for (int i = 0; i < PIXELS; i++)
        pix[i] = (uint8_t)nb_rng_below(&r, 256);
    size_t size = idx_images(raw, 0x00000803, N, 28, 28, pix, PIXELS);
    const char *full = tmp_path("cut-full.gz");
    write_gz(full, raw, size);

    FILE *f = fopen(full, "rb");
    assert_non_null(f);
    uint8_t *compressed = malloc(size + 1024);
    assert_non_null(compressed);
    size_t csize = fread(compressed, 1, size + 1024, f);
    fclose(f);
    assert_true(csize > 1000);
    const char *cut = tmp_path("cut-images.gz");
    write_bytes(cut, compressed, csize / 2);

    uint8_t lab[N + 8];
    uint8_t zeros[N] = {0};
    const char *labels = tmp_path("cut-labels");
    write_bytes(labels, lab, idx_labels(lab, N, zeros, N));

    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_idx(cut, labels, &d, &err), -1);
    /* zlib decodes what it can: a truncation with a count well below the full size */
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: truncated: expected %d bytes of pixels, found ", cut,
             PIXELS);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    long found = atol(err.msg + strlen(prefix));
    assert_true(found < PIXELS);

    /* corrupt compressed bytes: zlib's data check must catch it */
    memcpy(compressed + csize / 2, "garbage!garbage!", 16);
    const char *bad = tmp_path("corrupt-images.gz");
    write_bytes(bad, compressed, csize);
    assert_int_equal(nb_load_idx(bad, labels, &d, &err), -1);
    assert_memory_equal(err.msg, bad, strlen(bad));
    assert_true(is_zeroed(&d));

    /* and the intact file loads */
    assert_int_equal(nb_load_idx(full, labels, &d, &err), 0);
    assert_int_equal(d.n, N);
    assert_int_equal(d.features, 784);
    assert_int_equal(d.classes, 1);
    assert_memory_equal(d.pixels, pix, PIXELS);
    nb_dataset_free(&d);
    free(compressed);
    free(raw);
    free(pix);
}

static void test_idx_bad_headers(void **state)
{
    (void)state;
    uint8_t buf[64];
    const char *img = tmp_path("bad-images"), *lab = tmp_path("bad-labels");
    write_bytes(lab, buf, idx_labels(buf, 3, LAB, 3));
    nb_dataset d;
    nb_error err = {""};

    /* label file passed as images */
    assert_int_equal(nb_load_idx(lab, lab, &d, &err), -1);
    expect_message(&err, "%s: not an IDX image file: magic 0x00000801, expected 0x00000803", lab);
    /* images passed as labels */
    write_bytes(img, buf, idx_images(buf, 0x00000803, 3, 2, 3, PIX, sizeof PIX));
    assert_int_equal(nb_load_idx(img, img, &d, &err), -1);
    expect_message(&err, "%s: not an IDX label file: magic 0x00000803, expected 0x00000801", img);
    /* float IDX (type 0x0d) is not images of bytes */
    write_bytes(img, buf, idx_images(buf, 0x00000D03, 3, 2, 3, PIX, sizeof PIX));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: not an IDX image file: magic 0x00000d03, expected 0x00000803", img);

    /* zero rows */
    write_bytes(img, buf, idx_images(buf, 0x00000803, 3, 0, 3, PIX, 0));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: dimension 1 is 0, expected 1..2147483647", img);

    /* a count beyond int */
    write_bytes(img, buf, idx_images(buf, 0x00000803, 0x80000000u, 2, 3, PIX, sizeof PIX));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: dimension 0 is 2147483648, expected 1..2147483647", img);

    /* images whose pixel count overflows int */
    write_bytes(img, buf, idx_images(buf, 0x00000803, 1, 65536, 65536, PIX, sizeof PIX));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: images of 65536 x 65536 pixels are too large", img);

    /* a header promising 2 GB in a file of 18 bytes: a truncation, not a 2 GB allocation */
    write_bytes(img, buf, idx_images(buf, 0x00000803, 0x7fffffffu, 1, 1, PIX, sizeof PIX));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: truncated: expected 2147483647 bytes of pixels, found 18", img);

    /* missing file */
    const char *missing = tmp_path("no-such-file");
    assert_int_equal(nb_load_idx(missing, lab, &d, &err), -1);
    expect_message(&err, "%s: No such file or directory", missing);
    assert_true(is_zeroed(&d));
}

static void test_idx_count_mismatch_and_trailing(void **state)
{
    (void)state;
    uint8_t buf[64];
    const char *img = tmp_path("mm-images"), *lab = tmp_path("mm-labels");
    write_bytes(img, buf, idx_images(buf, 0x00000803, 3, 2, 3, PIX, sizeof PIX));
    write_bytes(lab, buf, idx_labels(buf, 2, LAB, 2));
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s has 3 images but %s has 2 labels", img, lab);
    assert_true(is_zeroed(&d));

    /* one byte too many after the pixels */
    uint8_t extra[19];
    memcpy(extra, PIX, 18);
    extra[18] = 7;
    write_bytes(img, buf, idx_images(buf, 0x00000803, 3, 2, 3, extra, sizeof extra));
    write_bytes(lab, buf, idx_labels(buf, 3, LAB, 3));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: trailing bytes after the 18 bytes of pixels", img);

    /* the same in a gzip file */
    const char *gz = tmp_path("mm-images.gz");
    write_gz(gz, buf, idx_images(buf, 0x00000803, 3, 2, 3, extra, sizeof extra));
    assert_int_equal(nb_load_idx(gz, lab, &d, &err), -1);
    expect_message(&err, "%s: trailing bytes after the 18 bytes of pixels", gz);

    /* and in labels */
    uint8_t lab4[4] = {1, 2, 3, 4};
    write_bytes(img, buf, idx_images(buf, 0x00000803, 3, 2, 3, PIX, sizeof PIX));
    write_bytes(lab, buf, idx_labels(buf, 3, lab4, 4));
    assert_int_equal(nb_load_idx(img, lab, &d, &err), -1);
    expect_message(&err, "%s: trailing bytes after the 3 bytes of labels", lab);
}

static void test_idx_dir(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/mnist", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    char a[700], b[700];
    nb_dataset train, test;
    nb_error err = {""};

    /* nothing there yet */
    assert_int_equal(nb_load_idx_dir(dir, &train, &test, &err), -1);
    expect_message(&err, "%s: no train-images-idx3-ubyte[.gz]", dir);

    /* train gzipped, no test set */
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx_pair(a, b, 1);
    assert_int_equal(nb_load_idx_dir(dir, &train, &test, &err), 0);
    check_three_images(&train);
    assert_true(is_zeroed(&test));
    nb_dataset_free(&train);
    /* test may be NULL */
    assert_int_equal(nb_load_idx_dir(dir, &train, NULL, &err), 0);
    check_three_images(&train);
    nb_dataset_free(&train);

    /* only half of the test pair */
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", dir);
    uint8_t buf[64];
    static const uint8_t test_pix[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12};
    write_bytes(a, buf, idx_images(buf, 0x00000803, 2, 3, 2, test_pix, sizeof test_pix));
    assert_int_equal(nb_load_idx_dir(dir, &train, &test, &err), -1);
    expect_message(&err, "%s: t10k-images-idx3-ubyte[.gz] without t10k-labels-idx1-ubyte[.gz]",
                   dir);
    assert_true(is_zeroed(&train));

    /* the full pair, plain files, with labels only up to 1: classes come from train (5) */
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", dir);
    static const uint8_t test_lab[2] = {1, 0};
    write_bytes(b, buf, idx_labels(buf, 2, test_lab, 2));
    assert_int_equal(nb_load_idx_dir(dir, &train, &test, &err), 0);
    check_three_images(&train);
    assert_int_equal(test.n, 2);
    assert_int_equal(test.features, 6);
    assert_int_equal(test.classes, 5);
    assert_memory_equal(test.pixels, test_pix, sizeof test_pix);
    assert_int_equal(test.labels[0], 1);
    assert_int_equal(test.labels[1], 0);
    nb_dataset_free(&train);
    nb_dataset_free(&test);

    /* a broken test file fails the whole load and frees the training set */
    write_bytes(b, buf, idx_labels(buf, 3, LAB, 3));
    assert_int_equal(nb_load_idx_dir(dir, &train, &test, &err), -1);
    expect_message(&err, "%s has 2 images but %s has 3 labels", a, b);
    assert_true(is_zeroed(&train));
    assert_true(is_zeroed(&test));
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    struct stat st;
    if (stat(NB_FASHION_MNIST_DIR, &st) != 0) {
        skip();
        return;
    }
    nb_dataset train, test;
    nb_error err = {""};
    double t0 = nb_monotonic_seconds();
    if (nb_load_idx_dir(NB_FASHION_MNIST_DIR, &train, &test, &err) != 0)
        fail_msg("%s", err.msg);
    double elapsed = nb_monotonic_seconds() - t0;
    print_message("Fashion-MNIST loaded in %.2f s\n", elapsed);
    assert_int_equal(train.n, 60000);
    assert_int_equal(test.n, 10000);
    assert_int_equal(train.features, 784);
    assert_int_equal(test.features, 784);
    assert_int_equal(train.classes, 10);
    assert_int_equal(test.classes, 10);

    /* Reference values computed with Python's gzip module from the same files. */
    static const int train_first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const int test_first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(train.labels[i], train_first[i]);
        assert_int_equal(test.labels[i], test_first[i]);
    }
    int count[10] = {0};
    for (int i = 0; i < train.n; i++)
        count[train.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(count[c], 6000);
    uint64_t first = 0, train_sum = 0, test_sum = 0;
    for (int j = 0; j < 784; j++)
        first += train.pixels[j];
    for (size_t k = 0; k < (size_t)60000 * 784; k++)
        train_sum += train.pixels[k];
    for (size_t k = 0; k < (size_t)10000 * 784; k++)
        test_sum += test.pixels[k];
    assert_int_equal(first, 76247);
    assert_int_equal(train_sum, 3431114169ULL);
    assert_int_equal(test_sum, 573469082ULL);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
}

/* ---- CSV ------------------------------------------------------------------------------- */

static void test_csv_header_crlf_spaces(void **state)
{
    (void)state;
    const char *path = tmp_path("header.csv");
    write_text(path, "x1, x2 ,label\r\n"
                     " 1.5, -2 , 1\r\n"
                     "0.1,1e-3,0\r\n"
                     "\t3 ,  4.25e2,2\r\n"
                     "\r\n"
                     "\n");
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_csv(path, &d, &err), 0);
    assert_int_equal(d.header, 1);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.features, 2);
    assert_int_equal(d.classes, 3);
    assert_null(d.pixels);
    const float want[6] = {1.5f, -2.0f, 0.1f, 1e-3f, 3.0f, 425.0f};
    for (int i = 0; i < 6; i++)
        assert_true(d.values[i] == want[i]);
    assert_int_equal(d.labels[0], 1);
    assert_int_equal(d.labels[1], 0);
    assert_int_equal(d.labels[2], 2);
    nb_dataset_free(&d);
}

static void test_csv_no_header(void **state)
{
    (void)state;
    /* no final newline; labels written as floats; numbers that need strtod */
    const char *path = tmp_path("plain.csv");
    write_text(path, "\xEF\xBB\xBF"
                     "1,2,3,0\n"
                     "0.12345678901234567890,-0,+7,4.0\n"
                     "1e-30,1.6E+1,12345678901234567890,1");
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_csv(path, &d, &err), 0);
    assert_int_equal(d.header, 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.features, 3);
    assert_int_equal(d.classes, 3);   /* the distinct labels 0, 1, 4 */
    assert_true(d.values[0] == 1.0f && d.values[1] == 2.0f && d.values[2] == 3.0f);
    assert_true(d.values[3] == (float)0.12345678901234567890);
    assert_true(d.values[4] == 0.0f && signbit(d.values[4]));
    assert_true(d.values[5] == 7.0f);
    assert_true(d.values[6] == (float)1e-30);
    assert_true(d.values[7] == 16.0f);
    assert_true(d.values[8] == (float)12345678901234567890.0);
    assert_int_equal(d.labels[0], 0);
    assert_int_equal(d.labels[1], 2);
    assert_int_equal(d.labels[2], 1);
    assert_string_equal(d.table->class_names[2], "4");
    nb_dataset_free(&d);
}

static void test_csv_numbers_match_strtod(void **state)
{
    (void)state;
    /* Random decimals of every common shape must give exactly (float)strtod. */
    enum { ROWS = 2000, COLS = 5 };
    size_t cap = (size_t)ROWS * COLS * 32;
    char *text = malloc(cap);
    assert_non_null(text);
    double *expected = malloc(sizeof(double) * ROWS * COLS);
    assert_non_null(expected);
    nb_rng r;
    nb_rng_seed(&r, 99);
    size_t len = 0;
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < COLS; j++) {
            char field[40];
            int digits = 1 + (int)nb_rng_below(&r, 9);
            int exponent = (int)nb_rng_below(&r, 13) - 6;
            double v = (nb_rng_uniform(&r) - 0.5) * 20.0;
            if (j == 4)   /* 17 significant digits, as Python and %.17g print doubles */
                snprintf(field, sizeof field, "%.17g", v * pow(10, exponent));
            else if (j % 2)
                snprintf(field, sizeof field, "%.*e", digits, v * pow(10, exponent));
            else
                snprintf(field, sizeof field, "%.*f", digits, v);
            expected[i * COLS + j] = strtod(field, NULL);
            len += (size_t)snprintf(text + len, cap - len, "%s,", field);
        }
        len += (size_t)snprintf(text + len, cap - len, "%d\n", i % 7);
    }
    const char *path = tmp_path("many.csv");
    write_bytes(path, text, len);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_csv(path, &d, &err), 0);
    assert_int_equal(d.n, ROWS);
    assert_int_equal(d.features, COLS);
    assert_int_equal(d.classes, 7);
    for (int k = 0; k < ROWS * COLS; k++)
        if (d.values[k] != (float)expected[k])
            fail_msg("value %d: %.9g != %.9g", k, (double)d.values[k], expected[k]);
    for (int i = 0; i < ROWS; i++)
        assert_int_equal(d.labels[i], i % 7);
    nb_dataset_free(&d);
    free(text);
    free(expected);
}

static void test_csv_float_midpoints(void **state)
{
    (void)state;
    /* Decimals at (or a hair off) the midpoint between two adjacent floats: where a sloppy
     * conversion rounds the other way than (float)strtod. */
    enum { ROWS = 3000 };
    char *text = malloc((size_t)ROWS * 64);
    assert_non_null(text);
    float *expected = malloc(sizeof(float) * ROWS);
    assert_non_null(expected);
    nb_rng r;
    nb_rng_seed(&r, 5);
    size_t len = 0;
    for (int i = 0; i < ROWS; i++) {
        float f = (float)((nb_rng_uniform(&r) + 0.01) * pow(10, (int)nb_rng_below(&r, 12) - 6));
        double mid = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
        char field[40];
        snprintf(field, sizeof field, "%.*g", 16 + (int)nb_rng_below(&r, 3), mid);
        expected[i] = (float)strtod(field, NULL);
        len += (size_t)sprintf(text + len, "%s,0\n", field);
    }
    const char *path = tmp_path("midpoints.csv");
    write_bytes(path, text, len);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_csv(path, &d, &err), 0);
    assert_int_equal(d.n, ROWS);
    for (int i = 0; i < ROWS; i++)
        if (d.values[i] != expected[i])
            fail_msg("row %d: %.9g != %.9g", i, (double)d.values[i], (double)expected[i]);
    nb_dataset_free(&d);
    free(text);
    free(expected);
}

/* Writes size bytes to name, loads them and expects the message "<path><rest>". */
static void expect_csv_bytes_error(const char *name, const void *bytes, size_t size,
                                   const char *rest)
{
    const char *path = tmp_path(name);
    write_bytes(path, bytes, size);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_load_csv(path, &d, &err), -1);
    expect_message(&err, "%s%s", path, rest);
    assert_true(is_zeroed(&d));
}

static void expect_csv_error(const char *name, const char *text, const char *rest)
{
    expect_csv_bytes_error(name, text, strlen(text), rest);
}

static void test_csv_errors(void **state)
{
    (void)state;
    expect_csv_error("e1.csv", "a,b,c,d,label\n1,2,3,4,0\n1,2,3,4\n",
                     ":3:8: expected 5 fields, found 4");
    expect_csv_error("e2.csv", "1,2,0\r\n3,4,1,5\r\n", ":2:7: expected 3 fields, found 4 (as line 1 has: if that line is a title, not a header or a row, remove it, e.g. tail -n +2)");
    expect_csv_error("e3.csv", "x,y,label\n1,2,0\n3,4,cat\n", ":3:5: the target 'cat' is not a number, but other targets are numbers (classes are all numbers or all words)");
    expect_csv_error("e4.csv", "1,2,0\n1,2,1.5\n", ":2:5: the target '1.5' is not an integer: that looks like a regression target, not classes; use --task regression (or --allow-many-classes to take each value as a class)");
    expect_csv_error("e5.csv", "1,2,0\n1,\"2,0\n", ":2:3: a quoted field without its closing quote");
    expect_csv_error("e6.csv", "h1,h2,h3\n1,2,0\n1,2,0\n1,abc,0\n", ":4:3: field 2 'abc' is not a number, but other fields of column 'h2' are (a column is numbers, or words: categories)");
    expect_csv_error("e7.csv", "1,2,0\n1,2,0\n1,2,0\n1,2,0\nnan,2,0\n", ":5:1: field 1 is missing ('nan'; drop such rows or fill them with --missing drop|mean)");
    expect_csv_error("e8.csv", "1,2,0\n1,-inf,0\n", ":2:3: field 2 is infinite");
    expect_csv_error("e9.csv", "1,2,0\n1,1e39,0\n", ":2:3: field 2 '1e39' is out of range for float");
    expect_csv_error("e10.csv", "1,2,0\n1,,0\n", ":2:3: field 2 is empty (a missing value: drop such rows or fill them with --missing drop|mean)");
    expect_csv_error("e11.csv", "1,2,0\n\n1,2,0\n", ":2:1: empty line");
    expect_csv_error("e12.csv", "1,2,0\n1,\"2\" 5,0\n", ":2:7: '5' after the closing quote of a quoted field (a quote inside quotes is written twice: \"\")");
    expect_csv_error("e13.csv", "5\n6\n", ":1:1: expected at least 2 fields (features, then a label), found 1");
    expect_csv_error("e14.csv", "1,2,0\n1, 2 3,0\n", ":2:4: field 2 '2 3' is not a number, but other fields of its column are (a column is numbers, or words: categories)");
    /* strtod reads C's hexadecimal numbers; a CSV number is decimal (line, column, field). */
    expect_csv_error("e15.csv", "1,2,0\n0x10,2,0\n", ":2:1: field 1 '0x10' is a hexadecimal number; CSV numbers are decimal");
    expect_csv_error("e16.csv", "1,2,0\n1, -0X1p3 ,0\n", ":2:4: field 2 '-0X1p3' is a hexadecimal number; CSV numbers are decimal");
    expect_csv_error("e17.csv", "0x1,2,0\n1,2,0\n", ":1:1: field 1 '0x1' is a hexadecimal number; CSV numbers are decimal");
    expect_csv_error("e18.csv", "1,2,0\n1,+0x1.8p1,0\n", ":2:3: field 2 '+0x1.8p1' is a hexadecimal number; CSV numbers are decimal");
    expect_csv_error("e19.csv", "1,2,0\n1,2,0x1\n", ":2:5: the target '0x1' is not a number, but other targets are numbers (classes are all numbers or all words)");
    expect_csv_error("e20.csv", "1,2,0\n1,Infinity,0\n", ":2:3: field 2 is infinite");
    expect_csv_error("e21.csv", "1,2,0\n1,-NAN,0\n", ":2:3: field 2 is NaN");
    expect_csv_error("empty.csv", "", ": empty file");
    expect_csv_error("blank.csv", "\n \r\n\n", ": empty file");
    expect_csv_error("header.csv", "x,y,label\r\n", ": no data rows after the header");

    nb_dataset d;
    nb_error err = {""};
    const char *missing = tmp_path("missing.csv");
    assert_int_equal(nb_load_csv(missing, &d, &err), -1);
    expect_message(&err, "%s: No such file or directory", missing);
}

/* A wide header followed by many blank lines: the rows reserved up front are bounded by what
 * the bytes of the file could hold, not by its newlines times its width (here 100001 rows of
 * 99999 floats, 40 GB, which an allocator refuses and AddressSanitizer aborts on). */
static void test_csv_wide_header_then_blank_lines(void **state)
{
    (void)state;
    enum { COLS = 100000, BLANK = 100000 };
    /* header, one data row of zeros (label 1), then the blank lines */
    size_t size = 2 * COLS + 2 * COLS + BLANK;
    char *text = malloc(size + 1);
    assert_non_null(text);
    size_t k = 0;
    for (int c = 0; c < COLS; c++) {
        text[k++] = 'h';
        text[k++] = c + 1 < COLS ? ',' : '\n';
    }
    size_t header_end = k;
    for (int c = 0; c < COLS; c++) {
        text[k++] = c + 1 < COLS ? '0' : '1';
        text[k++] = c + 1 < COLS ? ',' : '\n';
    }
    memset(text + k, '\n', BLANK);
    k += BLANK;
    assert_int_equal(k, size);

    const char *path = tmp_path("wide.csv");
    nb_dataset d;
    nb_error err = {""};
    write_bytes(path, text, size);
    if (nb_load_csv(path, &d, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.features, COLS - 1);
    assert_int_equal(d.classes, 1);   /* one row: one class */
    assert_true(d.values[0] == 0.0f && d.values[COLS - 2] == 0.0f);
    nb_dataset_free(&d);

    /* Without the data row: the header alone, and nothing to load. */
    memmove(text + header_end, text + header_end + 2 * COLS, BLANK);
    write_bytes(path, text, header_end + BLANK);
    assert_int_equal(nb_load_csv(path, &d, &err), -1);
    expect_message(&err, "%s: no data rows after the header", path);
    assert_true(is_zeroed(&d));
    free(text);
}

/* The IDX loader reads regular files only: opening a FIFO without a writer blocks forever, a
 * device like /dev/zero never ends, and a directory is no data file. The CSV reader reads
 * FIFOs and pipes too (test_csv_reader.c), but no device or directory. */
static void test_loaders_refuse_non_regular_files(void **state)
{
    (void)state;
    const char *fifo = tmp_path("fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *images = tmp_path("ok-images"), *labels = tmp_path("ok-labels");
    write_idx_pair(images, labels, 0);
    nb_dataset d;
    nb_error err = {""};
    alarm(20);   /* a loader that blocks fails the test instead of hanging it */
    assert_int_equal(nb_load_idx(fifo, labels, &d, &err), -1);
    expect_message(&err, "%s: not a regular file (a FIFO, device or socket)", fifo);
    assert_int_equal(nb_load_idx(images, fifo, &d, &err), -1);
    expect_message(&err, "%s: not a regular file (a FIFO, device or socket)", fifo);
    assert_true(is_zeroed(&d));
    assert_int_equal(nb_load_csv("/dev/zero", &d, &err), -1);
    expect_message(&err, "/dev/zero: a character device, not a file or a pipe");
    alarm(0);
    assert_int_equal(nb_load_csv(tmpdir, &d, &err), -1);
    expect_message(&err, "%s: is a directory, not a file", tmpdir);
    assert_int_equal(nb_load_idx(tmpdir, labels, &d, &err), -1);
    expect_message(&err, "%s: is a directory, not a file", tmpdir);
    unlink(fifo);
}

/* Parses text, expecting n samples and whether line 1 was a header. */
static void expect_csv_header(const char *text, int header, int n)
{
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_csv(text, strlen(text), "h.csv", &d, &err), 0);
    assert_int_equal(d.header, header);
    assert_int_equal(d.n, n);
    nb_dataset_free(&d);
}

/* Line 1 is a header only when none of its fields is a number; a line of numbers and words is
 * data with a bad field, and the message says why it was not taken for a header. */
static void test_csv_header_rule(void **state)
{
    (void)state;
    expect_csv_header("x,y,label\n1,2,0\n", 1, 1);
    expect_csv_header("\"x\",\"y\",\"label\"\r\n1,2,0\r\n3,4,1\r\n", 1, 2);
    expect_csv_header("\xEF\xBB\xBFx 1, x 2 ,class\n1,2,0\n", 1, 1);
    expect_csv_header(",x,label\n0,1,0\n", 1, 1);      /* pandas' unnamed index column */
    expect_csv_header("1,2,0\n3,4,1\n", 0, 2);
    expect_csv_header("\xEF\xBB\xBF" "1,2,0\r\n", 0, 1);
    expect_csv_error("h1.csv", "0.1,0.2x,1\n0.3,0.4,0\n",
                     ":1:5: field 2 '0.2x' is not a number, but other fields of its column are (a column is numbers, or words: categories) (line 1 was not taken for a header: "
                     "field 1 '0.1' is a number, and a header has none)");
    expect_csv_error("h2.csv", "0,1,label\n0.3,0.4,0\n",
                     ":1:5: the target 'label' is not a number, but other targets are numbers (classes are all numbers or all words) (line 1 was not taken for a header: "
                     "field 1 '0' is a number, and a header has none)");
    expect_csv_error("h3.csv", "x,1e3,label\n0.3,0.4,0\n",
                     ":1:1: field 1 'x' is not a number, but other fields of its column are (a column is numbers, or words: categories) (line 1 was not taken for a header: "
                     "field 2 '1e3' is a number, and a header has none)");
    /* A bad number further down is that line's error, with nothing about headers. */
    expect_csv_error("h4.csv", "x,y,label\n0.1,0.2,1\n0.3,0.4x,0\n",
                     ":3:5: field 2 '0.4x' is not a number, but other fields of column 'y' are (a column is numbers, or words: categories)");
    expect_csv_error("h5.csv", "0.1,0.2,1\n0.3,0.4x,0\n", ":2:5: field 2 '0.4x' is not a number, but other fields of its column are (a column is numbers, or words: categories)");
}

/* Bytes that are not CSV text are named for what they are. */
static void test_csv_not_text(void **state)
{
    (void)state;
    static const char iconv_hint[] = "nabla reads CSV as UTF-8 (or ASCII): convert it with iconv";
    char want[256];
    /* "1,0\n" in UTF-16 and UTF-32, with and without byte order marks */
    snprintf(want, sizeof want, ": UTF-16 text (it starts with a UTF-16 byte order mark); %s -f "
             "UTF-16 -t UTF-8", iconv_hint);
    expect_csv_bytes_error("le-bom.csv", "\xFF\xFE" "1\0,\0" "0\0\n\0", 10, want);
    expect_csv_bytes_error("be-bom.csv", "\xFE\xFF" "\0" "1\0,\0" "0\0\n", 10, want);
    snprintf(want, sizeof want, ": UTF-16 text (little-endian, without a byte order mark); %s "
             "-f UTF-16LE -t UTF-8", iconv_hint);
    expect_csv_bytes_error("le.csv", "1\0,\0" "0\0\n\0", 8, want);
    snprintf(want, sizeof want, ": UTF-16 text (big-endian, without a byte order mark); %s -f "
             "UTF-16BE -t UTF-8", iconv_hint);
    expect_csv_bytes_error("be.csv", "\0" "1\0,\0" "0\0\n", 8, want);
    snprintf(want, sizeof want, ": UTF-32 text (it starts with a UTF-32 byte order mark); %s -f "
             "UTF-32 -t UTF-8", iconv_hint);
    expect_csv_bytes_error("utf32.csv", "\xFF\xFE\0\0" "1\0\0\0", 8, want);
    /* UTF-32 without a byte order mark, either order ("1,0\n" and "1,2,0\n") */
    snprintf(want, sizeof want, ": UTF-32 text (little-endian, without a byte order mark); %s "
             "-f UTF-32LE -t UTF-8", iconv_hint);
    expect_csv_bytes_error("u32le.csv", "1\0\0\0,\0\0\0" "0\0\0\0\n\0\0\0", 16, want);
    expect_csv_bytes_error("u32le2.csv", "1\0\0\0,\0\0\0" "2\0\0\0,\0\0\0" "0\0\0\0\n\0\0\0",
                           24, want);
    snprintf(want, sizeof want, ": UTF-32 text (big-endian, without a byte order mark); %s -f "
             "UTF-32BE -t UTF-8", iconv_hint);
    expect_csv_bytes_error("u32be.csv", "\0\0\0" "1\0\0\0,\0\0\0" "0\0\0\0\n", 16, want);
    /* NUL bytes: where the first one is */
    expect_csv_bytes_error("nul1.csv", "\0" "1,0\n", 5,
                           ":1:1: a NUL byte: this looks like a binary file, not CSV text");
    expect_csv_bytes_error("nul2.csv", "x,y\n1,2\n3\0,0\n", 14,
                           ":3:2: a NUL byte: this looks like a binary file, not CSV text");
    expect_csv_bytes_error("nul3.csv", "1,2\n3,4\0", 9,
                           ":2:4: a NUL byte: this looks like a binary file, not CSV text");
    /* other formats given where a CSV file was expected */
    expect_csv_bytes_error("gz.csv", "\x1f\x8b\x08\0\0\0\0\0", 8,
                           ": truncated: the gzip data ends before its end marker and checksum");
    expect_csv_bytes_error("idx.csv", "\0\0\x08\x01\0\0\0\x02\x01\x02", 10,
                           ": an IDX file (the MNIST format), not CSV text: give --data the "
                           "directory that holds the IDX files");
    expect_csv_bytes_error("st.csv", "\x02\0\0\0\0\0\0\0{}", 10,
                           ": a safetensors file (a model or checkpoint), not CSV text");
}

/* Fields and labels are quoted in messages; a control character in one must not break the
 * one-line message (nor reach the terminal as an escape sequence). */
static void test_csv_messages_stay_on_one_line(void **state)
{
    (void)state;
    expect_csv_error("ctl1.csv", "1,2,0\n1,\x1b[2J,0\n", ":2:3: field 2 '\\x1b[2J' is not a number, but other fields of its column are (a column is numbers, or words: categories)");
    expect_csv_error("ctl2.csv", "1,2,0\n1,2,3\b4\n", ":2:5: the target '3\\x084' is not a number, but other targets are numbers (classes are all numbers or all words)");
    /* A carriage return inside a line is not a line end. */
    expect_csv_error("ctl3.csv", "1,2,0\n1,2,3\r4\n", ":2:6: a carriage return (CR) that does not "
                                                     "end a line with a line feed: lines must end "
                                                     "with LF or CRLF");
}

/* Line ends of a CR alone (old Mac OS), and a byte order mark past the file's start, are named
 * with their line and column, not read as one long line or a field that is not a number. */
static void test_csv_line_ends_and_inner_bom(void **state)
{
    (void)state;
    static const char cr_only[] = ": a carriage return (CR) that does not end a line with a "
                                  "line feed: lines must end with LF or CRLF; this file's end "
                                  "with CR alone (old Mac OS): convert them with tr '\\r' '\\n'";
    char want[512];
    snprintf(want, sizeof want, ":1:6%s", cr_only);
    expect_csv_error("cr1.csv", "1,2,0\r3,4,1\r", want);
    snprintf(want, sizeof want, ":1:4%s", cr_only);
    expect_csv_error("cr2.csv", "x,y\r1,0\r", want);
    /* CR alone after CRLF lines: that line's CR, without the old Mac OS hint (the file has LF) */
    expect_csv_error("cr3.csv", "1,2,0\r\n3,4,1\r5,6,0\r\n",
                     ":2:6: a carriage return (CR) that does not end a line with a line feed: "
                     "lines must end with LF or CRLF");
    static const char bom[] = "a byte order mark (U+FEFF, bytes EF BB BF) in the middle of the "
                              "text (were two files joined?): only the file's very start may "
                              "have one";
    snprintf(want, sizeof want, ":3:1: %s", bom);
    expect_csv_error("bom1.csv", "1,2,0\n3,4,1\n\xEF\xBB\xBF" "5,6,0\n", want);
    snprintf(want, sizeof want, ":2:3: %s", bom);
    expect_csv_error("bom2.csv", "\xEF\xBB\xBF" "x,y,label\n1,\xEF\xBB\xBF" "2,0\n", want);
}

/* ---- synthetic sets -------------------------------------------------------------------- */

static void check_balanced(const nb_dataset *d, int classes)
{
    int count[3] = {0};
    for (int i = 0; i < d->n; i++) {
        assert_in_range(d->labels[i], 0, classes - 1);
        count[d->labels[i]]++;
    }
    for (int c = 0; c < classes; c++)
        assert_in_range(count[c], d->n / classes, d->n / classes + 1);
    /* shuffled: the labels change more often than a class-sorted order would */
    int changes = 0;
    for (int i = 1; i < d->n; i++)
        changes += d->labels[i] != d->labels[i - 1];
    assert_true(changes > d->n / 4);
}

static void test_synthetic_shapes_and_geometry(void **state)
{
    (void)state;
    nb_dataset d;
    nb_error err = {""};
    const double tol = 1e-5;

    assert_int_equal(nb_make_synthetic("moons", 101, 0.0f, 1, &d, &err), 0);
    assert_int_equal(d.n, 101);
    assert_int_equal(d.features, 2);
    assert_int_equal(d.classes, 2);
    assert_null(d.pixels);
    check_balanced(&d, 2);
    for (int i = 0; i < d.n; i++) {
        double x = d.values[2 * i], y = d.values[2 * i + 1];
        if (d.labels[i] == 0) {   /* upper unit half circle */
            assert_true(fabs(x * x + y * y - 1.0) < tol);
            assert_true(y >= -tol);
        } else {                  /* lower half circle centred at (1, 0.5) */
            assert_true(fabs((x - 1) * (x - 1) + (y - 0.5) * (y - 0.5) - 1.0) < tol);
            assert_true(y <= 0.5 + tol);
        }
    }
    nb_dataset_free(&d);

    assert_int_equal(nb_make_synthetic("circles", 200, 0.0f, 2, &d, &err), 0);
    assert_int_equal(d.classes, 2);
    check_balanced(&d, 2);
    for (int i = 0; i < d.n; i++) {
        double x = d.values[2 * i], y = d.values[2 * i + 1];
        double radius = d.labels[i] == 0 ? 1.0 : 0.5;
        assert_true(fabs(sqrt(x * x + y * y) - radius) < tol);
    }
    nb_dataset_free(&d);

    assert_int_equal(nb_make_synthetic("spirals", 300, 0.0f, 3, &d, &err), 0);
    assert_int_equal(d.classes, 3);
    check_balanced(&d, 3);
    for (int i = 0; i < d.n; i++) {
        double x = d.values[2 * i], y = d.values[2 * i + 1];
        double r = sqrt(x * x + y * y);
        assert_true(r <= 1.0 + tol);
        if (r < 1e-2)
            continue;
        /* angle t = 4k + 4r, with x = r sin t, y = r cos t */
        double t = 4.0 * d.labels[i] + 4.0 * r;
        double diff = remainder(atan2(x, y) - t, 2 * M_PI);
        assert_true(fabs(diff) < 1e-4);
    }
    nb_dataset_free(&d);
}

static void test_synthetic_seeds_and_noise(void **state)
{
    (void)state;
    static const char *const kinds[] = {"moons", "circles", "spirals"};
    nb_error err = {""};
    for (int k = 0; k < 3; k++) {
        nb_dataset a, b, c;
        assert_int_equal(nb_make_synthetic(kinds[k], 500, 0.1f, 42, &a, &err), 0);
        assert_int_equal(nb_make_synthetic(kinds[k], 500, 0.1f, 42, &b, &err), 0);
        assert_int_equal(nb_make_synthetic(kinds[k], 500, 0.1f, 43, &c, &err), 0);
        assert_memory_equal(a.values, b.values, sizeof(float) * 1000);
        assert_memory_equal(a.labels, b.labels, sizeof(int32_t) * 500);
        assert_memory_not_equal(a.values, c.values, sizeof(float) * 1000);
        assert_memory_not_equal(a.labels, c.labels, sizeof(int32_t) * 500);
        /* a sensible range: the curves lie within [-1, 2] x [-1, 1.5]; 0.1 noise adds little */
        for (int i = 0; i < 1000; i++)
            assert_true(isfinite(a.values[i]) && a.values[i] > -2.0f && a.values[i] < 3.0f);
        nb_dataset_free(&a);
        nb_dataset_free(&b);
        nb_dataset_free(&c);
    }

    /* noise on circles: the radius spread grows like the noise std */
    nb_dataset d;
    assert_int_equal(nb_make_synthetic("circles", 4000, 0.05f, 5, &d, &err), 0);
    double sq = 0;
    for (int i = 0; i < d.n; i++) {
        double x = d.values[2 * i], y = d.values[2 * i + 1];
        double radius = d.labels[i] == 0 ? 1.0 : 0.5;
        sq += pow(sqrt(x * x + y * y) - radius, 2);
    }
    double spread = sqrt(sq / d.n);   /* the radial part of 2-D noise: about the std */
    assert_true(spread > 0.04 && spread < 0.06);
    nb_dataset_free(&d);
}

static void test_synthetic_errors(void **state)
{
    (void)state;
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_make_synthetic("moons", 0, 0.1f, 1, &d, &err), -1);
    expect_message(&err, "moons: the number of samples must be positive, not 0");
    assert_int_equal(nb_make_synthetic("blobs", 10, 0.1f, 1, &d, &err), -1);
    expect_message(&err, "unknown synthetic data set 'blobs' (moons, circles, spirals)");
    assert_int_equal(nb_make_synthetic("spirals", 10, -1.0f, 1, &d, &err), -1);
    expect_message(&err, "spirals: noise must be a finite number >= 0, not -1");
    assert_int_equal(nb_make_synthetic("circles", 10, NAN, 1, &d, &err), -1);
    assert_true(is_zeroed(&d));
    /* 2^31 - 1 samples need (2^31 - 1) * 28 bytes (57344 MB, rounded up: two arrays of 2
     * floats and three of int32 per sample while they are shuffled): refused up front with the
     * size rather than left to the allocator, on any machine with less memory than that. */
    if (nb_memory_available() < UINT64_C(2147483647) * 28) {
        assert_int_equal(nb_make_synthetic("moons", 2147483647, 0.1f, 1, &d, &err), -1);
        assert_non_null(
            strstr(err.msg, "out of memory: 2147483647 samples of moons needs 57344 MB"));
        assert_true(is_zeroed(&d));
    }

    /* a single sample is fine */
    assert_int_equal(nb_make_synthetic("spirals", 1, 0.0f, 1, &d, &err), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.classes, 3);
    nb_dataset_free(&d);

    assert_true(nb_is_synthetic("moons"));
    assert_true(nb_is_synthetic("circles"));
    assert_true(nb_is_synthetic("spirals"));
    assert_false(nb_is_synthetic("moon"));
    assert_false(nb_is_synthetic("fashion-mnist"));
    assert_false(nb_is_synthetic(NULL));
}

/* ---- splits ---------------------------------------------------------------------------- */

/* n samples of 2 floats: sample i is (i, -i), label i % 3. */
static void make_counting_set(nb_dataset *d, int n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->features = 2;
    d->classes = 3;
    d->pixels = NULL;
    d->values = malloc(sizeof(float) * 2 * (size_t)n);
    d->labels = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(d->values);
    assert_non_null(d->labels);
    for (int i = 0; i < n; i++) {
        d->values[2 * i] = (float)i;
        d->values[2 * i + 1] = (float)-i;
        d->labels[i] = i % 3;
    }
}

/* train and dev together hold each sample of the counting set exactly once, intact and in
 * increasing order within each part. */
static void check_partition(const nb_dataset *train, const nb_dataset *dev, int n)
{
    assert_int_equal(train->n + dev->n, n);
    char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    const nb_dataset *parts[2] = {train, dev};
    for (int p = 0; p < 2; p++) {
        int previous = -1;
        for (int i = 0; i < parts[p]->n; i++) {
            int id = (int)parts[p]->values[2 * i];
            assert_in_range(id, 0, n - 1);
            assert_true(parts[p]->values[2 * i + 1] == (float)-id);
            assert_int_equal(parts[p]->labels[i], id % 3);
            assert_false(seen[id]);
            seen[id] = 1;
            assert_true(id > previous);
            previous = id;
        }
    }
    free(seen);
}

static void test_split(void **state)
{
    (void)state;
    nb_dataset train, dev;
    nb_error err = {""};

    make_counting_set(&train, 100);
    assert_int_equal(nb_dataset_split(&train, 0.2f, 7, &dev, &err), 0);
    assert_int_equal(train.n, 80);
    assert_int_equal(dev.n, 20);
    assert_int_equal(dev.features, 2);
    assert_int_equal(dev.classes, 3);
    check_partition(&train, &dev, 100);
    float first_dev[20];
    for (int i = 0; i < 20; i++)
        first_dev[i] = dev.values[2 * i];
    nb_dataset_free(&train);
    nb_dataset_free(&dev);

    /* same seed, same split; another seed, another split */
    make_counting_set(&train, 100);
    assert_int_equal(nb_dataset_split(&train, 0.2f, 7, &dev, &err), 0);
    for (int i = 0; i < 20; i++)
        assert_true(dev.values[2 * i] == first_dev[i]);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
    make_counting_set(&train, 100);
    assert_int_equal(nb_dataset_split(&train, 0.2f, 8, &dev, &err), 0);
    int same = 1;
    for (int i = 0; i < 20; i++)
        same &= dev.values[2 * i] == first_dev[i];
    assert_false(same);
    check_partition(&train, &dev, 100);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);

    /* rounding: 0.25 * 10 = 2.5 rounds to 3; tiny fractions still take one, large leave one */
    make_counting_set(&train, 10);
    assert_int_equal(nb_dataset_split(&train, 0.25f, 1, &dev, &err), 0);
    assert_int_equal(dev.n, 3);
    check_partition(&train, &dev, 10);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
    make_counting_set(&train, 10);
    assert_int_equal(nb_dataset_split(&train, 0.001f, 1, &dev, &err), 0);
    assert_int_equal(dev.n, 1);
    assert_int_equal(train.n, 9);
    check_partition(&train, &dev, 10);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
    make_counting_set(&train, 10);
    assert_int_equal(nb_dataset_split(&train, 0.99f, 1, &dev, &err), 0);
    assert_int_equal(dev.n, 9);
    assert_int_equal(train.n, 1);
    check_partition(&train, &dev, 10);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);

    /* fraction 0: nothing moves */
    make_counting_set(&train, 10);
    assert_int_equal(nb_dataset_split(&train, 0.0f, 1, &dev, &err), 0);
    assert_int_equal(dev.n, 0);
    assert_null(dev.values);
    assert_int_equal(train.n, 10);
    check_partition(&train, &dev, 10);

    /* bad fractions, and a set too small to split */
    assert_int_equal(nb_dataset_split(&train, 1.0f, 1, &dev, &err), -1);
    expect_message(&err, "split: the dev fraction must be in [0, 1), not 1");
    assert_int_equal(nb_dataset_split(&train, -0.1f, 1, &dev, &err), -1);
    assert_int_equal(nb_dataset_split(&train, NAN, 1, &dev, &err), -1);
    assert_true(is_zeroed(&dev));
    assert_int_equal(train.n, 10);
    nb_dataset_free(&train);
    make_counting_set(&train, 1);
    assert_int_equal(nb_dataset_split(&train, 0.5f, 1, &dev, &err), -1);
    expect_message(&err, "split: cannot hold out a dev set from 1 sample");
    assert_true(is_zeroed(&dev));
    assert_int_equal(train.n, 1);
    nb_dataset_free(&train);
}

static void test_split_pixels(void **state)
{
    (void)state;
    /* 50 images of 3 bytes: image i is (i, i+1, i+2), label i % 10 */
    nb_dataset train = {0}, dev;
    nb_error err = {""};
    train.n = 50;
    train.features = 3;
    train.classes = 10;
    train.pixels = malloc(150);
    train.labels = malloc(50 * sizeof(int32_t));
    assert_non_null(train.pixels);
    assert_non_null(train.labels);
    for (int i = 0; i < 50; i++) {
        for (int j = 0; j < 3; j++)
            train.pixels[3 * i + j] = (uint8_t)(i + j);
        train.labels[i] = i % 10;
    }
    assert_int_equal(nb_dataset_split(&train, 0.1f, 3, &dev, &err), 0);
    assert_int_equal(train.n, 45);
    assert_int_equal(dev.n, 5);
    assert_non_null(dev.pixels);
    assert_null(dev.values);
    int seen[50] = {0};
    const nb_dataset *parts[2] = {&train, &dev};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < parts[p]->n; i++) {
            int id = parts[p]->pixels[3 * i];
            assert_int_equal(parts[p]->pixels[3 * i + 1], id + 1);
            assert_int_equal(parts[p]->pixels[3 * i + 2], id + 2);
            assert_int_equal(parts[p]->labels[i], id % 10);
            seen[id]++;
        }
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
}

/* ---- statistics, normalization, batches -------------------------------------------------- */

static void test_stats_and_normalize(void **state)
{
    (void)state;
    /* features: (1, 3, 5) -> mean 3, population std sqrt(8/3); (2, 2, 2) -> mean 2, std 0 -> 1;
     * (-1, 0, 4) -> mean 1, std sqrt(14/3) */
    float values[9] = {1, 2, -1, 3, 2, 0, 5, 2, 4};
    int32_t labels[3] = {0, 1, 0};
    nb_dataset d = {.n = 3, .features = 3, .classes = 2, .values = values, .labels = labels};
    float mean[3], std[3];
    nb_dataset_stats(&d, mean, std);
    assert_float_equal(mean[0], 3.0f, 1e-6);
    assert_float_equal(mean[1], 2.0f, 1e-6);
    assert_float_equal(mean[2], 1.0f, 1e-6);
    assert_float_equal(std[0], 1.6329932f, 1e-6);
    assert_true(std[1] == 1.0f);
    assert_float_equal(std[2], 2.1602469f, 1e-6);

    nb_dataset_normalize(&d, mean, std);
    const float want[9] = {-1.2247449f, 0, -0.9258201f, 0, 0, -0.46291006f,
                           1.2247449f, 0, 1.3887302f};
    for (int i = 0; i < 9; i++)
        assert_float_equal(values[i], want[i], 1e-6);
    /* after standardizing: mean 0, std 1 (the constant feature stays 0 with std 1) */
    nb_dataset_stats(&d, mean, std);
    for (int j = 0; j < 3; j++) {
        assert_float_equal(mean[j], 0.0f, 1e-6);
        assert_float_equal(std[j], 1.0f, 1e-6);
    }

    /* many features (more than one accumulation block), large offset: no cancellation */
    enum { N = 1000, F = 70 };
    float *big = malloc(sizeof(float) * N * F);
    int32_t *lab = calloc(N, sizeof(int32_t));
    assert_non_null(big);
    assert_non_null(lab);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < F; j++)
            big[i * F + j] = 10000.0f + (float)j + (i % 2 ? 0.5f : -0.5f);
    nb_dataset b = {.n = N, .features = F, .classes = 1, .values = big, .labels = lab};
    float m2[F], s2[F];
    nb_dataset_stats(&b, m2, s2);
    for (int j = 0; j < F; j++) {
        assert_float_equal(m2[j], 10000.0f + j, 1e-3);
        assert_float_equal(s2[j], 0.5f, 1e-6);
    }
    free(big);
    free(lab);

    /* pixel sets: statistics of the bytes as the network sees them (b / 255) */
    uint8_t pix[4] = {0, 51, 255, 51};
    int32_t plab[2] = {0, 1};
    nb_dataset p = {.n = 2, .features = 2, .classes = 2, .pixels = pix, .labels = plab};
    float pm[2], ps[2];
    nb_dataset_stats(&p, pm, ps);
    assert_float_equal(pm[0], 0.5f, 1e-7);
    assert_float_equal(ps[0], 0.5f, 1e-7);
    assert_float_equal(pm[1], 0.2f, 1e-7);
    assert_true(ps[1] == 1.0f);
    nb_dataset_normalize(&p, pm, ps);   /* no effect on bytes */
    assert_int_equal(pix[1], 51);
}

static void test_check_finite(void **state)
{
    (void)state;
    float values[6] = {1, 2, 3, 4, 5, 6};
    int32_t labels[3] = {0, 0, 0};
    nb_dataset d = {.n = 3, .features = 2, .classes = 1, .values = values, .labels = labels};
    nb_error err = {""};
    assert_int_equal(nb_dataset_check_finite(&d, "train", &err), 0);
    values[3] = NAN;
    assert_int_equal(nb_dataset_check_finite(&d, "train", &err), -1);
    expect_message(&err, "train: sample 1, feature 1 is NaN (counted from 0)");
    values[3] = 4;
    values[4] = -INFINITY;
    assert_int_equal(nb_dataset_check_finite(&d, "dev", &err), -1);
    expect_message(&err, "dev: sample 2, feature 0 is infinite (counted from 0)");
}

static void test_batch(void **state)
{
    (void)state;
    uint8_t pix[8] = {0, 1, 128, 255, 17, 34, 3, 68};
    int32_t labels[4] = {3, 1, 4, 1};
    nb_dataset d = {.n = 4, .features = 2, .classes = 5, .pixels = pix, .labels = labels};
    int32_t index[3] = {1, 3, 0};
    float x[6];
    int32_t y[3];
    nb_dataset_batch(&d, index, 3, x, y);
    /* exact: the division PyTorch's ToTensor performs */
    const float want[6] = {128.0f / 255.0f, 1.0f, 3.0f / 255.0f, 68.0f / 255.0f, 0.0f,
                           1.0f / 255.0f};
    for (int i = 0; i < 6; i++)
        assert_true(x[i] == want[i]);
    assert_true(x[0] == 0x1.010102p-1f);   /* 128/255 rounded to float, worked out by hand */
    /* byte 3 is one where multiplying by 1/255.0f would land one ulp off the division */
    volatile float three = 3.0f;
    assert_true(x[2] != three * (1.0f / 255.0f));
    assert_int_equal(y[0], 1);
    assert_int_equal(y[1], 1);
    assert_int_equal(y[2], 3);

    float values[6] = {0.5f, -1, 2, 3, 4, 5};
    nb_dataset f = {.n = 3, .features = 2, .classes = 5, .values = values, .labels = labels};
    int32_t index2[2] = {2, 0};
    nb_dataset_batch(&f, index2, 2, x, y);
    assert_true(x[0] == 4 && x[1] == 5 && x[2] == 0.5f && x[3] == -1);
    assert_int_equal(y[0], 4);
    assert_int_equal(y[1], 3);
}

static void test_dataset_free(void **state)
{
    (void)state;
    nb_dataset d = {0};
    nb_dataset_free(&d);
    assert_true(is_zeroed(&d));
    nb_dataset_free(NULL);
    make_counting_set(&d, 5);
    nb_dataset_free(&d);
    assert_true(is_zeroed(&d));
    nb_dataset_free(&d);   /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_plain),
        cmocka_unit_test(test_idx_gzip),
        cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_gzip_stream_cut),
        cmocka_unit_test(test_idx_bad_headers),
        cmocka_unit_test(test_idx_count_mismatch_and_trailing),
        cmocka_unit_test(test_idx_dir),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_csv_header_crlf_spaces),
        cmocka_unit_test(test_csv_no_header),
        cmocka_unit_test(test_csv_numbers_match_strtod),
        cmocka_unit_test(test_csv_float_midpoints),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_wide_header_then_blank_lines),
        cmocka_unit_test(test_loaders_refuse_non_regular_files),
        cmocka_unit_test(test_csv_messages_stay_on_one_line),
        cmocka_unit_test(test_csv_line_ends_and_inner_bom),
        cmocka_unit_test(test_csv_header_rule),
        cmocka_unit_test(test_csv_not_text),
        cmocka_unit_test(test_synthetic_shapes_and_geometry),
        cmocka_unit_test(test_synthetic_seeds_and_noise),
        cmocka_unit_test(test_synthetic_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_pixels),
        cmocka_unit_test(test_stats_and_normalize),
        cmocka_unit_test(test_check_finite),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_dataset_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
