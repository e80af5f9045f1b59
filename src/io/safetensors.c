/*
 * safetensors (https://github.com/huggingface/safetensors), the format PyTorch and the Hugging
 * Face tools use for weights:
 *
 *   u64 little-endian N | N bytes of UTF-8 JSON header | data section
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with
 * offsets relative to the data section, plus an optional "__metadata__" object of strings.
 *
 * The reader trusts nothing: every length and offset is checked against the file before a
 * byte of data is touched, and the tensors must tile the data section exactly (no overlap, no
 * gap), as the reference implementation requires. A file is read in two steps, its header,
 * checked against the file's size, and only then its data: a file much larger than its header
 * says (padded, sparse, anything appended) is refused without being read. nb_st_open stops
 * after the first step and reads each tensor's bytes when asked, straight where they go. Only F32 and I64 are accepted because they
 * are the only types nabla stores; any other dtype is refused by name rather than misread.
 *
 * Integers are assembled byte by byte and data is only ever reached through memcpy, so the
 * code is independent of the host's alignment rules.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/fileio.h"
#include "io/json_check.h"
#include "core/little_endian.h"
#include "core/memcheck.h"
#include "nabla.h"
#include "io/safetensors_internal.h"

/* The reference implementation's limit; it stops a hostile header from exhausting memory. */
#define ST_MAX_HEADER 100000000ull
/* JSON numbers are doubles: integers above 2^53 cannot be represented exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

static const char *dtype_name(nb_dtype d)
{
    return d == NB_I64 ? "I64" : "F32";
}

static size_t dtype_size(nb_dtype d)
{
    return d == NB_I64 ? 8 : 4;
}

static int dtype_valid(nb_dtype d)
{
    return d == NB_F32 || d == NB_I64;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* numel(shape) * dtype size, or -1 on overflow. A zero dimension makes the product 0 however
 * large the others are, so it is looked for first. */
static int byte_size(const int64_t *shape, int ndim, nb_dtype dtype, uint64_t *out)
{
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            *out = 0;
            return 0;
        }
    }
    uint64_t total = dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (total > UINT64_MAX / d)
            return -1;
        total *= d;
    }
    *out = total;
    return 0;
}

/* A JSON number that is an exact non-negative integer. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= ST_MAX_JSON_INT))
        return -1;
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return -1;
    *out = u;
    return 0;
}

const char *nb_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* The open file behind the tensors of nb_st_open: where each tensor's bytes are. */
typedef struct st_source {
    int fd;
    uint64_t data_start;   /* the data section's offset in the file */
    uint64_t *begin;       /* each tensor's offset in the data section */
    char *path;
} st_source;

static void source_free(st_source *src)
{
    if (!src)
        return;
    if (src->fd >= 0)
        close(src->fd);
    free(src->begin);
    free(src->path);
    free(src);
}

void nb_st_drop_tensors(nb_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    free(f->buffer);
    source_free(f->source);
    f->tensors = NULL;
    f->n_tensors = 0;
    f->buffer = NULL;
    f->size = 0;
    f->source = NULL;
}

void nb_st_free(nb_st_file *f)
{
    if (!f)
        return;
    nb_st_drop_tensors(f);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    memset(f, 0, sizeof *f);
}

/* The order the check that the tensors tile the data section needs: by offset. */
typedef struct span {
    const char *name;
    uint64_t begin, end;
} span;

