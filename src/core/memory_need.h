/* Amounts of memory, as the memory checks (memcheck.h) and the thread pool's own estimate
 * (pool.h) both count them: saturating arithmetic, and a need split by the limits it counts
 * against. A header of its own so that the pool does not depend on the checks that use it. */
#ifndef NABLA_MEMORY_NEED_H
#define NABLA_MEMORY_NEED_H

#include <stdint.h>

/* a + b and a * b, or UINT64_MAX when the true result does not fit. */
static inline uint64_t nb_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
static inline uint64_t nb_sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Memory of three kinds, which count against different limits. */
typedef struct nb_memory_need {
    uint64_t bytes;     /* memory that will be written: counts against every limit */
    uint64_t reserved;  /* writable memory mapped but never touched (the part of OpenBLAS's
                         * buffers its packing does not reach, thread stacks): counts against
                         * ulimit -v and ulimit -d */
    uint64_t address;   /* address space reserved without access (the malloc arena glibc
                         * reserves for each thread): counts against ulimit -v only */
} nb_memory_need;

#endif /* NABLA_MEMORY_NEED_H */
