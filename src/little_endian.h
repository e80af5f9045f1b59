/* The byte order of files: safetensors stores every number little-endian, whatever the host's
 * order. Shared by the safetensors reader and writer, model files and checkpoints. */
#ifndef NABLA_LITTLE_ENDIAN_H
#define NABLA_LITTLE_ENDIAN_H

#include <stdint.h>
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

#endif
