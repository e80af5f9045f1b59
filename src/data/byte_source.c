/* Plain or gzip'd bytes as a reader consumes them (byte_source.h). */
#include <stdlib.h>
#include <string.h>

#include "core/memcheck.h"
#include "data/byte_source.h"

/* Bytes handed to zlib per inflate call: well below its unsigned-int limit. */
#define ZLIB_CHUNK ((size_t)1 << 24)

int nb_is_gzip(const void *bytes, size_t size)
{
    const uint8_t *p = bytes;
    return size >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

int nb_source_open(nb_byte_source *s, const void *bytes, size_t size, const char *what,
                       nb_error *err)
{
    memset(s, 0, sizeof *s);
    s->what = what;
    s->base = bytes;
    s->size = size;
    s->gzip = nb_is_gzip(bytes, size);
    if (!s->gzip)
        return 0;
    s->z.next_in = s->base;
    /* 16 + MAX_WBITS: a gzip wrapper, with its CRC-32 and length checked at the end. */
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
        s->gzip = 0;
        return nb_fail(err, "%s: out of memory for the gzip decoder", what);
    }
    return 0;
}

void nb_source_close(nb_byte_source *s)
{
    if (s->gzip)
        inflateEnd(&s->z);
    s->gzip = 0;
}

/* Inflates up to len bytes into buf; see read_up_to. */
static int64_t inflate_up_to(nb_byte_source *s, uint8_t *buf, size_t len, nb_error *err)
{
    size_t got = 0;
    while (got < len && !s->ended && !s->cut) {
        size_t consumed = (size_t)(s->z.next_in - s->base);
        if (s->z.avail_in == 0) {
            if (consumed == s->size) {
                s->cut = 1;   /* inside a member: its end marker and checksum are missing */
                break;
            }
            size_t left = s->size - consumed;
            s->z.avail_in = (uInt)(left < ZLIB_CHUNK ? left : ZLIB_CHUNK);
        }
        size_t want = len - got < ZLIB_CHUNK ? len - got : ZLIB_CHUNK;
        s->z.next_out = buf + got;
        s->z.avail_out = (uInt)want;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        got += want - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            consumed = (size_t)(s->z.next_in - s->base);
            size_t left = s->size - consumed;
            if (left == 0) {
                s->ended = 1;
            } else if (left >= 2 && s->base[consumed] == 0x1f && s->base[consumed + 1] == 0x8b) {
                inflateReset(&s->z);   /* another member follows (gzip -c a b > ab.gz) */
            } else {
                nb_fail(err, "%s: %zu bytes that are not gzip data follow the gzip data", s->what,
                        left);
                return -1;
            }
        } else if (rc == Z_BUF_ERROR) {
            /* No progress: zlib needs more input. The loop above supplies it, or finds the
             * input exhausted. */
            if (s->z.avail_in != 0) {
                nb_fail(err, "%s: gzip decoder made no progress", s->what);
                return -1;
            }
        } else if (rc != Z_OK) {
            nb_fail(err, "%s: corrupt gzip data: %s", s->what,
                    rc == Z_MEM_ERROR ? "out of memory"
                    : s->z.msg        ? s->z.msg
                                      : "invalid stream");
            return -1;
        }
    }
    return (int64_t)got;
}

int64_t nb_source_read(nb_byte_source *s, void *buf, size_t len, nb_error *err)
{
    if (s->gzip)
        return inflate_up_to(s, buf, len, err);
    size_t left = s->size - s->pos;
    size_t n = len < left ? len : left;
    if (n)
        memcpy(buf, s->base + s->pos, n);
    s->pos += n;
    return (int64_t)n;
}

int nb_gunzip(const void *bytes, size_t size, const char *what, unsigned char **out, size_t *n,
              nb_error *err)
{
    *out = NULL;
    *n = 0;
    nb_byte_source s;
    if (nb_source_open(&s, bytes, size, what, err) < 0)
        return -1;
    /* Text compresses some 3 to 10 times: start there, and double as the bytes keep coming. */
    size_t cap = size < SIZE_MAX / 4 ? 4 * size + 4096 : size, len = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (!buf || cap - len < 2) {
            size_t want = buf ? (cap > SIZE_MAX / 2 ? 0 : cap * 2) : cap;
            if (want == 0 || nb_check_memory(want, what, err) != 0) {
                if (want == 0)
                    nb_fail(err, "%s: too large to inflate into memory", what);
                goto fail;
            }
            unsigned char *bigger = realloc(buf, want);
            if (!bigger) {
                nb_fail(err, "%s: out of memory for %zu bytes", what, want);
                goto fail;
            }
            buf = bigger;
            cap = want;
        }
        int64_t got = nb_source_read(&s, buf + len, cap - 1 - len, err);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (s.cut) {
        nb_fail(err, "%s: truncated: the gzip data ends before its end marker and checksum",
                what);
        goto fail;
    }
    nb_source_close(&s);
    buf[len] = 0;
    *out = buf;
    *n = len;
    return 0;

fail:
    nb_source_close(&s);
    free(buf);
    return -1;
}
