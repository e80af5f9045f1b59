/* Fuzz target: the IDX reader (nb_parse_idx), images and labels, plain and gzip'd.
 *
 * Input layout, so that one byte string describes both files and how to wrap them:
 *   byte 0      flags: bit 0 gzip the images here, bit 1 gzip the labels here, bit 2 split each
 *               gzip'd file into two gzip members, bits 4-5 the deflate level (0, 1, 6, 9)
 *   bytes 1-4   length L of the images file, little-endian (cut to what is there)
 *   then        L bytes of images file, the rest is the labels file
 * The harness compresses the files itself so that mutations of the IDX contents also reach
 * the reader through zlib; gzip bytes inside the input (seeds of .gz files) exercise the
 * decoder on corrupt compressed data.
 *
 * An accepted pair is checked against the bytes: the pixels and labels must be exactly the bytes
 * after the headers, and gzip input that was accepted must be whole gzip members with nothing
 * after them (checked by inflating it in one go, separately from the reader). */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "nabla.h"

/* bytes as one or two gzip members into a new buffer; NULL when zlib fails. */
static uint8_t *gzip_bytes(const uint8_t *in, size_t n, int level, int two_members,
                           size_t *out_n)
{
    size_t cut = two_members ? n / 2 : n;
    /* deflateBound per member, plus room for the two gzip headers and trailers */
    size_t cap = compressBound((uLong)n) + 2 * 64 + 64;
    uint8_t *out = malloc(cap);
    if (!out)
        return NULL;
    size_t used = 0;
    for (int member = 0; member < (two_members ? 2 : 1); member++) {
        const uint8_t *src = member == 0 ? in : in + cut;
        size_t len = member == 0 ? cut : n - cut;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(out);
            return NULL;
        }
        z.next_in = (Bytef *)src;
        z.avail_in = (uInt)len;
        z.next_out = out + used;
        z.avail_out = (uInt)(cap - used);
        int rc = deflate(&z, Z_FINISH);
        used = cap - z.avail_out;
        deflateEnd(&z);
        if (rc != Z_STREAM_END) {
            free(out);
            return NULL;
        }
    }
    *out_n = used;
    return out;
}

static int is_gzip(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* The reference for gzip input: one or more whole gzip members and nothing after them, inflated
 * in one go. Returns the bytes (to free) or NULL when the data is not that. */
static uint8_t *gunzip_strict(const uint8_t *in, size_t n, size_t *out_n)
{
    size_t cap = 1 << 16, used = 0;
    uint8_t *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_CHECK(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    for (;;) {
        if (used == cap) {
            cap *= 2;
            out = realloc(out, cap);
            FUZZ_CHECK(out != NULL && cap <= ((size_t)1 << 28));
        }
        z.next_out = out + used;
        z.avail_out = (uInt)(cap - used);
        int rc = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            if (!is_gzip(z.next_in, z.avail_in))
                goto fail;
            inflateReset(&z);
        } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && z.avail_out == 0)) {
            goto fail;
        }
    }
    inflateEnd(&z);
    *out_n = used;
    return out;
fail:
    inflateEnd(&z);
    free(out);
    return NULL;
}

/* The file the reader saw, uncompressed: the bytes themselves, or what they inflate to. */
static void check_bytes(const uint8_t *file, size_t n, size_t header, const uint8_t *data,
                        size_t data_n)
{
    uint8_t *raw = NULL;
    if (is_gzip(file, n)) {
        raw = gunzip_strict(file, n, &n);
        FUZZ_CHECK(raw != NULL);   /* accepted, so it must be whole, undamaged gzip data */
        file = raw;
    }
    FUZZ_CHECK(n == header + data_n);
    FUZZ_CHECK(memcmp(file + header, data, data_n) == 0);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    static const int levels[4] = {0, 1, 6, 9};
    int flags = data[0];
    int level = levels[(flags >> 4) & 3];
    size_t img_n = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 |
                   (size_t)data[4] << 24;
    const uint8_t *rest = data + 5;
    size_t rest_n = size - 5;
    if (img_n > rest_n)
        img_n = rest_n;
    const uint8_t *img = rest, *lab = rest + img_n;
    size_t lab_n = rest_n - img_n;

    /* Each file in its own exact-size allocation, so a read past its end is caught. */
    uint8_t *img_buf = NULL, *lab_buf = NULL;
    size_t img_buf_n = img_n, lab_buf_n = lab_n;
    img_buf = (flags & 1) ? gzip_bytes(img, img_n, level, flags & 4, &img_buf_n)
                          : malloc(img_n ? img_n : 1);
    lab_buf = (flags & 2) ? gzip_bytes(lab, lab_n, level, flags & 4, &lab_buf_n)
                          : malloc(lab_n ? lab_n : 1);
    FUZZ_CHECK(img_buf != NULL && lab_buf != NULL);
    if (!(flags & 1) && img_n)
        memcpy(img_buf, img, img_n);
    if (!(flags & 2) && lab_n)
        memcpy(lab_buf, lab, lab_n);

    nb_dataset d;
    nb_error err = {""};
    int rc = nb_parse_idx(img_buf, img_buf_n, "images", lab_buf, lab_buf_n, "labels", &d, &err);
    if (rc != 0) {
        FUZZ_CHECK(fuzz_message_ok(err.msg, "images") || fuzz_message_ok(err.msg, "labels"));
        FUZZ_CHECK(d.pixels == NULL && d.labels == NULL && d.values == NULL && d.n == 0);
    } else {
        FUZZ_CHECK(d.n > 0 && d.features > 0 && d.pixels && d.labels && !d.values);
        FUZZ_CHECK(d.classes >= 1 && d.classes <= 256);
        size_t pixels = (size_t)d.n * (size_t)d.features;
        volatile unsigned sink = 0;
        for (size_t i = 0; i < pixels; i++)
            sink += d.pixels[i];
        fuzz_check_labels(&d);
        (void)sink;
        /* The files, uncompressed, are the header and then exactly the data. */
        check_bytes(img, img_n, 16, d.pixels, pixels);
        uint8_t *labels = malloc((size_t)d.n);
        FUZZ_CHECK(labels != NULL);
        for (int i = 0; i < d.n; i++)
            labels[i] = (uint8_t)d.labels[i];
        check_bytes(lab, lab_n, 8, labels, (size_t)d.n);
        free(labels);
        nb_dataset_free(&d);
    }
    free(img_buf);
    free(lab_buf);
    return 0;
}