static int by_offset(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int parse_metadata(const cJSON *obj, const char *what, nb_st_file *out, nb_error *err)
{
    if (!cJSON_IsObject(obj))
        return nb_fail(err, "%s: __metadata__ is not a JSON object", what);
    int n = cJSON_GetArraySize(obj);
    if (n == 0)
        return 0;
    out->meta = calloc((size_t)n, sizeof *out->meta);
    if (!out->meta)
        return nb_fail(err, "%s: out of memory", what);
    for (const cJSON *item = obj->child; item; item = item->next) {
        if (!cJSON_IsString(item))
            return nb_fail(err, "%s: metadata value of '%s' is not a string", what, item->string);
        nb_st_meta *m = &out->meta[out->n_meta];
        m->key = strdup(item->string);
        m->value = strdup(item->valuestring);
        out->n_meta++;
        if (!m->key || !m->value)
            return nb_fail(err, "%s: out of memory", what);
    }
    return 0;
}

/* One tensor entry; offsets are checked against the data section here, tiling later. */
static int parse_tensor(const cJSON *entry, const char *what, uint64_t data_size,
                        nb_st_tensor *t, span *sp, nb_error *err)
{
    const char *name = entry->string;
    char sbuf[128];
    if (!cJSON_IsObject(entry))
        return nb_fail(err, "%s: tensor '%s': entry is not a JSON object", what, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return nb_fail(err, "%s: tensor '%s': dtype missing or not a string", what, name);
    if (strcmp(dtype->valuestring, "F32") == 0)
        t->dtype = NB_F32;
    else if (strcmp(dtype->valuestring, "I64") == 0)
        t->dtype = NB_I64;
    else
        return nb_fail(err, "%s: tensor '%s': unsupported dtype '%s' (only F32 and I64 are "
                       "supported)", what, name, dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return nb_fail(err, "%s: tensor '%s': shape missing or not an array", what, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > NB_MAX_DIMS)
        return nb_fail(err, "%s: tensor '%s' has %d dimensions, at most %d are supported", what,
                       name, ndim, NB_MAX_DIMS);
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return nb_fail(err, "%s: tensor '%s': shape must be an array of non-negative "
                           "integers", what, name);
        t->shape[t->ndim++] = (int64_t)v;
    }

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(offsets->child, &begin) != 0 || json_uint(offsets->child->next, &end) != 0)
        return nb_fail(err, "%s: tensor '%s': data_offsets must be two non-negative integers "
                       "[begin, end]", what, name);
    if (begin > end)
        return nb_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                       what, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return nb_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] reach beyond the data "
                       "section (%llu bytes)", what, name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)data_size);

    uint64_t expect;
    if (byte_size(t->shape, t->ndim, t->dtype, &expect) != 0)
        return nb_fail(err, "%s: tensor '%s': shape %s is too large", what, name,
                       nb_shape_str(t->shape, t->ndim, sbuf, sizeof sbuf));
    if (expect != end - begin)
        return nb_fail(err, "%s: tensor '%s': %s %s needs %llu bytes, data_offsets give %llu",
                       what, name, dtype_name(t->dtype),
                       nb_shape_str(t->shape, t->ndim, sbuf, sizeof sbuf),
                       (unsigned long long)expect, (unsigned long long)(end - begin));
    t->nbytes = (size_t)(end - begin);
    sp->name = name;
    sp->begin = begin;
    sp->end = end;
    t->name = strdup(name);
    if (!t->name)
        return nb_fail(err, "%s: out of memory", what);
    return 0;
}

/* Overlap and gaps, in offset order (names are unique: header_names_unique). sp is
 * reordered. */
static int check_layout(span *sp, int n, uint64_t data_size, const char *what, nb_error *err)
{
    if (n == 0) {
        if (data_size != 0)
            return nb_fail(err, "%s: bytes 0..%llu of the data section belong to no tensor", what,
                           (unsigned long long)data_size);
        return 0;
    }
    qsort(sp, (size_t)n, sizeof *sp, by_offset);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (sp[i].begin < pos)
            return nb_fail(err, "%s: tensors '%s' and '%s' overlap in the data section", what,
                           sp[i - 1].name, sp[i].name);
        if (sp[i].begin > pos)
            return nb_fail(err, "%s: bytes %llu..%llu of the data section belong to no tensor",
                           what, (unsigned long long)pos, (unsigned long long)sp[i].begin);
        pos = sp[i].end;
    }
    if (pos != data_size)
        return nb_fail(err, "%s: bytes %llu..%llu of the data section belong to no tensor", what,
                       (unsigned long long)pos, (unsigned long long)data_size);
    return 0;
}

