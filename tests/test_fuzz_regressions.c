/* The in-memory readers behind the fuzz targets (nb_parse_idx, nb_parse_csv), and the bugs that
 * fuzzing found, each pinned with its exact message. The crashing inputs themselves are replayed
 * from fuzz/regressions/ by the fuzz_replay_* tests (fuzz/README.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nabla.h"

/* Three 2x3 images and their labels, as in test_data.c. */
static const uint8_t PIX[18] = {0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 60, 255, 254, 253, 128, 127, 0};
static const uint8_t LAB[3] = {2, 0, 4};

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* The IDX files of the three images: 16 + 18 and 8 + 3 bytes. */
static size_t images_file(uint8_t *buf)
{
    size_t k = put_be32(buf, 0x00000803);
    k += put_be32(buf + k, 3);
    k += put_be32(buf + k, 2);
    k += put_be32(buf + k, 3);
    memcpy(buf + k, PIX, sizeof PIX);
    return k + sizeof PIX;
}

static size_t labels_file(uint8_t *buf)
{
    size_t k = put_be32(buf, 0x00000801);
    k += put_be32(buf + k, 3);
    memcpy(buf + k, LAB, sizeof LAB);
    return k + sizeof LAB;
}

/* n bytes as one gzip member appended at out; returns its size. */
static size_t gzip_member(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t used = cap - z.avail_out;
    deflateEnd(&z);
    return used;
}

/* A copy in an allocation of exactly n bytes, so that a read past the end is caught by ASan. */
static void *exact_copy(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    assert_non_null(q);
    memcpy(q, p, n);
    return q;
}

static void check_three_images(const nb_dataset *d)
{
    assert_int_equal(d->n, 3);
    assert_int_equal(d->features, 6);
    assert_int_equal(d->classes, 5);
    assert_null(d->values);
    assert_memory_equal(d->pixels, PIX, sizeof PIX);
    assert_int_equal(d->labels[0], 2);
    assert_int_equal(d->labels[1], 0);
    assert_int_equal(d->labels[2], 4);
}

static int is_zeroed(const nb_dataset *d)
{
    return d->n == 0 && d->features == 0 && d->classes == 0 && !d->pixels && !d->values &&
           !d->labels;
}

/* Parses images (n bytes) with the plain labels file. */
static int parse_images(const uint8_t *images, size_t n, nb_dataset *d, nb_error *err)
{
    uint8_t lab[16];
    size_t lab_n = labels_file(lab);
    uint8_t *img = exact_copy(images, n), *l = exact_copy(lab, lab_n);
    int rc = nb_parse_idx(img, n, "mem-images", l, lab_n, "mem-labels", d, err);
    free(img);
    free(l);
    return rc;
}

