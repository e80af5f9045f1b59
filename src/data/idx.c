/* IDX files (the MNIST / Fashion-MNIST format), gzipped or plain.
 *
 * An IDX file is a 4-byte big-endian magic (two zero bytes, a type byte, the number of
 * dimensions), one big-endian uint32 per dimension, then the data. Images are type 0x08
 * (unsigned byte) with 3 dimensions [n, rows, cols]; labels are 0x08 with 1 dimension [n].
 *
 * The parser works on bytes in memory (nb_parse_idx); nb_load_idx reads the files and hands
 * them over. Bytes that start with the gzip magic 1f 8b are inflated as they are consumed (an
 * IDX file itself starts with two zero bytes, so the two cannot be confused); several gzip
 * members in a row are one stream, as gzip(1) has it, but anything else after the gzip data
 * is refused. Everything in the header is checked before it is trusted: the output buffer
 * grows as bytes actually arrive, so a header that claims billions of images in a short file
 * costs a truncation error, not a giant allocation, and a small gzip bomb stops one byte
 * after the size its header promised. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/byte_source.h"
#include "io/fileio.h"
#include "core/memcheck.h"
#include "nabla.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u

typedef struct idx_file {
    uint32_t dims[3];
    int ndims;
    uint8_t *data;
    size_t size;
} idx_file;

static uint32_t big_endian32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Parses one IDX file of unsigned bytes with the given magic and dimension count from the
 * source s. */
static int parse_idx_file(nb_byte_source *s, uint32_t magic, const char *kind, idx_file *out,
                          nb_error *err)
{
    const char *path = s->what;
    memset(out, 0, sizeof *out);
    int ndims = (int)(magic & 0xff);

    uint8_t header[4 + 4 * 3];
    size_t header_size = 4 + 4 * (size_t)ndims;
    int64_t got = nb_source_read(s, header, header_size, err);
    if (got < 0)
        goto fail;
    if (got < 4) {
        nb_fail(err, "%s: truncated: %lld bytes, too short for an IDX header", path,
                (long long)got);
        goto fail;
    }
    uint32_t found = big_endian32(header);
    if (found != magic) {
        nb_fail(err, "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x", path, kind,
                (unsigned)found, (unsigned)magic);
        goto fail;
    }
    if ((size_t)got < header_size) {
        nb_fail(err, "%s: truncated: header ends after %lld of %zu bytes", path,
                (long long)got, header_size);
        goto fail;
    }

    /* Every dimension positive, and the total within int (samples and features are int). */
    size_t total = 1;
    for (int i = 0; i < ndims; i++) {
        out->dims[i] = big_endian32(header + 4 + 4 * i);
        if (out->dims[i] == 0 || out->dims[i] > INT_MAX) {
            nb_fail(err, "%s: dimension %d is %u, expected 1..%d", path, i,
                    (unsigned)out->dims[i], INT_MAX);
            goto fail;
        }
        if (i > 0 && total * out->dims[i] / out->dims[i] != total) {
            nb_fail(err, "%s: dimensions too large", path);
            goto fail;
        }
        total *= out->dims[i];
    }
    if (ndims == 3 && (uint64_t)out->dims[1] * out->dims[2] > INT_MAX) {
        nb_fail(err, "%s: images of %u x %u pixels are too large", path,
                (unsigned)out->dims[1], (unsigned)out->dims[2]);
        goto fail;
    }
    out->ndims = ndims;

    /* Grow with the data actually present: start at 1 MiB, double up to the promised size. */
    size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20);
    out->data = malloc(cap);
    if (!out->data) {
        nb_fail(err, "%s: out of memory", path);
        goto fail;
    }
    size_t have = 0;
    for (;;) {
        got = nb_source_read(s, out->data + have, cap - have, err);
        if (got < 0)
            goto fail;
        have += (size_t)got;
        if (have < cap || cap == total)
            break;
        size_t next = cap > total / 2 ? total : cap * 2;
        /* The bytes keep coming (a big file, or a small gzip bomb of zeros): stop with a
         * message once they would not fit in memory, before the allocator fails harder. */
        if (nb_check_memory(next, path, err) != 0)
            goto fail;
        uint8_t *bigger = realloc(out->data, next);
        if (!bigger) {
            nb_fail(err, "%s: out of memory for %zu bytes", path, total);
            goto fail;
        }
        out->data = bigger;
        cap = next;
    }
    if (have < total) {
        nb_fail(err, "%s: truncated: expected %zu bytes of %s, found %zu", path, total,
                ndims == 3 ? "pixels" : "labels", have);
        goto fail;
    }
    uint8_t extra;
    got = nb_source_read(s, &extra, 1, err);
    if (got < 0)
        goto fail;
    if (got > 0) {
        nb_fail(err, "%s: trailing bytes after the %zu bytes of %s", path, total,
                ndims == 3 ? "pixels" : "labels");
        goto fail;
    }
    if (s->cut) {
        /* All the data arrived, but not the gzip trailer whose checksum vouches for it. */
        nb_fail(err, "%s: truncated: the gzip data ends before its end marker and checksum",
                path);
        goto fail;
    }
    out->size = total;
    return 0;