/* The tensors and metadata of the header; begin[i] gets tensor i's offset in the data section
 * (an array of one entry per tensor, malloc'd, also on failure). */
static int parse_header(const cJSON *root, uint64_t data_size, const char *what,
                        nb_st_file *out, uint64_t **begin, nb_error *err)
{
    int n = 0;
    for (const cJSON *item = root->child; item; item = item->next)
        n += strcmp(item->string, "__metadata__") != 0;

    span *sp = NULL;
    *begin = calloc((size_t)n + 1, sizeof **begin);
    if (!*begin)
        return nb_fail(err, "%s: out of memory", what);
    if (n > 0) {
        out->tensors = calloc((size_t)n, sizeof *out->tensors);
        sp = calloc((size_t)n, sizeof *sp);
        if (!out->tensors || !sp) {
            free(sp);
            return nb_fail(err, "%s: out of memory", what);
        }
    }
    int rc = 0;
    for (const cJSON *item = root->child; item && rc == 0; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            rc = parse_metadata(item, what, out, err);
            continue;
        }
        nb_st_tensor *t = &out->tensors[out->n_tensors];
        rc = parse_tensor(item, what, data_size, t, &sp[out->n_tensors], err);
        if (t->name)
            out->n_tensors++;
        if (rc == 0)
            (*begin)[out->n_tensors - 1] = sp[out->n_tensors - 1].begin;
    }
    if (rc == 0)
        rc = check_layout(sp, n, data_size, what, err);
    free(sp);
    return rc;
}

/* The numbers of a header are shapes and offsets: non-negative integers, written as JSON writes
 * them (digits, no leading zero). cJSON would take 8.0, 8e0 or 08 for 8; the reference
 * implementation (serde_json into integers) refuses them, and so does nabla. */
static int header_numbers_plain(const char *text, size_t n, const char *what, nb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '"') {
            for (i++; i < n && text[i] != '"'; i++)
                i += text[i] == '\\';
            continue;
        }
        if (text[i] != '-' && !(text[i] >= '0' && text[i] <= '9'))
            continue;
        size_t len = strspn(text + i, "0123456789+-.eE");
        size_t digits = strspn(text + i, "0123456789");
        if (digits != len || (len > 1 && text[i] == '0'))
            return nb_fail(err, "%s: the header writes a number as '%.*s' (byte %zu of the "
                           "header), but a header's numbers are shapes and offsets, whole "
                           "numbers written in digits alone", what, (int)(len > 40 ? 40 : len),
                           text + i, i);
        i += len - 1;
    }
    return 0;
}

/* No name twice in one object of the header (the format disallows it, and a reader that took
 * the first of two would read another model than one that took the last): not two tensors, two
 * __metadata__ or two metadata keys of one name, nor a tensor's dtype, shape or offsets twice. */
static int header_names_unique(const cJSON *root, const char *what, nb_error *err)
{
    const cJSON *object = NULL;
    const char *name = nb_json_duplicate_name(root, &object);
    if (!name)
        return 0;
    if (object == root)
        return strcmp(name, "__metadata__") == 0
                   ? nb_fail(err, "%s: __metadata__ appears twice", what)
                   : nb_fail(err, "%s: duplicate tensor name '%s'", what, name);
    if (object->string && strcmp(object->string, "__metadata__") == 0)
        return nb_fail(err, "%s: duplicate metadata key '%s'", what, name);
    return nb_fail(err, "%s: tensor '%s': '%s' appears twice", what,
                   object->string ? object->string : "?", name);
}

