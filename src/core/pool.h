/* The library's one thread pool. Every parallel loop in nabla (the matrix products, split into
 * blocks; the elementwise ops; the optimizer step) runs on it, and OpenBLAS is kept to one
 * thread, so the cores are never oversubscribed.
 *
 * A job is a function run by every thread at once with its thread index; inside a job, threads
 * meet at barriers. The caller's thread is thread 0. Workers spin briefly between jobs (a
 * training step issues several jobs a millisecond apart) and then sleep. */
#ifndef NABLA_POOL_H
#define NABLA_POOL_H

#include <stddef.h>

#include "core/memory_need.h"

typedef struct nb_pool nb_pool;

/* What a job's function sees. */
typedef struct nb_exec {
    nb_pool *pool;   /* NULL when the job runs on the calling thread alone */
    int tid;         /* 0 .. nthreads-1 */
    int nthreads;
} nb_exec;

typedef void (*nb_job_fn)(const nb_exec *ex, void *ctx);

/* Runs fn on every thread of the process-wide pool (created on first use with the thread count
 * of nb_set_threads, by default the cores this process may run on) and returns when all are
 * done. If the pool is busy (a job from another thread) or has one thread, fn runs on the
 * calling thread alone, with nthreads = 1. */
void nb_parallel(nb_job_fn fn, void *ctx);

/* Waits until every thread of the job has reached this barrier. */
void nb_barrier(const nb_exec *ex);

/* This thread's share [*begin, *end) of n items, split as evenly as possible in multiples of
 * `align` items (the last share takes the remainder). */
void nb_split(const nb_exec *ex, size_t n, size_t align, size_t *begin, size_t *end);

/* Starts the pool's threads now rather than at the first job (a trainer calls it before its
 * loop, which then allocates nothing). */
void nb_pool_start(void);

/* How many blocks a matrix product is cut into: the machine's cores (online), whatever the
 * thread count and whatever cores this process is allowed on. Each block is one cblas_sgemm
 * call, and OpenBLAS may sum in another order for another block shape, so cutting by the
 * thread count would make results depend on --threads; cut this way they do not (a thread
 * takes several blocks, or none). Not by the cores this process may run on either: mpirun
 * binds a rank to one core, taskset or a batch system restrict a process, and the same run
 * must give the same weights there as anywhere on the machine. */
int nb_product_parts(void);

/* The thread count jobs will run with. */
int nb_pool_threads(void);

/* What running matrix products on a pool of `threads` threads will add to the process: the
 * stacks of its threads and the malloc arena glibc reserves for each, unless the pool runs
 * with that many already; and an OpenBLAS buffer for each thread, of which the part its
 * packing writes for products whose results have up to `rows` rows counts as written memory
 * (the rest as reserved). memcheck.c counts this in every check of memory that will run a
 * graph, since OpenBLAS spins when a limit refuses it its buffer. */
nb_memory_need nb_pool_memory_for(int threads, uint64_t rows);

#endif