fail:
    free(out->data);
    memset(out, 0, sizeof *out);
    return -1;
}

static int parse_idx_bytes(const void *bytes, size_t size, const char *what, uint32_t magic,
                           const char *kind, idx_file *out, nb_error *err)
{
    nb_byte_source s;
    if (nb_source_open(&s, bytes, size, what, err) < 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = parse_idx_file(&s, magic, kind, out, err);
    nb_source_close(&s);
    return rc;
}

/* A plain IDX file says in its header how long it is: one longer than that (padded, a sparse
 * file of terabytes) is refused from its header and its size, before it is read. Anything
 * else (gzip, a bad magic, a short file) is left to the parser, which names it. */
static int check_idx_size(const char *path, uint32_t magic, nb_error *err)
{
    uint64_t size;
    int fd = nb_open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    uint8_t header[4 + 4 * 3];
    ssize_t got = pread(fd, header, sizeof header, 0);
    close(fd);
    int ndims = (int)(magic & 0xff);
    size_t header_size = 4 + 4 * (size_t)ndims;
    if (got < (ssize_t)header_size || big_endian32(header) != magic)
        return 0;
    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        uint32_t d = big_endian32(header + 4 + 4 * i);
        if (d == 0 || total > UINT64_MAX / d)
            return 0;
        total *= d;
    }
    if (size - header_size > total)
        return nb_fail(err, "%s: trailing bytes after the %llu bytes of %s", path,
                       (unsigned long long)total, ndims == 3 ? "pixels" : "labels");
    return 0;
}

/* Reads a whole IDX file and parses it. */
static int read_idx(const char *path, uint32_t magic, const char *kind, idx_file *out,
                    nb_error *err)
{
    unsigned char *bytes;
    size_t size;
    memset(out, 0, sizeof *out);
    if (check_idx_size(path, magic, err) != 0)
        return -1;
    /* Regular files only: a FIFO without a writer would block forever. */
    if (nb_read_file(path, &bytes, &size, err) < 0)
        return -1;
    int rc = parse_idx_bytes(bytes, size, path, magic, kind, out, err);
    free(bytes);
    return rc;
}

/* img's images into out, which takes its pixels. */
static void take_images(idx_file *img, nb_dataset *out)
{
    out->n = (int)img->dims[0];
    out->features = (int)(img->dims[1] * img->dims[2]);
    out->image = nb_shape_image(1, (int)img->dims[1], (int)img->dims[2]);
    out->pixels = img->data;
}

/* Pairs images with labels into out; takes img's pixels, frees lab's bytes, and frees
 * everything on failure. */
static int combine(idx_file *img, const char *images, idx_file *lab, const char *labels,
                   nb_dataset *out, nb_error *err)
{
    if (img->dims[0] != lab->dims[0]) {
        nb_fail(err, "%s has %u images but %s has %u labels", images, (unsigned)img->dims[0],
                labels, (unsigned)lab->dims[0]);
        free(img->data);
        free(lab->data);
        return -1;
    }
    int n = (int)img->dims[0];
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!y) {
        free(img->data);
        free(lab->data);
        return nb_fail(err, "%s: out of memory", labels);
    }
    int largest = 0;
    for (int i = 0; i < n; i++) {
        y[i] = lab->data[i];   /* a byte, so always a valid label below 256 */
        if (y[i] > largest)
            largest = y[i];
    }
    free(lab->data);

    take_images(img, out);
    out->classes = largest + 1;
    out->labels = y;
    return 0;
}

