/* safetensors reading and writing, and the atomic file helpers underneath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/fileio.h"
#include "nabla.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_test_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes tmpdir and what is in it (one level of subdirectories is enough here). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            remove_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static int drop_tmpdir(void **state)
{
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Number of entries in a directory whose name contains ".tmp.": leftovers of a failed write. */
static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void write_plain(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void assert_file_is(const char *path, const char *text)
{
    unsigned char *data;
    size_t n;
    nb_error err;
    assert_int_equal(nb_read_file(path, &data, &n, &err), 0);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(data, text, n);
    free(data);
}

/* A file: u64 LE header length, the header text, then data. */
static unsigned char *make_file(const char *header, const void *data, size_t ndata, size_t *size)
{
    size_t h = strlen(header);
    *size = 8 + h + ndata;
    unsigned char *b = malloc(*size);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (ndata)
        memcpy(b + 8 + h, data, ndata);
    return b;
}

/* Parsing must fail with a message that names the input and contains `expect`, and leave the
 * output empty. */
static void expect_parse_error(const void *bytes, size_t size, const char *expect)
{
    nb_st_file f;
    nb_error err = {{0}};
    int rc = nb_st_parse(bytes, size, "bad.safetensors", &f, &err);
    if (rc == 0 || !strstr(err.msg, expect) || strncmp(err.msg, "bad.safetensors: ", 17) != 0)
        fail_msg("expected an error containing \"%s\", got rc %d: \"%s\"", expect, rc, err.msg);
    assert_int_equal(f.n_tensors, 0);
    assert_null(f.tensors);
    assert_null(f.buffer);
    assert_null(strchr(err.msg, '\n'));
}

static void expect_header_error(const char *header, size_t ndata, const char *expect)
{
    unsigned char data[64] = {0};
    assert_true(ndata <= sizeof data);
    size_t size;
    unsigned char *b = make_file(header, data, ndata, &size);
    expect_parse_error(b, size, expect);
    free(b);
}

static void expect_header_ok(const char *header, size_t ndata, int n_tensors)
{
    unsigned char data[64] = {0};
    size_t size;
    unsigned char *b = make_file(header, data, ndata, &size);
    nb_st_file f;
    nb_error err = {{0}};
    if (nb_st_parse(b, size, "good.safetensors", &f, &err) != 0)
        fail_msg("unexpected error: %s", err.msg);
    assert_int_equal(f.n_tensors, n_tensors);
    nb_st_free(&f);
    free(b);
}

/* ---------------------------------------------------------------------------------------- */
/* Writing and reading back                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    float w[6] = {1.5f, -2.25f, 0.0f, 3.0e-8f, -1.0e30f, 0.1f};
    int64_t count = 1099511627776LL + 7; /* 2^40 + 7: needs all eight bytes */
    int64_t counts[3] = {-1, 0, INT64_MAX};
    float cube[6] = {1, 2, 3, 4, 5, 6};
    nb_st_tensor t[5] = {
        {.name = "0.weight", .dtype = NB_F32, .ndim = 2, .shape = {2, 3}, .data = w,
         .nbytes = sizeof w},
        {.name = "1.num_batches_tracked", .dtype = NB_I64, .ndim = 0, .data = &count,
         .nbytes = 8},
        {.name = "conv", .dtype = NB_F32, .ndim = 4, .shape = {1, 2, 1, 3}, .data = cube,
         .nbytes = sizeof cube},
        {.name = "empty", .dtype = NB_F32, .ndim = 2, .shape = {0, 5}, .data = NULL,
         .nbytes = 0},
        {.name = "counts", .dtype = NB_I64, .ndim = 1, .shape = {3}, .data = counts,
         .nbytes = sizeof counts},
    };
    nb_st_meta meta[3] = {{"format", "nabla"}, {"note", "gr\xc3\xbc\xc3\x9f \"quoted\"\n"},
                          {"empty", ""}};
    char path[128];
    tmp_path(path, sizeof path, "round.safetensors");
    nb_error err = {{0}};
    if (nb_st_write(path, t, 5, meta, 3, &err) != 0)
        fail_msg("%s", err.msg);

    nb_st_file f;
    if (nb_st_read(path, &f, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(f.n_tensors, 5);
    for (int i = 0; i < 5; i++) {
        const nb_st_tensor *r = nb_st_find(&f, t[i].name);
        assert_non_null(r);
        assert_ptr_equal(r, &f.tensors[i]); /* the given order is kept */
        assert_int_equal(r->dtype, t[i].dtype);
        assert_int_equal(r->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++)
            assert_int_equal(r->shape[d], t[i].shape[d]);
        assert_int_equal(r->nbytes, t[i].nbytes);
        if (t[i].nbytes)
            assert_memory_equal(r->data, t[i].data, t[i].nbytes);
    }
    /* The data section starts at a multiple of 8 and the tensors follow each other. */
    size_t start = (size_t)((const unsigned char *)f.tensors[0].data - f.buffer);
    assert_int_equal(start % 8, 0);
    assert_ptr_equal(f.tensors[1].data, (const unsigned char *)f.tensors[0].data + 24);
    assert_int_equal(f.size, start + sizeof w + 8 + sizeof cube + sizeof counts);
    int64_t back;
    memcpy(&back, f.tensors[1].data, 8);
    assert_true(back == count);

    assert_int_equal(f.n_meta, 3);
    assert_string_equal(nb_st_meta_get(&f, "format"), "nabla");
    assert_string_equal(nb_st_meta_get(&f, "note"), "gr\xc3\xbc\xc3\x9f \"quoted\"\n");
    assert_string_equal(nb_st_meta_get(&f, "empty"), "");
    assert_null(nb_st_meta_get(&f, "missing"));
    assert_null(nb_st_find(&f, "missing"));
    nb_st_free(&f);
    assert_int_equal(f.n_tensors, 0);
    nb_st_free(&f); /* harmless twice */
    assert_int_equal(count_temp_files(tmpdir), 0);
}

/* The exact bytes of a small file, worked out by hand: header length 136 = 132 bytes of JSON
 * plus 4 spaces, then 1.0f, -2.0f and the int64 3, all little-endian. */
static void test_exact_bytes(void **state)
{
    (void)state;
    static const char header[] =
        "{\"__metadata__\":{\"k\":\"v\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}    ";
    assert_int_equal(strlen(header), 136);
    unsigned char expect[8 + 136 + 16] = {0x88, 0, 0, 0, 0, 0, 0, 0};
    memcpy(expect + 8, header, 136);
    static const unsigned char data[16] = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,
                                           0x03, 0, 0, 0, 0, 0, 0, 0};
    memcpy(expect + 144, data, 16);

    float a[2] = {1.0f, -2.0f};
    int64_t n = 3;
    nb_st_tensor t[2] = {
        {.name = "a", .dtype = NB_F32, .ndim = 1, .shape = {2}, .data = a, .nbytes = 8},
        {.name = "n", .dtype = NB_I64, .ndim = 0, .data = &n, .nbytes = 8},
    };
    nb_st_meta meta[1] = {{"k", "v"}};
    char path[128];
    tmp_path(path, sizeof path, "exact.safetensors");
    nb_error err;
    assert_int_equal(nb_st_write(path, t, 2, meta, 1, &err), 0);
    unsigned char *got;
    size_t size;
    assert_int_equal(nb_read_file(path, &got, &size, &err), 0);
    assert_int_equal(size, sizeof expect);
    assert_memory_equal(got, expect, sizeof expect);
    free(got);

    /* Without metadata the key is left out, and a header of exactly 8k bytes gets no padding:
     * {"xyzw":{"dtype":"F32","shape":[],"data_offsets":[0,4]}} is 56 bytes. */
    static const char header2[] =
        "{\"xyzw\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    assert_int_equal(strlen(header2), 56);
    float x = 0.5f;
    nb_st_tensor t2 = {.name = "xyzw", .dtype = NB_F32, .ndim = 0, .data = &x, .nbytes = 4};
    assert_int_equal(nb_st_write(path, &t2, 1, NULL, 0, &err), 0);
    assert_int_equal(nb_read_file(path, &got, &size, &err), 0);
    assert_int_equal(size, 8 + 56 + 4);
    assert_int_equal(got[0], 56);
    assert_memory_equal(got + 8, header2, 56);
    static const unsigned char half[4] = {0x00, 0x00, 0x00, 0x3F};
    assert_memory_equal(got + 64, half, 4);
    free(got);
}

/* A file written by another tool: keys in another order, pretty-printed, offsets not in
 * header order, trailing spaces, unknown extra keys in an entry. */
static void test_reads_foreign_layout(void **state)
{
    (void)state;
    const char *header = "{\n  \"b\": {\"data_offsets\": [0, 8], \"shape\": [1, 1],"
                         " \"dtype\": \"I64\", \"extra\": null},\n"
                         "  \"a\": {\"shape\": [2], \"dtype\": \"F32\", \"data_offsets\": [8, 16]},"
                         "\n  \"__metadata__\": {\"format\": \"pt\"}\n}   ";
    unsigned char data[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                              0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0xBF};
    size_t size;
    unsigned char *b = make_file(header, data, sizeof data, &size);
    nb_st_file f;
    nb_error err;
    if (nb_st_parse(b, size, "foreign", &f, &err) != 0)
        fail_msg("%s", err.msg);
    free(b); /* nb_st_parse copied the bytes */
    assert_int_equal(f.n_tensors, 2);
    assert_string_equal(f.tensors[0].name, "b");
    assert_int_equal(f.tensors[0].dtype, NB_I64);
    int64_t v;
    memcpy(&v, f.tensors[0].data, 8);
    assert_true(v == -1);
    const nb_st_tensor *a = nb_st_find(&f, "a");
    float av[2];
    memcpy(av, a->data, 8);
    assert_true(av[0] == 3.0f && av[1] == -1.0f);
    assert_string_equal(nb_st_meta_get(&f, "format"), "pt");
    nb_st_free(&f);
}

static void test_writer_refuses_bad_input(void **state)
{
    (void)state;
    float w[2] = {1, 2};
    char path[128];
    tmp_path(path, sizeof path, "refused.safetensors");
    nb_error err;
    nb_st_tensor dup[2] = {
        {.name = "w", .dtype = NB_F32, .ndim = 1, .shape = {1}, .data = w, .nbytes = 4},
        {.name = "w", .dtype = NB_F32, .ndim = 1, .shape = {1}, .data = w + 1, .nbytes = 4},
    };
    assert_int_equal(nb_st_write(path, dup, 2, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate tensor name 'w'"));

    nb_st_tensor wrong = {.name = "w", .dtype = NB_F32, .ndim = 1, .shape = {3}, .data = w,
                          .nbytes = 8};
    assert_int_equal(nb_st_write(path, &wrong, 1, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "does not match its 8 bytes"));

    nb_st_tensor reserved = {.name = "__metadata__", .dtype = NB_F32, .ndim = 1,
                             .shape = {2}, .data = w, .nbytes = 8};
    assert_int_equal(nb_st_write(path, &reserved, 1, NULL, 0, &err), -1);

    nb_st_tensor ok = {.name = "w", .dtype = NB_F32, .ndim = 1, .shape = {2}, .data = w,
                       .nbytes = 8};
    nb_st_meta meta[2] = {{"k", "1"}, {"k", "2"}};
    assert_int_equal(nb_st_write(path, &ok, 1, meta, 2, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate metadata key 'k'"));
    nb_st_meta bad_utf8 = {"k", "\xff"};
    assert_int_equal(nb_st_write(path, &ok, 1, &bad_utf8, 1, &err), -1);

    struct stat st;
    assert_int_equal(stat(path, &st), -1); /* nothing was written */
}

/* ---------------------------------------------------------------------------------------- */
/* Every reader error                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void test_reader_framing_errors(void **state)
{
    (void)state;
    unsigned char b[16] = {0};
    expect_parse_error(b, 0, "too short");
    expect_parse_error(b, 7, "too short");
    expect_parse_error(b, 8, "header length is 0");
    expect_parse_error(b, 16, "header length is 0");

    /* Header length 9, only 8 bytes follow. */
    b[0] = 9;
    expect_parse_error(b, 16, "header length 9 is larger than the rest of the file");
    /* Length 100,000,001 (0x05F5E101): over the limit whatever the file size. */
    unsigned char big[8] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0};
    expect_parse_error(big, 8, "exceeds the limit");
    /* A length with the top bit set must not wrap around in any size arithmetic. */
    unsigned char huge[16] = {0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, '{', '}'};
    expect_parse_error(huge, 16, "exceeds the limit");
}

static void test_reader_json_errors(void **state)
{
    (void)state;
    expect_header_error("{\"a\":", 0, "not valid JSON");
    /* After the object only spaces may pad the header (the format's rule), and it begins with
     * the object's '{'. */
    expect_header_error("{} x", 0, "the header has 'x' after its JSON object, where only spaces "
                                   "may pad it (byte 3 of the header)");
    expect_header_error("{\"a\":{}} {}", 0, "has '{' after its JSON object");
    expect_header_error("{}\n", 0, "has byte 0x0a after its JSON object");
    expect_header_error("{}  \t", 0, "has byte 0x09 after its JSON object");
    expect_header_error(" {}", 0, "the header is not a JSON object beginning at its first byte");
    expect_header_error("\n{}", 0, "the header is not a JSON object beginning at its first");
    expect_header_error("[1,2]", 0, "header is not a JSON object");
    expect_header_error("\"text\"", 0, "header is not a JSON object");
    expect_header_error("{\"a\":\"\xc3\x28\"}", 0, "not valid UTF-8");
    expect_header_error("{\"a\":\"\xed\xa0\x80\"}", 0, "not valid UTF-8"); /* a surrogate */
    expect_header_error("{\"a\":\"\xc0\xaf\"}", 0, "not valid UTF-8");     /* overlong '/' */
    unsigned char zero[] = {3, 0, 0, 0, 0, 0, 0, 0, '{', 0, '}'};
    expect_parse_error(zero, sizeof zero, "zero byte");
}

static void test_reader_entry_errors(void **state)
{
    (void)state;
    expect_header_error("{\"a\":3}", 0, "tensor 'a': entry is not a JSON object");
    expect_header_error("{\"a\":[]}", 0, "tensor 'a': entry is not a JSON object");
    expect_header_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
                        "unsupported dtype 'F16'");
    expect_header_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                        "unsupported dtype 'F64'");
    expect_header_error("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "unsupported dtype 'f32'");
    expect_header_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype missing");
    expect_header_error("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "dtype missing or not a string");
}

static void test_reader_shape_errors(void **state)
{
    (void)state;
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                        "shape missing or not an array");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
                        "shape missing or not an array");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                        "non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                        "non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                        "non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
                        "non-negative integers");
    /* Whole numbers written otherwise than in digits: JSON would give 8, the format does not
     * (its reference reads them as integers and refuses these). */
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
                        "the header writes a number as '1.0' (byte 29 of the header)");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4,
                        "writes a number as '1e0'");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
                        "writes a number as '01'");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-0,4]}}", 4,
                        "writes a number as '-0'");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4,
                        "writes a number as '4.0'");
    /* Digits inside strings are no numbers; spaces between tokens are JSON's own. */
    expect_header_ok("{\"a1.0\":{\"dtype\":\"F32\", \"shape\": [ 1 ], \"data_offsets\":[0, 4]},"
                     "\"__metadata__\":{\"k\":\"-1.5e3 \\\"08\"}}", 4, 1);
    /* A name twice inside a tensor's entry: which dtype, which shape? */
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I64\",\"shape\":[1],"
                        "\"data_offsets\":[0,4]}}", 4, "tensor 'a': 'dtype' appears twice");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[2],"
                        "\"data_offsets\":[0,4]}}", 4, "tensor 'a': 'shape' appears twice");
    expect_header_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a' has 5 dimensions, at most 4");
    /* 2^53 * 2^53 * 4 overflows 64 bits: refused, not wrapped around to a small size. */
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992,"
                        "1024,0],\"data_offsets\":[0,4]}}",
                        4, "needs 0 bytes, data_offsets give 4");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992,"
                        "1024],\"data_offsets\":[0,4]}}",
                        4, "is too large");
    /* 2^62 elements of 4 bytes is 2^64: one past the largest 64-bit number. */
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,1073741824],"
                        "\"data_offsets\":[0,0]}}",
                        0, "is too large");
}

