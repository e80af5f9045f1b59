/* The process-wide thread pool (see pool.h).
 *
 * Hand-off: thread 0 publishes the job and bumps `generation`; workers notice the new
 * generation (spinning for a while, then asleep on a condition variable), run the job and count
 * themselves in `done`. The sleep protocol is the usual one: a worker registers in `sleepers`
 * and re-checks `generation` under the mutex before waiting; the publisher bumps `generation`
 * before reading `sleepers` (both sequentially consistent), so one of them always sees the
 * other and no wake-up is lost. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "core/pool.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "nabla.h"

/* About a millisecond of polling before a worker sleeps, and before a barrier yields. */
enum { JOB_SPINS = 20000, BARRIER_SPINS = 10000 };

/* What a thread costs beyond its stack, in address space, measured (gdb on a process spinning
 * in OpenBLAS's allocator under ulimit -v, and /proc/self/status before and after a thread's
 * first product) with Debian 12's OpenBLAS 0.3.21 and glibc 2.36:
 * - OpenBLAS maps one buffer for each of the threads that call it at the same time
 *   (blas_memory_alloc, 128 MiB of which a product touches a few MiB) and keeps it; when the
 *   mapping is refused it tries again forever;
 * - glibc reserves a malloc arena of 64 MiB of address space (inaccessible until used) for a
 *   thread the first time it calls malloc or free. */
#define BLAS_BUFFER_BYTES (UINT64_C(128) << 20)
#define MALLOC_ARENA_BYTES (UINT64_C(64) << 20)

/* How much of its buffer OpenBLAS writes: a product C = A B packs a panel of op(A) (P x Q
 * floats) and one of op(B) (Q x R) into it, and with cblas's row-major interface the panel
 * that grows is Q floats by the rows of C, up to the whole buffer. Measured (the rise of
 * RssAnon over single-threaded products of every transpose, Debian 12's OpenBLAS 0.3.21):
 * 1.25 KiB a row and 1 MiB besides with the Zen and Haswell kernels (Q = 320), 0.5 KiB a row
 * with the generic one; counted as 2 KiB a row (Q up to 512) and 4 MiB. In a cgroup this is
 * what the kernel charges, not the 128 MiB mapped: a 3000x3000 model on batches of 500 was
 * killed by a cgroup's OOM killer when nothing of it was counted. */
#define BLAS_PACKED_FIXED (UINT64_C(4) << 20)
#define BLAS_PACKED_PER_ROW UINT64_C(2048)

struct nb_pool {
    int nthreads;
    pid_t owner;                  /* a forked child has no workers: it builds its own pool */
    pthread_t *workers;           /* nthreads - 1 of them; thread 0 is the caller */
    nb_job_fn fn;
    void *ctx;
    atomic_uint generation;
    atomic_int done;
    atomic_int busy;
    atomic_int sleepers;
    atomic_int quit;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_int barrier_count;
    atomic_uint barrier_generation;
};

typedef struct worker_arg {
    nb_pool *pool;
    int tid;
} worker_arg;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (int)n : 1;
}

/* The cores this process may run on. */
static int default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return online_cores();
}

static void wait_for_job(nb_pool *p, unsigned seen)
{
    for (int spins = 0; atomic_load(&p->generation) == seen && !atomic_load(&p->quit);) {
        if (++spins < JOB_SPINS) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->mutex);
        atomic_fetch_add(&p->sleepers, 1);
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
            pthread_cond_wait(&p->wake, &p->mutex);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mutex);
        spins = 0;
    }
}

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    nb_pool *p = w->pool;
    nb_exec ex = {p, w->tid, p->nthreads};
    free(w);
    unsigned seen = 0;
    for (;;) {
        wait_for_job(p, seen);
        if (atomic_load(&p->quit))
            return NULL;
        seen = atomic_load(&p->generation);
        p->fn(&ex, p->ctx);
        atomic_fetch_add(&p->done, 1);
    }
}

static void pool_free(nb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->nthreads - 1; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p);
}

