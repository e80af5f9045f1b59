/* Bytes that are not CSV text are named for what they are rather than parsed: UTF-16 or UTF-32
 * (with or without a byte order mark), an IDX or a safetensors file, gzip data inside gzip data
 * (the reader inflates one layer), and any other file with a NUL byte (a binary file), with the
 * line and column of that byte; so are line ends of a carriage return alone (old Mac OS text,
 * which would otherwise read as one long line) and a byte order mark after the file's start
 * (invisible in a quoted field). */
#include <stdio.h>
#include <string.h>

#include "data/csv_internal.h"

/* Whether n bytes look like UTF-16 without a byte order mark: the text's ASCII characters
 * (all of a CSV file's but a header's) leave every other byte zero (odd bytes: little-endian;
 * even bytes: big-endian), nine in ten of them at least, and the other bytes never are.
 * Returns 'L', 'B' or 0. */
static int utf16_order(const unsigned char *p, size_t n)
{
    size_t pairs = (n < 512 ? n : 512) / 2, zero_even = 0, zero_odd = 0;
    for (size_t i = 0; i < pairs; i++) {
        zero_even += p[2 * i] == 0;
        zero_odd += p[2 * i + 1] == 0;
    }
    if (pairs == 0)
        return 0;
    if (zero_even == 0 && 10 * zero_odd >= 9 * pairs)
        return 'L';
    if (zero_odd == 0 && 10 * zero_even >= 9 * pairs)
        return 'B';
    return 0;
}

/* The same for UTF-32 without a byte order mark: of every four bytes, the three high ones of
 * an ASCII character are zero (bytes 1-3: little-endian; bytes 0-2: big-endian). */
static int utf32_order(const unsigned char *p, size_t n)
{
    size_t quads = (n < 512 ? n : 512) / 4, le = 0, be = 0, low_le_zero = 0, low_be_zero = 0;
    for (size_t i = 0; i < quads; i++) {
        const unsigned char *q = p + 4 * i;
        le += q[1] == 0 && q[2] == 0 && q[3] == 0;
        be += q[0] == 0 && q[1] == 0 && q[2] == 0;
        low_le_zero += q[0] == 0;
        low_be_zero += q[3] == 0;
    }
    if (quads == 0)
        return 0;
    if (low_le_zero == 0 && 10 * le >= 9 * quads)
        return 'L';
    if (low_be_zero == 0 && 10 * be >= 9 * quads)
        return 'B';
    return 0;
}

/* The line and column (1-based, in bytes) of byte `at` of the text p. */
static void line_and_column(const unsigned char *p, const unsigned char *at, long *line,
                            long *column)
{
    const unsigned char *start = p;
    *line = 1;
    for (const unsigned char *q = p; (q = memchr(q, '\n', (size_t)(at - q))) != NULL; q++) {
        (*line)++;
        start = q + 1;
    }
    *column = (long)(at - start) + 1;
}

/* The first carriage return that does not begin a CRLF line end (nor ends the file), or NULL:
 * old Mac OS text ends its lines with CR alone, which would make the whole file one line. */
static const unsigned char *bare_cr(const unsigned char *p, size_t size)
{
    const unsigned char *end = p + size;
    for (const unsigned char *q = p; (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
        if (q + 1 < end && q[1] != '\n')
            return q;
    return NULL;
}

/* A UTF-8 byte order mark after the start of the file (two files joined, say): invisible in
 * a message that quotes the field it sticks to. */
static const unsigned char *inner_bom(const unsigned char *p, size_t size)
{
    const unsigned char *end = p + size;
    for (const unsigned char *q = p + 1; q + 3 <= end; q++) {
        q = memchr(q, 0xEF, (size_t)(end - q));
        if (!q || q + 3 > end)
            return NULL;
        if (q[1] == 0xBB && q[2] == 0xBF)
            return q;
    }
    return NULL;
}

/* Refuses bytes that are not CSV text, saying what they are: text in UTF-16 or UTF-32, a
 * compressed, IDX or safetensors file, a binary file (a NUL byte, with its line and column),
 * line ends of a carriage return alone, a byte order mark in the middle of the text. 0 when
 * the bytes may be text. */
int csv_check_text(const unsigned char *p, size_t size, const char *path, nb_error *err)
{
    static const char convert[] = "nabla reads CSV as UTF-8 (or ASCII): convert it with iconv";
    if (size >= 4 && (memcmp(p, "\xFF\xFE\0\0", 4) == 0 || memcmp(p, "\0\0\xFE\xFF", 4) == 0))
        return nb_fail(err, "%s: UTF-32 text (it starts with a UTF-32 byte order mark); %s -f "
                       "UTF-32 -t UTF-8", path, convert);
    if (size >= 2 && (memcmp(p, "\xFF\xFE", 2) == 0 || memcmp(p, "\xFE\xFF", 2) == 0))
        return nb_fail(err, "%s: UTF-16 text (it starts with a UTF-16 byte order mark); %s -f "
                       "UTF-16 -t UTF-8", path, convert);
    if (size >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return nb_fail(err, "%s: gzip-compressed data inside gzip-compressed data: decompress "
                       "it once (gunzip) first", path);
    /* IDX: two zero bytes, the element type (0x08 bytes ... 0x0E doubles), 1 to 4 dimensions. */
    if (size >= 4 && p[0] == 0 && p[1] == 0 && p[2] >= 0x08 && p[2] <= 0x0E && p[3] >= 1 &&
        p[3] <= 4)
        return nb_fail(err, "%s: an IDX file (the MNIST format), not CSV text: give --data the "
                       "directory that holds the IDX files", path);
    /* safetensors: an 8-byte little-endian header length, then the header's JSON object. */
    if (size >= 10 && p[8] == '{' && p[7] == 0 && p[6] == 0 && p[5] == 0 && p[4] == 0)
        return nb_fail(err, "%s: a safetensors file (a model or checkpoint), not CSV text", path);
    int order = utf32_order(p, size);
    if (order)
        return nb_fail(err, "%s: UTF-32 text (%s-endian, without a byte order mark); %s -f "
                       "UTF-32%s -t UTF-8", path, order == 'L' ? "little" : "big", convert,
                       order == 'L' ? "LE" : "BE");
    order = utf16_order(p, size);
    if (order)
        return nb_fail(err, "%s: UTF-16 text (%s-endian, without a byte order mark); %s -f "
                       "UTF-16%s -t UTF-8", path, order == 'L' ? "little" : "big", convert,
                       order == 'L' ? "LE" : "BE");
    long line, column;
    const unsigned char *nul = memchr(p, 0, size);
    if (nul) {
        line_and_column(p, nul, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a NUL byte: this looks like a binary file, not CSV "
                       "text", path, line, column);
    }
    const unsigned char *cr = bare_cr(p, size);
    if (cr) {
        line_and_column(p, cr, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a carriage return (CR) that does not end a line with "
                       "a line feed: lines must end with LF or CRLF%s", path, line, column,
                       memchr(p, '\n', size) ? ""
                                             : "; this file's end with CR alone (old Mac OS): "
                                               "convert them with tr '\\r' '\\n'");
    }
    const unsigned char *bom = inner_bom(p, size);
    if (bom) {
        line_and_column(p, bom, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a byte order mark (U+FEFF, bytes EF BB BF) in the "
                       "middle of the text (were two files joined?): only the file's very "
                       "start may have one", path, line, column);
    }
    return 0;
}
