/* A guard against allocations the process cannot hold. Not part of the public API.
 *
 * malloc of a size beyond the machine's memory may well succeed on Linux (memory is
 * overcommitted), and the process is then killed when it touches the pages; under
 * AddressSanitizer the allocation itself aborts. Under the process's own limits it is worse:
 * when an address-space limit (ulimit -v) or a data limit (ulimit -d) refuses OpenBLAS its
 * buffer, OpenBLAS retries forever, at full CPU. Sizes that come from files and options are
 * therefore checked here first, against every limit the process has, so that they fail with a
 * message instead:
 * - ulimit -v (RLIMIT_AS) less the address space already mapped (VmSize);
 * - ulimit -d (RLIMIT_DATA) less the private writable memory already mapped (VmData);
 * - the memory limit of the process's cgroups less their usage (cgroup_memory.h);
 * - the machine's MemAvailable plus SwapFree. */
#ifndef NABLA_MEMCHECK_H
#define NABLA_MEMCHECK_H

#include <stdint.h>

#include "nabla.h"

/* a + b and a * b, or UINT64_MAX when the true result does not fit. */
uint64_t nb_sat_add(uint64_t a, uint64_t b);
uint64_t nb_sat_mul(uint64_t a, uint64_t b);

/* Memory of three kinds, which count against different limits. */
typedef struct nb_memory_need {
    uint64_t bytes;     /* memory that will be written: counts against every limit */
    uint64_t reserved;  /* writable memory mapped but mostly never touched (OpenBLAS's buffers,
                         * thread stacks): counts against ulimit -v and ulimit -d */
    uint64_t address;   /* address space reserved without access (the malloc arena glibc
                         * reserves for each thread): counts against ulimit -v only */
} nb_memory_need;

/* The bytes this process can still write: the least room over all its limits (above). */
uint64_t nb_memory_available(void);

/* 0 when `bytes` fit every limit, else -1 with
 * "out of memory: <what> needs N MB, but the process may use M MB more (<limit>)", naming the
 * limit that binds: "ulimit -v", "ulimit -d", "the memory limit of cgroup <dir>" or "the
 * machine's available memory". */
int nb_check_memory(uint64_t bytes, const char *what, nb_error *err);

/* A named part of a need, for the message. */
typedef struct nb_memory_part {
    const char *name;
    uint64_t bytes;
} nb_memory_part;

/* The check for memory that graphs will run with (a compiled graph, a trainer's state): the
 * parts, plus what the thread pool will add the first time it runs a matrix product and does
 * not hold yet (nb_pool_pending_memory: OpenBLAS's buffers, the threads' stacks), plus
 * NB_RUN_MARGIN for the small allocations around them. Made before anything calls OpenBLAS,
 * which would otherwise spin when its buffer is refused. The message lists the parts:
 * "out of memory: <what> needs N MB (<part> X MB, ..., OpenBLAS's buffers and the stacks of
 * T threads Y MB), but the process may use M MB more (<limit>)", M being the room less the
 * margin. */
int nb_check_run_memory(const char *what, const nb_memory_part *parts, int n_parts,
                        nb_error *err);

#endif /* NABLA_MEMCHECK_H */
