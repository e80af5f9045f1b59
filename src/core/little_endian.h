/* The byte order of files: safetensors stores every number little-endian, whatever the host's
 * order. Shared by the safetensors reader and writer, model files and checkpoints. */
#ifndef NABLA_LITTLE_ENDIAN_H
#define NABLA_LITTLE_ENDIAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void nb_store_u64_le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t nb_load_u64_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void nb_store_f32_le(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static inline float nb_load_f32_le(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* int64 through its two's-complement bit pattern (no implementation-defined conversion). */
static inline void nb_store_i64_le(unsigned char *p, int64_t v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    nb_store_u64_le(p, u);
}

static inline int64_t nb_load_i64_le(const unsigned char *p)
{
    uint64_t u = nb_load_u64_le(p);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Whether this host stores numbers little-endian, as the files do (a constant the compiler
 * folds). */
static inline int nb_host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* The file's bytes of n floats (size 4) or int64s (size 8) in memory. On a little-endian host
 * they are the memory itself: a model or a checkpoint is then written straight from the
 * weights, with no second copy of them in memory. On a big-endian host they are converted
 * into a new buffer, *owned (to free()); NULL when it cannot be had. */
static inline const void *nb_le_view(const void *values, size_t n, size_t size,
                                     unsigned char **owned)
{
    *owned = NULL;
    if (nb_host_little_endian())
        return values;
    unsigned char *bytes = malloc(n * size + 1);
    if (!bytes)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (size == 4)
            nb_store_f32_le(bytes + 4 * i, ((const float *)values)[i]);
        else
            nb_store_i64_le(bytes + 8 * i, ((const int64_t *)values)[i]);
    }
    *owned = bytes;
    return bytes;
}

#endif