static void test_parse_idx_plain_and_gzip(void **state)
{
    (void)state;
    uint8_t raw[64], gz[256];
    size_t n = images_file(raw);
    nb_dataset d;
    nb_error err = {""};

    assert_int_equal(parse_images(raw, n, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);

    size_t gz_n = gzip_member(raw, n, gz, sizeof gz);
    assert_int_equal(parse_images(gz, gz_n, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);

    /* two members, split inside the header, read as one stream (gzip -c a b) */
    size_t first = gzip_member(raw, 7, gz, sizeof gz);
    size_t second = gzip_member(raw + 7, n - 7, gz + first, sizeof gz - first);
    assert_int_equal(parse_images(gz, first + second, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);
}

static void test_parse_idx_default_names(void **state)
{
    (void)state;
    uint8_t img[64], lab[16];
    size_t img_n = images_file(img), lab_n = labels_file(lab);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_idx(img, img_n, NULL, lab, lab_n - 1, NULL, &d, &err), -1);
    assert_string_equal(err.msg, "labels: truncated: expected 3 bytes of labels, found 2");
    assert_int_equal(nb_parse_idx(lab, lab_n, NULL, lab, lab_n, NULL, &d, &err), -1);
    assert_string_equal(err.msg, "images: not an IDX image file: magic 0x00000801, expected "
                                 "0x00000803");
    assert_int_equal(nb_parse_idx(img, 0, NULL, lab, lab_n, NULL, &d, &err), -1);
    assert_string_equal(err.msg, "images: truncated: 0 bytes, too short for an IDX header");
    assert_true(is_zeroed(&d));
}

/* zlib's gzread, which the file reader used before it parsed from memory, ignores bytes after
 * the gzip data, and a member whose end marker and checksum are missing: both let damaged
 * files through. Now both are refused. */
static void test_parse_idx_gzip_damage(void **state)
{
    (void)state;
    uint8_t raw[64], gz[256];
    size_t n = images_file(raw);
    size_t gz_n = gzip_member(raw, n, gz, sizeof gz);
    nb_dataset d;
    nb_error err = {""};

    memcpy(gz + gz_n, "junk", 4);
    assert_int_equal(parse_images(gz, gz_n + 4, &d, &err), -1);
    assert_string_equal(err.msg, "mem-images: 4 bytes that are not gzip data follow the gzip "
                                 "data");
    assert_true(is_zeroed(&d));

    /* the 8-byte trailer (CRC-32, length) missing: every pixel arrived, unchecked */
    assert_int_equal(parse_images(gz, gz_n - 8, &d, &err), -1);
    assert_string_equal(err.msg, "mem-images: truncated: the gzip data ends before its end "
                                 "marker and checksum");

    /* a wrong CRC-32 */
    gz[gz_n - 8] ^= 1;
    assert_int_equal(parse_images(gz, gz_n, &d, &err), -1);
    assert_string_equal(err.msg, "mem-images: corrupt gzip data: incorrect data check");
    gz[gz_n - 8] ^= 1;

    /* the gzip magic alone */
    assert_int_equal(parse_images(gz, 2, &d, &err), -1);
    assert_string_equal(err.msg, "mem-images: truncated: 0 bytes, too short for an IDX header");
    assert_true(is_zeroed(&d));

    /* and the intact member still loads */
    assert_int_equal(parse_images(gz, gz_n, &d, &err), 0);
    check_three_images(&d);
    nb_dataset_free(&d);
}

/* A small gzip bomb: the header promises 6 pixels, 4 MiB of zeros follow. Refused as trailing
 * bytes after inflating 1 byte more than promised, not after 4 MiB. */
static void test_parse_idx_gzip_bomb(void **state)
{
    (void)state;
    size_t n = 16 + ((size_t)4 << 20);
    uint8_t *raw = calloc(1, n);
    assert_non_null(raw);
    put_be32(raw, 0x00000803);
    put_be32(raw + 4, 3);
    put_be32(raw + 8, 1);
    put_be32(raw + 12, 2);
    size_t cap = compressBound((uLong)n) + 64;
    uint8_t *gz = malloc(cap);
    assert_non_null(gz);
    size_t gz_n = gzip_member(raw, n, gz, cap);
    assert_true(gz_n < 8192);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(parse_images(gz, gz_n, &d, &err), -1);
    assert_string_equal(err.msg, "mem-images: trailing bytes after the 6 bytes of pixels");
    free(gz);
    free(raw);
}

static void test_parse_csv_stops_at_size(void **state)
{
    (void)state;
    /* The buffer is not terminated: the parser reads exactly `size` bytes of it. */
    static const char text[] = "x,y,label\n1.5,-2,0\n3,4e1,12\n";
    char *p = exact_copy(text, sizeof text - 1);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_csv(p, sizeof text - 1, "mem.csv", &d, &err), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.features, 2);
    assert_int_equal(d.classes, 2);   /* the distinct labels 0 and 12 */
    assert_true(d.values[0] == 1.5f && d.values[1] == -2.0f && d.values[2] == 3.0f &&
                d.values[3] == 40.0f);
    assert_int_equal(d.labels[1], 1);
    assert_string_equal(d.table->class_names[1], "12");
    nb_dataset_free(&d);

    /* cut inside the last label: "12" becomes "1" */
    assert_int_equal(nb_parse_csv(p, sizeof text - 3, "mem.csv", &d, &err), 0);
    assert_int_equal(d.labels[1], 1);
    assert_string_equal(d.table->class_names[1], "1");
    nb_dataset_free(&d);
    /* cut after "3,4e": a field short, and "4e" is no number either */
    assert_int_equal(nb_parse_csv(p, 23, "mem.csv", &d, &err), -1);
    assert_string_equal(err.msg, "mem.csv:3:5: expected 3 fields, found 2");
    free(p);

    assert_int_equal(nb_parse_csv("", 0, NULL, &d, &err), -1);
    assert_string_equal(err.msg, "csv: empty file");
    assert_true(is_zeroed(&d));
}

/* Found by the fuzz_csv oracle: a 19-digit mantissa just above FLT_MAX. strtod puts it beyond
 * FLT_MAX, so the careful path refuses it as out of range, but the fast path's double (two
 * roundings, each up to half an ulp) landed at or below FLT_MAX and the value was accepted as
 * FLT_MAX: one number, two outcomes depending on how it was spelled. */
static void test_csv_long_mantissa_just_above_flt_max(void **state)
{
    (void)state;
    static const char *const above[] = {"3402823466385288788e20", "-3402823466385288791e20",
                                        "340282346638528878.8e21"};
    for (int i = 0; i < 3; i++) {
        assert_true(strtod(above[i], NULL) > FLT_MAX || strtod(above[i], NULL) < -FLT_MAX);
        char text[128];
        int n = snprintf(text, sizeof text, "%s,1\n", above[i]);
        nb_dataset d;
        nb_error err = {""};
        assert_int_equal(nb_parse_csv(text, (size_t)n, "big.csv", &d, &err), -1);
        char want[256];
        snprintf(want, sizeof want, "big.csv:1:1: field 1 '%s' is out of range for float",
                 above[i]);
        assert_string_equal(err.msg, want);
    }
    /* Just below, strtod stays within FLT_MAX: accepted, as FLT_MAX. */
    static const char below[] = "3402823466385288598e20,1\n";
    assert_true(strtod(below, NULL) <= FLT_MAX);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_csv(below, sizeof below - 1, "big.csv", &d, &err), 0);
    assert_true(d.values[0] == FLT_MAX);
    nb_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_idx_plain_and_gzip),
        cmocka_unit_test(test_parse_idx_default_names),
        cmocka_unit_test(test_parse_idx_gzip_damage),
        cmocka_unit_test(test_parse_idx_gzip_bomb),
        cmocka_unit_test(test_parse_csv_stops_at_size),
        cmocka_unit_test(test_csv_long_mantissa_just_above_flt_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