static void test_reader_offset_errors(void **state)
{
    (void)state;
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                        "data_offsets must be two non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                        "data_offsets must be two");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                        "data_offsets must be two");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4,
                        "data_offsets must be two");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                        "data_offsets must be two");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                        "end before they begin");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                        "reach beyond the data section (4 bytes)");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                        "F32 [3] needs 12 bytes, data_offsets give 8");
    expect_header_error("{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                        "I64 [] needs 8 bytes, data_offsets give 4");
}

static void test_reader_layout_errors(void **state)
{
    (void)state;
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                        12, "tensors 'a' and 'b' overlap");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                        4, "overlap");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                        12, "bytes 4..8 of the data section belong to no tensor");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                        "bytes 0..4 of the data section belong to no tensor");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
                        "bytes 4..8 of the data section belong to no tensor");
    expect_header_error("{}", 4, "bytes 0..4 of the data section belong to no tensor");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        8, "duplicate tensor name 'a'");
    /* Empty tensors take no bytes and may sit anywhere between the others. */
    expect_header_ok("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[4,12]}}",
                     12, 3);
    expect_header_ok("{}", 0, 0);
    expect_header_ok("{}       ", 0, 0);
}

static void test_reader_metadata_errors(void **state)
{
    (void)state;
    expect_header_error("{\"__metadata__\":{\"k\":1}}", 0, "metadata value of 'k' is not a string");
    expect_header_error("{\"__metadata__\":{\"k\":null}}", 0, "metadata value of 'k'");
    expect_header_error("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "metadata value of 'k'");
    expect_header_error("{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is not a JSON object");
    expect_header_error("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                        "duplicate metadata key 'k'");
    expect_header_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0,
                        "__metadata__ appears twice");
    expect_header_ok("{\"__metadata__\":{}}", 0, 0);
}

/* A header of a few megabytes can hold hundreds of thousands of metadata keys; looking for
 * duplicates pair by pair took minutes (a hang), in key order it takes milliseconds. */
static void test_reader_many_metadata_keys(void **state)
{
    (void)state;
    enum { KEYS = 300000 };
    size_t cap = 32 + (size_t)KEYS * 16, k = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    k += (size_t)snprintf(h + k, cap - k, "{\"__metadata__\":{");
    for (int i = 0; i < KEYS; i++)
        k += (size_t)snprintf(h + k, cap - k, "%s\"k%d\":\"v\"", i ? "," : "", i);
    size_t open_end = k;
    snprintf(h + k, cap - k, "}}");
    alarm(20);   /* a quadratic check fails the test instead of hanging it */
    size_t size;
    unsigned char *b = make_file(h, NULL, 0, &size);
    nb_st_file f;
    nb_error err;
    if (nb_st_parse(b, size, "many", &f, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(f.n_meta, KEYS);
    assert_string_equal(nb_st_meta_get(&f, "k299999"), "v");
    assert_string_equal(f.meta[7].key, "k7");   /* the file's order is kept */
    nb_st_free(&f);
    free(b);
    snprintf(h + open_end, cap - open_end, ",\"k123456\":\"again\"}}");
    expect_header_error(h, 0, "duplicate metadata key 'k123456'");
    alarm(0);
    free(h);
}

/* Names, dtypes and keys come from the file and are quoted in messages; a line break or an
 * escape sequence in them must not break the message into lines or reach the terminal. */
static void test_reader_messages_stay_on_one_line(void **state)
{
    (void)state;
    expect_header_error("{\"a\\nb\":3}", 0, "tensor 'a\\nb': entry is not a JSON object");
    expect_header_error("{\"a\":{\"dtype\":\"F\\u001b[2J16\",\"shape\":[1],"
                        "\"data_offsets\":[0,4]}}",
                        4, "unsupported dtype 'F\\x1b[2J16'");
    expect_header_error("{\"__metadata__\":{\"k\\r\\t\":1}}", 0,
                        "metadata value of 'k\\r\\t' is not a string");
}

/* Every proper prefix of a valid file is refused, whether read from memory or from disk. */
static void test_truncated_file_refused(void **state)
{
    (void)state;
    float w[3] = {1, 2, 3};
    int64_t n = 5;
    nb_st_tensor t[2] = {
        {.name = "w", .dtype = NB_F32, .ndim = 1, .shape = {3}, .data = w, .nbytes = 12},
        {.name = "n", .dtype = NB_I64, .ndim = 0, .data = &n, .nbytes = 8},
    };
    char path[128];
    tmp_path(path, sizeof path, "trunc.safetensors");
    nb_error err;
    assert_int_equal(nb_st_write(path, t, 2, NULL, 0, &err), 0);
    unsigned char *bytes;
    size_t size;
    assert_int_equal(nb_read_file(path, &bytes, &size, &err), 0);
    for (size_t k = 0; k < size; k++) {
        nb_st_file f;
        if (nb_st_parse(bytes, k, "cut", &f, &err) == 0)
            fail_msg("a prefix of %zu of %zu bytes was accepted", k, size);
    }
    /* One byte more is refused too (not covered by any tensor). */
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, bytes, size);
    longer[size] = 0;
    nb_st_file f;
    assert_int_equal(nb_st_parse(longer, size + 1, "long", &f, &err), -1);
    assert_non_null(strstr(err.msg, "belong to no tensor"));
    free(longer);

    assert_int_equal(truncate(path, (off_t)size - 1), 0);
    assert_int_equal(nb_st_read(path, &f, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "beyond the data section"));
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(nb_st_read(path, &f, &err), -1);
    assert_non_null(strstr(err.msg, "is the file truncated?"));
    free(bytes);
}

static void test_read_missing_file(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path, "does-not-exist.safetensors");
    nb_st_file f;
    nb_error err;
    assert_int_equal(nb_st_read(path, &f, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(nb_st_read(tmpdir, &f, &err), -1);
    assert_non_null(strstr(err.msg, "is a directory"));
}

/* Only regular files are read: a FIFO without a writer would block the open forever, and a
 * device like /dev/zero never reaches end of file. */
static void test_read_refuses_non_regular_files(void **state)
{
    (void)state;
    char fifo[128];
    tmp_path(fifo, sizeof fifo, "fifo.safetensors");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);   /* a read that blocks fails the test instead of hanging it */
    nb_st_file f;
    nb_error err;
    assert_int_equal(nb_st_read(fifo, &f, &err), -1);
    assert_non_null(strstr(err.msg, fifo));
    assert_non_null(strstr(err.msg, "not a regular file"));
    unsigned char *data;
    size_t n;
    assert_int_equal(nb_read_file("/dev/zero", &data, &n, &err), -1);
    assert_null(data);
    assert_string_equal(err.msg, "/dev/zero: not a regular file (a FIFO, device or socket)");
    alarm(0);
    unlink(fifo);
}

/* ---------------------------------------------------------------------------------------- */
/* Atomic writes                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void test_atomic_write_replaces(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path, "replace.txt");
    nb_error err;
    write_plain(path, "old content that is longer");
    assert_int_equal(nb_write_file_atomic(path, "new", 3, &err), 0);
    assert_file_is(path, "new");
    assert_int_equal(nb_write_file_atomic(path, "", 0, &err), 0);
    assert_file_is(path, "");
    assert_int_equal(count_temp_files(tmpdir), 0);

    /* A relative path (no slash) works too: its directory is the current one. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    int rc = nb_write_file_atomic("relative.txt", "rel", 3, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    tmp_path(path, sizeof path, "relative.txt");
    assert_file_is(path, "rel");
}

static void test_atomic_write_onto_directory(void **state)
{
    (void)state;
    char dir[128], inside[160];
    tmp_path(dir, sizeof dir, "adir");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(inside, sizeof inside, "%s/keep.txt", dir);
    write_plain(inside, "kept");
    nb_error err;
    assert_int_equal(nb_write_file_atomic(dir, "data", 4, &err), -1);
    assert_non_null(strstr(err.msg, dir));
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_file_is(inside, "kept");
    assert_int_equal(count_temp_files(tmpdir), 0);
}

static void test_atomic_write_missing_directory(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path, "no/such/dir/file.txt");
    nb_error err;
    assert_int_equal(nb_write_file_atomic(path, "x", 1, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "does not exist"));
    assert_int_equal(nb_write_file_atomic("", "x", 1, &err), -1);
}

/* Tries the write in a child process that has given up root (root ignores directory
 * permissions); the child's exit status says whether the write failed as it should. */
static int write_as_nobody(const char *path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        nb_error err = {{0}};
        int rc = nb_write_file_atomic(path, "new weights", 11, &err);
        _exit(rc == -1 && strstr(err.msg, path) && strstr(err.msg, "Permission denied") ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void test_atomic_write_unwritable_directory(void **state)
{
    (void)state;
    char dir[128], path[160];
    tmp_path(dir, sizeof dir, "ro");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    write_plain(path, "old weights");
    if (geteuid() == 0) {
        /* Owned by root, mode 0755: not writable for the unprivileged child. */
        assert_int_equal(chmod(tmpdir, 0755), 0);
        int status = write_as_nobody(path);
        assert_int_equal(chmod(tmpdir, 0700), 0);
        assert_int_equal(status, 0);
    } else {
        assert_int_equal(chmod(dir, 0500), 0);
        nb_error err;
        int rc = nb_write_file_atomic(path, "new weights", 11, &err);
        assert_int_equal(chmod(dir, 0700), 0);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, "Permission denied"));
    }
    assert_file_is(path, "old weights");
    assert_int_equal(count_temp_files(dir), 0);
}

/* A write that fails half-way (file size limit, like a full disk) removes its temporary file
 * and leaves the old file whole. Works as root too, unlike directory permissions. */
static void test_atomic_write_fails_midway(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path, "midway.bin");
    write_plain(path, "old weights");
    static unsigned char big[1 << 16];
    memset(big, 'x', sizeof big);

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit small = old;
    small.rlim_cur = 1000;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    nb_error err;
    int rc = nb_write_file_atomic(path, big, sizeof big, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "write failed"));
    assert_file_is(path, "old weights");
    assert_int_equal(count_temp_files(tmpdir), 0);
}

