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
 * - the machine's MemAvailable plus SwapFree.
 * The first two count address space; the last two count memory that is written (resident):
 * memory allocated but not yet touched is not in a cgroup's usage, so whatever a check counted
 * is touched as soon as it is allocated (graph.c), and the part of OpenBLAS's buffer its
 * packing writes is counted as written (pool.h). */
#ifndef NABLA_MEMCHECK_H
#define NABLA_MEMCHECK_H

#include <stdint.h>

#include "core/memory_need.h"
#include "nabla.h"


/* The bytes this process can still write: the least room over all its limits (above). */
uint64_t nb_memory_available(void);

/* 0 when `bytes` fit every limit, else -1 with
 * "out of memory: <what> needs N MB, but the process may use M MB more (<limit>, T MB in
 * all)", naming the limit that binds: "ulimit -v", "ulimit -d", "the memory limit of cgroup
 * <dir>" or "the machine's available memory". */
int nb_check_memory(uint64_t bytes, const char *what, nb_error *err);

/* A named part of a need, for the message. */
typedef struct nb_memory_part {
    const char *name;
    uint64_t bytes;
    int batched;   /* grows with the batch size (activations): a smaller batch needs less */
} nb_memory_part;

/* The check for memory that graphs will run with (a compiled graph, a trainer's state): the
 * parts, plus what the thread pool will add the first time it runs a matrix product
 * (nb_pool_memory_for: OpenBLAS's buffers, the part of them its packing writes for products
 * of up to `rows` rows, the threads' stacks), plus NB_RUN_MARGIN for the small allocations
 * around them. Made before anything calls OpenBLAS, which would otherwise spin when its buffer
 * is refused.
 *
 * Results do not depend on the thread count, so when the need does not fit with the pool's
 * threads but does with fewer, the pool is set to the most that fit (nb_set_threads) and the
 * check passes; nb_memory_threads_lowered tells. When it does not fit even with one thread:
 * "out of memory: <what> needs N MB (<part> X MB, ..., OpenBLAS's buffers and the stacks of
 * 1 thread Y MB), but the process may use M MB more (<limit>, T MB in all)", M being the room
 * less the margin, and "; with smaller batches it would fit" when the parts that grow with the
 * batch are what does not fit. */
int nb_check_run_memory(const char *what, const nb_memory_part *parts, int n_parts,
                        uint64_t rows, nb_error *err);

/* Whether a check lowered the thread count (the latest that did): from and to, and why
 * ("training needs 360 MB with 2 threads, but the process may use 330 MB more (ulimit -v)").
 * Returns 1 and fills *out, or 0. */
typedef struct nb_threads_lowered {
    int from, to;
    char why[512];
} nb_threads_lowered;
int nb_memory_threads_lowered(nb_threads_lowered *out);

/* What the checks that refused found, since the last call (which forgets it):
 * - NB_MEMORY_FITS: none refused;
 * - NB_MEMORY_SHORT_NOW: it would fit, but not now: other processes (in the cgroup, on the
 *   machine) hold the rest. Freeing memory, or running fewer processes at once, helps.
 * - NB_MEMORY_NEVER_FITS: the need could not fit even were the process alone under the limit
 *   that refused it, with one thread: it needs more than that limit holds in all (ulimit -v or
 *   -d, the cgroup's limit, the machine's memory and swap) less what this process holds
 *   already. Nothing but a smaller need helps;
 * - NB_MEMORY_NO_RUN_FITS: as NEVER_FITS, but not even what every run needs whatever its
 *   configuration (OpenBLAS's buffers and the stack of one thread for products of one row, and
 *   the margin for small allocations) could fit: the limit is too small for any run, so the
 *   refusal says nothing of this run's configuration. Only a larger limit helps.
 * The strongest refusal (in that order) stays until the call. */
typedef enum nb_memory_verdict {
    NB_MEMORY_FITS,
    NB_MEMORY_SHORT_NOW,
    NB_MEMORY_NEVER_FITS,
    NB_MEMORY_NO_RUN_FITS,
} nb_memory_verdict;
nb_memory_verdict nb_memory_verdict_take(void);

#endif /* NABLA_MEMCHECK_H */