/* NULL when threads cannot be had: the caller then runs jobs alone. */
static nb_pool *pool_new(int nthreads)
{
    nb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nthreads = 1;
    p->owner = getpid();
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)nthreads, sizeof *p->workers);
    if (!p->workers) {
        pool_free(p);
        return NULL;
    }
    /* Workers read nthreads when they start, so it is final before the first one runs. */
    p->nthreads = nthreads;
    for (int i = 1; i < nthreads; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (w) {
            w->pool = p;
            w->tid = i;
        }
        if (!w || pthread_create(&p->workers[i - 1], NULL, worker_main, w) != 0) {
            free(w);
            p->nthreads = i; /* join the ones that started */
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static nb_pool *the_pool;
static int requested_threads; /* 0: the default */
static int blas_single_threaded;

static int wanted_threads(void)
{
    return requested_threads > 0 ? requested_threads : default_threads();
}

void nb_set_threads(int n)
{
    if (n < 1)
        return;
    pthread_mutex_lock(&pool_lock);
    requested_threads = n;
    if (the_pool && the_pool->owner == getpid() && the_pool->nthreads != n &&
        !atomic_load(&the_pool->busy)) {
        pool_free(the_pool);
        the_pool = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
}

int nb_pool_threads(void)
{
    pthread_mutex_lock(&pool_lock);
    int n = the_pool && the_pool->owner == getpid() ? the_pool->nthreads : wanted_threads();
    pthread_mutex_unlock(&pool_lock);
    return n;
}

static nb_pool *get_pool(void)
{
    pthread_mutex_lock(&pool_lock);
    if (the_pool && the_pool->owner != getpid())
        the_pool = NULL; /* inherited through fork(): its threads are not in this process */
    if (!blas_single_threaded) {
        /* The pool provides the parallelism; OpenBLAS threads on top would oversubscribe. */
        openblas_set_num_threads(1);
        blas_single_threaded = 1;
    }
    if (!the_pool && wanted_threads() > 1)
        the_pool = pool_new(wanted_threads());
    nb_pool *p = the_pool;
    pthread_mutex_unlock(&pool_lock);
    return p;
}

void nb_pool_start(void) { (void)get_pool(); }

/* A thread's stack as the pool creates it (the default attributes): its size and guard. */
static uint64_t thread_stack_bytes(void)
{
    size_t size = 8 << 20, guard = 4096;
    pthread_attr_t a;
    if (pthread_getattr_default_np(&a) == 0) {
        pthread_attr_getstacksize(&a, &size);
        pthread_attr_getguardsize(&a, &guard);
        pthread_attr_destroy(&a);
    }
    return (uint64_t)size + guard;
}

nb_memory_need nb_pool_memory_for(int threads, uint64_t rows)
{
    pthread_mutex_lock(&pool_lock);
    int started = the_pool && the_pool->owner == getpid() ? the_pool->nthreads : 0;
    pthread_mutex_unlock(&pool_lock);
    nb_memory_need need = {0, 0, 0};
    if (started != threads && threads > 1) {
        need.reserved = (uint64_t)(threads - 1) * thread_stack_bytes();
        need.address = (uint64_t)(threads - 1) * MALLOC_ARENA_BYTES;
    }
    /* OpenBLAS shares its buffers between the threads whose calls do not overlap and does not
     * say how many it has; they are counted as still to come, always. A process that has them
     * already (a report drawing several models) is asked for that room twice, never for too
     * little. Of each, the part its packing writes is memory a cgroup counts. */
    uint64_t packed = nb_sat_add(BLAS_PACKED_FIXED, nb_sat_mul(rows, BLAS_PACKED_PER_ROW));
    if (packed > BLAS_BUFFER_BYTES)
        packed = BLAS_BUFFER_BYTES;
    need.bytes = (uint64_t)threads * packed;
    need.reserved += (uint64_t)threads * (BLAS_BUFFER_BYTES - packed);
    return need;
}

int nb_product_parts(void)
{
    static atomic_int parts;
    int n = atomic_load(&parts);
    if (n == 0) {
        n = online_cores();
        atomic_store(&parts, n);
    }
    return n;
}

void nb_parallel(nb_job_fn fn, void *ctx)
{
    nb_pool *p = get_pool();
    int expected = 0;
    if (!p || p->nthreads < 2 || !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        nb_exec alone = {NULL, 0, 1};
        fn(&alone, ctx);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->done, 0);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    nb_exec ex = {p, 0, p->nthreads};
    fn(&ex, ctx);
    for (int spins = 0; atomic_load(&p->done) < p->nthreads - 1;)
        if (++spins < BARRIER_SPINS)
            cpu_relax();
        else
            sched_yield();
    atomic_store(&p->busy, 0);
}

void nb_barrier(const nb_exec *ex)
{
    nb_pool *p = ex->pool;
    if (!p || ex->nthreads < 2)
        return;
    unsigned gen = atomic_load(&p->barrier_generation);
    if (atomic_fetch_add(&p->barrier_count, 1) == ex->nthreads - 1) {
        atomic_store(&p->barrier_count, 0);
        atomic_fetch_add(&p->barrier_generation, 1);
        return;
    }
    for (int spins = 0; atomic_load(&p->barrier_generation) == gen;)
        if (++spins < BARRIER_SPINS)
            cpu_relax();
        else
            sched_yield();
}

void nb_split(const nb_exec *ex, size_t n, size_t align, size_t *begin, size_t *end)
{
    if (align < 1)
        align = 1;
    size_t share = (n + (size_t)ex->nthreads - 1) / (size_t)ex->nthreads;
    share = (share + align - 1) / align * align;
    size_t b = (size_t)ex->tid * share;
    *begin = b < n ? b : n;
    *end = b + share < n ? b + share : n;
    if (ex->tid == ex->nthreads - 1)
        *end = n;
}