static void test_read_file(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path, "read.txt");
    write_plain(path, "hello");
    unsigned char *data;
    size_t n;
    nb_error err;
    assert_int_equal(nb_read_file(path, &data, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_string_equal((char *)data, "hello"); /* zero-terminated */
    free(data);
    write_plain(path, "");
    assert_int_equal(nb_read_file(path, &data, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(data[0], 0);
    free(data);
    /* Files in /proc report size 0 but have content: read until end of file, not to st_size. */
    assert_int_equal(nb_read_file("/proc/self/status", &data, &n, &err), 0);
    assert_true(n > 0);
    assert_non_null(strstr((char *)data, "Name:"));
    free(data);
    static char big[200000];
    memset(big, 'q', sizeof big - 1);
    write_plain(path, big);
    assert_int_equal(nb_read_file(path, &data, &n, &err), 0);
    assert_int_equal(n, sizeof big - 1);
    assert_memory_equal(data, big, n);
    free(data);
    assert_int_equal(nb_read_file(tmpdir, &data, &n, &err), -1);
    assert_null(data);
    assert_non_null(strstr(err.msg, "is a directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_reads_foreign_layout),
        cmocka_unit_test(test_writer_refuses_bad_input),
        cmocka_unit_test(test_reader_framing_errors),
        cmocka_unit_test(test_reader_json_errors),
        cmocka_unit_test(test_reader_entry_errors),
        cmocka_unit_test(test_reader_shape_errors),
        cmocka_unit_test(test_reader_offset_errors),
        cmocka_unit_test(test_reader_layout_errors),
        cmocka_unit_test(test_reader_metadata_errors),
        cmocka_unit_test(test_reader_messages_stay_on_one_line),
        cmocka_unit_test(test_reader_many_metadata_keys),
        cmocka_unit_test(test_truncated_file_refused),
        cmocka_unit_test(test_read_missing_file),
        cmocka_unit_test(test_read_refuses_non_regular_files),
        cmocka_unit_test(test_atomic_write_replaces),
        cmocka_unit_test(test_atomic_write_onto_directory),
        cmocka_unit_test(test_atomic_write_missing_directory),
        cmocka_unit_test(test_atomic_write_unwritable_directory),
        cmocka_unit_test(test_atomic_write_fails_midway),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, drop_tmpdir);
}