/* The header length (the file's first 8 bytes, of `size` in all), checked. */
static int check_length(const unsigned char *first8, uint64_t size, const char *what,
                        uint64_t *hlen, nb_error *err)
{
    if (size < 8)
        return nb_fail(err, "%s: too short for a safetensors file (%llu bytes, at least 8 are "
                       "needed)", what, (unsigned long long)size);
    *hlen = nb_load_u64_le(first8);
    if (*hlen == 0)
        return nb_fail(err, "%s: the header length is 0", what);
    if (*hlen > ST_MAX_HEADER)
        return nb_fail(err, "%s: the header length %llu exceeds the limit of %llu bytes", what,
                       (unsigned long long)*hlen, ST_MAX_HEADER);
    if (*hlen > size - 8)
        return nb_fail(err, "%s: the header length %llu is larger than the rest of the file "
                       "(%llu bytes); is the file truncated?", what, (unsigned long long)*hlen,
                       (unsigned long long)(size - 8));
    return 0;
}

/* The header (hlen bytes) of a file of `size` bytes: its JSON, its tensors checked against the
 * data section that size leaves. Fills out (tensors without data) and *begin (see
 * parse_header); on failure frees what it made of out. */
static int parse_header_text(const unsigned char *header, uint64_t hlen, uint64_t size,
                             const char *what, nb_st_file *out, uint64_t **begin, nb_error *err)
{
    *begin = NULL;
    if (memchr(header, 0, (size_t)hlen))
        return nb_fail(err, "%s: the header contains a zero byte", what);
    if (!utf8_valid(header, (size_t)hlen))
        return nb_fail(err, "%s: the header is not valid UTF-8", what);
    /* cJSON wants a terminated string; the header is followed by data, so copy it. */
    char *text = malloc((size_t)hlen + 1);
    if (!text)
        return nb_fail(err, "%s: out of memory", what);
    memcpy(text, header, (size_t)hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = text[0] == '{' ? cJSON_ParseWithOpts(text, &end, 0) : NULL;
    int rc = 0;
    if (text[0] != '{')
        rc = nb_fail(err, "%s: the header is not a JSON object beginning at its first byte "
                     "with '{'", what);
    else if (!root)
        rc = nb_fail(err, "%s: the header is not valid JSON (at byte %ld of the header)", what,
                     end ? (long)(end - text) : 0L);
    else if (strspn(end, " ") != strlen(end)) {
        const char *odd = end + strspn(end, " ");
        char shown[16];
        snprintf(shown, sizeof shown, *odd > ' ' && *odd < 127 ? "'%c'" : "byte 0x%02x",
                 (unsigned char)*odd);
        rc = nb_fail(err, "%s: the header has %s after its JSON object, where only spaces may "
                     "pad it (byte %ld of the header)", what, shown, (long)(odd - text));
    }
    if (rc == 0)
        rc = header_names_unique(root, what, err);
    if (rc == 0)
        rc = parse_header(root, size - 8 - hlen, what, out, begin, err);
    /* After parse_header, whose messages say which number of which tensor is not a whole
     * number >= 0: what is left are whole numbers that are not written in digits alone. */
    if (rc == 0)
        rc = header_numbers_plain(text, (size_t)(end - text), what, err);
    free(text);
    cJSON_Delete(root);
    if (rc != 0) {
        nb_st_free(out);
        free(*begin);
        *begin = NULL;
    }
    return rc;
}

/* Takes ownership of buf (size bytes, freed on failure too). */
static int parse_owned(unsigned char *buf, size_t size, const char *what, nb_st_file *out,
                       nb_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t hlen = 0, *begin;
    if (check_length(buf, size, what, &hlen, err) != 0 ||
        parse_header_text(buf + 8, hlen, size, what, out, &begin, err) != 0) {
        free(buf);
        return -1;
    }
    out->buffer = buf;
    out->size = size;
    for (int i = 0; i < out->n_tensors; i++)
        out->tensors[i].data = buf + 8 + hlen + begin[i];
    free(begin);
    return 0;
}

int nb_st_parse(const void *bytes, size_t size, const char *what, nb_st_file *out, nb_error *err)
{
    if (!what)
        what = "safetensors";
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        memset(out, 0, sizeof *out);
        return nb_fail(err, "%s: out of memory for %zu bytes", what, size);
    }
    if (size)
        memcpy(buf, bytes, size);
    return parse_owned(buf, size, what, out, err);
}

