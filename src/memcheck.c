/* Checks sizes against what this process may still use before allocating them. See
 * memcheck.h. */
#include "memcheck.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cgroup_memory.h"
#include "pool.h"

/* What a run keeps for the small allocations around the big ones it checks (messages, JSON,
 * metrics text, a checkpoint's header, stdio buffers, malloc's own overhead). Measured with the
 * check's margin set to 0: the least `ulimit -v` and `ulimit -d` under which runs of train (1 to
 * 1500 epochs, 1 or 2 threads, with batch norm, traces and evaluations), eval and report
 * succeed were at most 1.3 MB above what the check accepted (the metrics 1500 epochs add to
 * every checkpoint). README, "Memory, threads and wrappers". */
#define NB_RUN_MARGIN (UINT64_C(32) << 20)

uint64_t nb_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t nb_sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* ---- what the process may still use, limit by limit ---- */

enum { LIMIT_AS, LIMIT_DATA, LIMIT_CGROUP, LIMIT_MACHINE, N_LIMITS };

typedef struct room {
    int limited;      /* 0: no such limit */
    uint64_t bytes;
    char name[4300];  /* the limit, for messages */
} room;

/* VmSize and VmData of /proc/self/status, in bytes (0 when unknown). */
static void mapped_now(uint64_t *size, uint64_t *data)
{
    *size = *data = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
            *size = nb_sat_mul(kb, 1024);
        else if (sscanf(line, "VmData: %llu kB", &kb) == 1)
            *data = nb_sat_mul(kb, 1024);
    }
    fclose(f);
}

static void rlimit_room(int resource, uint64_t used, const char *name, room *r)
{
    struct rlimit lim;
    if (getrlimit(resource, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return;
    r->limited = 1;
    r->bytes = (uint64_t)lim.rlim_cur > used ? (uint64_t)lim.rlim_cur - used : 0;
    snprintf(r->name, sizeof r->name, "%s", name);
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return UINT64_MAX;   /* unknown: let the allocator decide */
    return nb_sat_mul((uint64_t)pages, (uint64_t)size);
}

/* MemAvailable plus SwapFree from /proc/meminfo, or the physical memory. */
static uint64_t machine_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return physical_memory();
    char line[256];
    uint64_t total = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
            sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
            total = nb_sat_add(total, nb_sat_mul(kb, 1024));
            found++;
        }
    }
    fclose(f);
    return found ? total : physical_memory();
}

static void rooms_now(room r[N_LIMITS])
{
    memset(r, 0, N_LIMITS * sizeof *r);
    uint64_t size, data;
    mapped_now(&size, &data);
    rlimit_room(RLIMIT_AS, size, "ulimit -v", &r[LIMIT_AS]);
    rlimit_room(RLIMIT_DATA, data, "ulimit -d", &r[LIMIT_DATA]);
    char where[4200];
    if (nb_cgroup_memory_room(&r[LIMIT_CGROUP].bytes, where, sizeof where)) {
        r[LIMIT_CGROUP].limited = 1;
        snprintf(r[LIMIT_CGROUP].name, sizeof r[LIMIT_CGROUP].name,
                 "the memory limit of cgroup %s", where);
    }
    r[LIMIT_MACHINE].limited = 1;
    r[LIMIT_MACHINE].bytes = machine_available();
    snprintf(r[LIMIT_MACHINE].name, sizeof r[LIMIT_MACHINE].name,
             "the machine's available memory");
}

/* What a need comes to under one limit (see nb_memory_need). */
static uint64_t need_under(const nb_memory_need *n, int limit)
{
    uint64_t v = n->bytes;
    if (limit == LIMIT_AS || limit == LIMIT_DATA)
        v = nb_sat_add(v, n->reserved);
    if (limit == LIMIT_AS)
        v = nb_sat_add(v, n->address);
    return v;
}

uint64_t nb_memory_available(void)
{
    room r[N_LIMITS];
    rooms_now(r);
    uint64_t least = UINT64_MAX;
    for (int i = 0; i < N_LIMITS; i++)
        if (r[i].limited && r[i].bytes < least)
            least = r[i].bytes;
    return least;
}

/* ---- the checks ---- */

static unsigned long long mb(uint64_t bytes)
{
    return (unsigned long long)(bytes >> 20);
}

/* The first limit the need does not fit with `margin` to spare, or -1. */
static int binding_limit(const nb_memory_need *need, uint64_t margin, room r[N_LIMITS])
{
    rooms_now(r);
    for (int i = 0; i < N_LIMITS; i++)
        if (r[i].limited && nb_sat_add(need_under(need, i), margin) > r[i].bytes)
            return i;
    return -1;
}

static int fail_room(nb_error *err, const char *what, uint64_t need, const char *parts,
                     uint64_t margin, const room *r)
{
    if (need == UINT64_MAX)
        return nb_fail(err, "out of memory: %s needs more than 2^64 bytes", what);
    uint64_t may = r->bytes > margin ? r->bytes - margin : 0;
    return nb_fail(err, "out of memory: %s needs %llu MB%s, but the process may use %llu MB "
                        "more (%s)",
                   what, mb(need), parts, mb(may), r->name);
}

int nb_check_memory(uint64_t bytes, const char *what, nb_error *err)
{
    nb_memory_need need = {bytes, 0, 0};
    room r[N_LIMITS];
    int limit = binding_limit(&need, 0, r);
    return limit < 0 ? 0 : fail_room(err, what, bytes, "", 0, &r[limit]);
}

int nb_check_run_memory(const char *what, const nb_memory_part *parts, int n_parts,
                        nb_error *err)
{
    int threads;
    nb_memory_need need = nb_pool_pending_memory(&threads);
    for (int i = 0; i < n_parts; i++)
        need.bytes = nb_sat_add(need.bytes, parts[i].bytes);
    room r[N_LIMITS];
    int limit = binding_limit(&need, NB_RUN_MARGIN, r);
    if (limit < 0)
        return 0;
    /* " (weights 520 MB, ..., OpenBLAS's buffers and the stacks of 2 threads 272 MB)": the
     * parts of a megabyte or more, the pool's as it counts under this limit. */
    char list[512] = "";
    size_t len = 0;
    uint64_t pool = need_under(&(nb_memory_need){0, need.reserved, need.address}, limit);
    for (int i = 0; i <= n_parts && len < sizeof list; i++) {
        const char *name = i < n_parts ? parts[i].name : NULL;
        uint64_t bytes = i < n_parts ? parts[i].bytes : pool;
        char pool_name[96];
        if (!name) {
            snprintf(pool_name, sizeof pool_name, "OpenBLAS's buffers and the stacks of %d "
                                                  "thread%s", threads, threads == 1 ? "" : "s");
            name = pool_name;
        }
        if (bytes >= (1 << 20))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s %llu MB",
                                    len ? ", " : " (", name, mb(bytes));
    }
    if (len && len < sizeof list - 1)
        snprintf(list + len, sizeof list - len, ")");
    return fail_room(err, what, need_under(&need, limit), list, NB_RUN_MARGIN, &r[limit]);
}