int nb_parse_idx(const void *images, size_t images_size, const char *images_what,
                 const void *labels, size_t labels_size, const char *labels_what,
                 nb_dataset *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!images_what)
        images_what = "images";
    if (!labels_what)
        labels_what = "labels";
    idx_file img, lab;
    if (parse_idx_bytes(images, images_size, images_what, IDX_IMAGES_MAGIC, "image", &img,
                        err) < 0)
        return -1;
    if (parse_idx_bytes(labels, labels_size, labels_what, IDX_LABELS_MAGIC, "label", &lab,
                        err) < 0) {
        free(img.data);
        return -1;
    }
    return combine(&img, images_what, &lab, labels_what, out, err);
}

int nb_load_idx(const char *images, const char *labels, nb_dataset *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    idx_file img, lab;
    if (read_idx(images, IDX_IMAGES_MAGIC, "image", &img, err) < 0)
        return -1;
    if (read_idx(labels, IDX_LABELS_MAGIC, "label", &lab, err) < 0) {
        free(img.data);
        return -1;
    }
    return combine(&img, images, &lab, labels, out, err);
}

int nb_load_idx_images(const char *images, nb_dataset *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    idx_file img;
    if (read_idx(images, IDX_IMAGES_MAGIC, "image", &img, err) < 0)
        return -1;
    take_images(&img, out);
    return 0;
}

/* dir/base.gz if it exists, else dir/base if that exists; 0 when found. */
static int find_file(const char *dir, const char *base, char *path, size_t size)
{
    struct stat st;
    static const char *const suffixes[] = {".gz", ""};
    for (int i = 0; i < 2; i++) {
        int len = snprintf(path, size, "%s/%s%s", dir, base, suffixes[i]);
        if (len > 0 && (size_t)len < size && stat(path, &st) == 0)
            return 0;
    }
    return -1;
}

int nb_load_idx_dir(const char *dir, nb_dataset *train, nb_dataset *test, nb_error *err)
{
    memset(train, 0, sizeof *train);
    if (test)
        memset(test, 0, sizeof *test);

    char images[4096], labels[4096];
    if (find_file(dir, "train-images-idx3-ubyte", images, sizeof images) < 0)
        return nb_fail(err, "%s: no train-images-idx3-ubyte[.gz]", dir);
    if (find_file(dir, "train-labels-idx1-ubyte", labels, sizeof labels) < 0)
        return nb_fail(err, "%s: no train-labels-idx1-ubyte[.gz]", dir);
    if (nb_load_idx(images, labels, train, err) < 0)
        return -1;
    if (!test)
        return 0;

    int have_images = find_file(dir, "t10k-images-idx3-ubyte", images, sizeof images) == 0;
    int have_labels = find_file(dir, "t10k-labels-idx1-ubyte", labels, sizeof labels) == 0;
    if (!have_images && !have_labels)
        return 0;   /* no test set: test->n stays 0 */
    if (have_images != have_labels) {
        nb_dataset_free(train);
        return nb_fail(err, "%s: %s without %s", dir,
                       have_images ? "t10k-images-idx3-ubyte[.gz]" : "t10k-labels-idx1-ubyte[.gz]",
                       have_images ? "t10k-labels-idx1-ubyte[.gz]" : "t10k-images-idx3-ubyte[.gz]");
    }
    if (nb_load_idx(images, labels, test, err) < 0) {
        nb_dataset_free(train);
        return -1;
    }
    if (test->features != train->features) {
        int tf = test->features, ff = train->features;
        nb_dataset_free(train);
        nb_dataset_free(test);
        return nb_fail(err, "%s: test images have %d pixels, training images %d", images, tf,
                       ff);
    }
    /* The two halves of one data set share one label space; a test set that happens to
     * lack the largest class must still be scored against all of them. */
    int classes = train->classes > test->classes ? train->classes : test->classes;
    train->classes = test->classes = classes;
    return 0;
}