/* n bytes at `offset` of fd, all of them, or -1 with a message. */
static int read_at(int fd, void *dst, size_t n, uint64_t offset, const char *what,
                   nb_error *err)
{
    unsigned char *p = dst;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return nb_fail(err, "%s: read failed: %s", what, strerror(errno));
        if (got == 0)
            return nb_fail(err, "%s: the file became shorter while it was read", what);
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

int nb_st_open(const char *path, nb_st_file *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t size, hlen = 0, *begin = NULL;
    int fd = nb_open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    unsigned char first8[8] = {0};
    unsigned char *header = NULL;
    int rc = read_at(fd, first8, size < 8 ? (size_t)size : 8, 0, path, err);
    if (rc == 0)
        rc = check_length(first8, size, path, &hlen, err);
    if (rc == 0 && (rc = nb_check_memory(hlen, path, err)) == 0 && !(header = malloc(hlen))) {
        rc = nb_fail(err, "%s: out of memory for its header of %llu bytes", path,
                     (unsigned long long)hlen);
    }
    if (rc == 0)
        rc = read_at(fd, header, (size_t)hlen, 8, path, err);
    if (rc == 0)
        rc = parse_header_text(header, hlen, size, path, out, &begin, err);
    free(header);
    st_source *src = rc == 0 ? calloc(1, sizeof *src) : NULL;
    if (rc == 0 && (!src || !(src->path = strdup(path)))) {
        rc = nb_fail(err, "%s: out of memory", path);
        nb_st_free(out);
    }
    if (rc != 0) {
        free(begin);
        free(src);
        close(fd);
        return -1;
    }
    src->fd = fd;
    src->data_start = 8 + hlen;
    src->begin = begin;
    out->source = src;
    out->size = (size_t)size;
    return 0;
}

int nb_st_read(const char *path, nb_st_file *out, nb_error *err)
{
    /* The header first: the data is read only once the header accounts for every byte. */
    if (nb_st_open(path, out, err) != 0)
        return -1;
    st_source *src = out->source;
    uint64_t size = out->size;
    unsigned char *buf = NULL;
    int rc = nb_check_memory(size, path, err);
    if (rc == 0 && !(buf = malloc(size ? size : 1)))
        rc = nb_fail(err, "%s: out of memory for %llu bytes", path, (unsigned long long)size);
    if (rc == 0)
        rc = read_at(src->fd, buf, size, 0, path, err);
    /* The file must be the one whose header was checked, and no longer. */
    char extra;
    if (rc == 0 && pread(src->fd, &extra, 1, (off_t)size) != 0)
        rc = nb_fail(err, "%s: the file changed while it was read", path);
    if (rc == 0 && nb_load_u64_le(buf) + 8 != src->data_start)
        rc = nb_fail(err, "%s: the file changed while it was read", path);
    if (rc != 0) {
        free(buf);
        nb_st_free(out);
        return -1;
    }
    for (int i = 0; i < out->n_tensors; i++)
        out->tensors[i].data = buf + src->data_start + src->begin[i];
    out->buffer = buf;
    out->source = NULL;
    source_free(src);
    return 0;
}

int nb_st_tensor_bytes(const nb_st_file *f, const nb_st_tensor *t, uint64_t offset, size_t n,
                       void *dst, nb_error *err)
{
    if (offset > t->nbytes || n > t->nbytes - offset)
        return nb_fail(err, "tensor '%s': bytes %llu..%llu are beyond its %zu", t->name,
                       (unsigned long long)offset, (unsigned long long)(offset + n), t->nbytes);
    if (t->data) {
        memcpy(dst, (const unsigned char *)t->data + offset, n);
        return 0;
    }
    const st_source *src = f->source;
    if (!src)
        return nb_fail(err, "tensor '%s': its bytes are neither in memory nor in a file",
                       t->name);
    return read_at(src->fd, dst, n, src->data_start + src->begin[t - f->tensors] + offset,
                   src->path, err);
}

const nb_st_tensor *nb_st_find(const nb_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *nb_st_meta_get(const nb_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* What the reader would refuse, the writer refuses too, before anything touches the disk. */
static int check_write_args(const char *path, const nb_st_tensor *tensors, int n_tensors,
                            const nb_st_meta *meta, int n_meta, nb_error *err)
{
    if (n_tensors < 0 || n_meta < 0 || (n_tensors > 0 && !tensors) || (n_meta > 0 && !meta))
        return nb_fail(err, "%s: invalid tensor or metadata list", path);
    for (int i = 0; i < n_tensors; i++) {
        const nb_st_tensor *t = &tensors[i];
        if (!t->name)
            return nb_fail(err, "%s: tensor %d has no name", path, i);
        if (strcmp(t->name, "__metadata__") == 0)
            return nb_fail(err, "%s: '__metadata__' cannot be a tensor name", path);
        if (!utf8_valid((const unsigned char *)t->name, strlen(t->name)))
            return nb_fail(err, "%s: tensor name %d is not valid UTF-8", path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return nb_fail(err, "%s: duplicate tensor name '%s'", path, t->name);
        if (!dtype_valid(t->dtype))
            return nb_fail(err, "%s: tensor '%s': unsupported dtype %d", path, t->name,
                           (int)t->dtype);
        if (t->ndim < 0 || t->ndim > NB_MAX_DIMS)
            return nb_fail(err, "%s: tensor '%s' has %d dimensions, at most %d are supported",
                           path, t->name, t->ndim, NB_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || (double)t->shape[d] > ST_MAX_JSON_INT)
                return nb_fail(err, "%s: tensor '%s': invalid dimension %lld", path, t->name,
                               (long long)t->shape[d]);
        uint64_t expect;
        char sbuf[128];
        if (byte_size(t->shape, t->ndim, t->dtype, &expect) != 0 || expect != t->nbytes)
            return nb_fail(err, "%s: tensor '%s': %s %s does not match its %zu bytes", path,
                           t->name, dtype_name(t->dtype),
                           nb_shape_str(t->shape, t->ndim, sbuf, sizeof sbuf), t->nbytes);
        if (t->nbytes > 0 && !t->data)
            return nb_fail(err, "%s: tensor '%s' has no data", path, t->name);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value)
            return nb_fail(err, "%s: metadata entry %d has no key or value", path, i);
        if (!utf8_valid((const unsigned char *)meta[i].key, strlen(meta[i].key)) ||
            !utf8_valid((const unsigned char *)meta[i].value, strlen(meta[i].value)))
            return nb_fail(err, "%s: metadata '%s' is not valid UTF-8", path, meta[i].key);
        for (int j = 0; j < i; j++)
            if (strcmp(meta[j].key, meta[i].key) == 0)
                return nb_fail(err, "%s: duplicate metadata key '%s'", path, meta[i].key);
    }
    return 0;
}

/* Integers are added as raw JSON text: cJSON would print large doubles in exponent form. */
static int add_uint(cJSON *array, uint64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    cJSON *num = cJSON_CreateRaw(text);
    return num && cJSON_AddItemToArray(array, num) ? 0 : -1;
}

/* The header JSON, compact, "__metadata__" first, tensors in the given order and laid out
 * contiguously in that order. */
static char *build_header(const nb_st_tensor *tensors, int n_tensors, const nb_st_meta *meta,
                          int n_meta)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    int ok = 1;
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    }
    uint64_t offset = 0;
    for (int i = 0; ok && i < n_tensors; i++) {
        const nb_st_tensor *t = &tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = NULL, *offsets = NULL;
        ok = entry && cJSON_AddStringToObject(entry, "dtype", dtype_name(t->dtype)) &&
             (shape = cJSON_AddArrayToObject(entry, "shape")) != NULL;
        for (int d = 0; ok && d < t->ndim; d++)
            ok = add_uint(shape, (uint64_t)t->shape[d]) == 0;
        ok = ok && (offsets = cJSON_AddArrayToObject(entry, "data_offsets")) != NULL &&
             add_uint(offsets, offset) == 0 && add_uint(offsets, offset + t->nbytes) == 0;
        offset += t->nbytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int nb_st_write(const char *path, const nb_st_tensor *tensors, int n_tensors,
                const nb_st_meta *meta, int n_meta, nb_error *err)
{
    if (!path || !*path)
        return nb_fail(err, "no file name given");
    if (check_write_args(path, tensors, n_tensors, meta, n_meta, err) != 0)
        return -1;
    char *header = build_header(tensors, n_tensors, meta, n_meta);
    if (!header)
        return nb_fail(err, "%s: out of memory building the header", path);
    size_t hlen = strlen(header);
    /* Spaces pad the header so the data section starts 8-byte aligned, which lets readers
     * that map the file use the data in place. */
    size_t padded = (hlen + 7) / 8 * 8;
    size_t total = 8 + padded;
    for (int i = 0; i < n_tensors; i++) {
        if (tensors[i].nbytes > SIZE_MAX - total) {
            free(header);
            return nb_fail(err, "%s: tensors too large to write", path);
        }
        total += tensors[i].nbytes;
    }
    /* The length and the padded header in one buffer; the tensors are written from where
     * they are, so the file is never assembled in memory. */
    unsigned char *head = malloc(8 + padded);
    nb_file_part *parts = malloc(((size_t)n_tensors + 1) * sizeof *parts);
    if (!head || !parts) {
        free(head);
        free(parts);
        free(header);
        return nb_fail(err, "%s: out of memory for the header", path);
    }
    nb_store_u64_le(head, padded);
    memcpy(head + 8, header, hlen);
    memset(head + 8 + hlen, ' ', padded - hlen);
    free(header);
    parts[0] = (nb_file_part){head, 8 + padded};
    for (int i = 0; i < n_tensors; i++)
        parts[i + 1] = (nb_file_part){tensors[i].data, tensors[i].nbytes};
    int rc = nb_write_parts_atomic(path, parts, n_tensors + 1, err);
    free(head);
    free(parts);
    return rc;
}

/* Where the data section starts: after the 8-byte length and the header. */
static uint64_t data_start(const nb_st_file *f)
{
    const st_source *src = f->source;
    if (src)
        return src->data_start;
    return f->buffer && f->size >= 8 ? 8 + nb_load_u64_le(f->buffer) : 0;
}

uint64_t nb_st_data_size(const nb_st_file *f)
{
    uint64_t start = data_start(f);
    return f->size > start ? f->size - start : 0;
}

int nb_st_data_bytes(const nb_st_file *f, uint64_t offset, size_t n, void *dst, nb_error *err)
{
    uint64_t size = nb_st_data_size(f);
    if (offset > size || n > size - offset)
        return nb_fail(err, "bytes %llu..%llu are beyond the data section (%llu bytes)",
                       (unsigned long long)offset, (unsigned long long)(offset + n),
                       (unsigned long long)size);
    const st_source *src = f->source;
    if (!src) {
        memcpy(dst, f->buffer + data_start(f) + offset, n);
        return 0;
    }
    return read_at(src->fd, dst, n, src->data_start + offset, src->path, err);
}
