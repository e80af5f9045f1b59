/* A guard against allocations the machine cannot hold. Not part of the public API.
 *
 * malloc of a size beyond the machine's memory may well succeed on Linux (memory is
 * overcommitted), and the process is then killed when it touches the pages; under
 * AddressSanitizer the allocation itself aborts. Sizes that come from files and options are
 * therefore checked here first, so that they fail with a message instead. */
#ifndef NABLA_MEMCHECK_H
#define NABLA_MEMCHECK_H

#include <stdint.h>

#include "nabla.h"

/* a + b and a * b, or UINT64_MAX when the true result does not fit. */
uint64_t nb_sat_add(uint64_t a, uint64_t b);
uint64_t nb_sat_mul(uint64_t a, uint64_t b);

/* Bytes this process can still expect to get: MemAvailable plus SwapFree from /proc/meminfo,
 * or the physical memory where that file cannot be read. */
uint64_t nb_memory_available(void);

/* 0 when `bytes` fit in nb_memory_available(), else -1 with
 * "out of memory: <what> needs N MB, but only M MB are available". */
int nb_check_memory(uint64_t bytes, const char *what, nb_error *err);

#endif /* NABLA_MEMCHECK_H */
