/* Bytes in memory as a reader consumes them: plain, or inflated from gzip (detected by the
 * magic bytes 1f 8b). Shared by the IDX and CSV readers. Not part of the public API.
 *
 * Several gzip members in a row are one stream, as gzip(1) has it; anything else after the gzip
 * data is refused, and so is corrupt data. The inflated bytes arrive as they are asked for, so
 * a reader that knows how much it wants (IDX) stops a gzip bomb one byte past it. */
#ifndef NABLA_BYTE_SOURCE_H
#define NABLA_BYTE_SOURCE_H

#define ZLIB_CONST   /* next_in points to const bytes */
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "nabla.h"

typedef struct nb_byte_source {
    const char *what;       /* names the source in messages */
    const uint8_t *base;    /* all the input */
    size_t size;
    size_t pos;             /* plain: bytes consumed */
    int gzip;
    z_stream z;             /* gzip: next_in points into base */
    int ended;              /* gzip: the last member ended and no input follows */
    int cut;                /* gzip: the input ended inside a member */
} nb_byte_source;

/* Whether n bytes start with the gzip magic. */
int nb_is_gzip(const void *bytes, size_t size);

int nb_source_open(nb_byte_source *s, const void *bytes, size_t size, const char *what,
                   nb_error *err);
void nb_source_close(nb_byte_source *s);

/* Reads up to len bytes; returns how many were read, or -1 on a decompression error (message
 * in err). A short count means the end of the data (s->cut tells whether a gzip stream was
 * cut short there). */
int64_t nb_source_read(nb_byte_source *s, void *buf, size_t len, nb_error *err);

/* All of gzip'd bytes, inflated into a new malloc'd buffer (*out, to free(); a zero byte
 * follows the *n bytes), the memory checked before it grows (core/memcheck.h). A stream cut
 * short is refused. Returns 0, or -1 with a message naming `what`. */
int nb_gunzip(const void *bytes, size_t size, const char *what, unsigned char **out, size_t *n,
              nb_error *err);

#endif /* NABLA_BYTE_SOURCE_H */
