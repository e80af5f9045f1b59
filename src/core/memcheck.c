/* Checks sizes against what this process may still use before allocating them. See
 * memcheck.h. */
#include "core/memcheck.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/cgroup_memory.h"
#include "core/pool.h"

/* What a run keeps for the small allocations around the big ones it checks (messages, JSON,
 * metrics text, a checkpoint's header, stdio buffers, malloc's own overhead). Measured with the
 * check's margin set to 0: the least `ulimit -v` and `ulimit -d` under which runs of train (1 to
 * 1500 epochs, 1 or 2 threads, with batch norm, traces and evaluations), eval and report
 * succeed were at most 1.3 MB above what the check accepted (the metrics 1500 epochs add to
 * every checkpoint). README, "Memory, threads and wrappers". */
#define NB_RUN_MARGIN (UINT64_C(32) << 20)

/* ---- what the process may still use, limit by limit ---- */

enum { LIMIT_AS, LIMIT_DATA, LIMIT_CGROUP, LIMIT_MACHINE, N_LIMITS };

typedef struct room {
    int limited;      /* 0: no such limit */
    uint64_t bytes;   /* what is left of it now */
    uint64_t total;   /* the limit itself */
    uint64_t own;     /* what this process holds of what the limit counts */
    char name[4300];  /* the limit, for messages */
} room;

/* VmSize, VmData and RssAnon of /proc/self/status, in bytes (0 when unknown). */
typedef struct mapped {
    uint64_t size, data, anon;
} mapped;

static mapped mapped_now(void)
{
    mapped m = {0, 0, 0};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
            m.size = nb_sat_mul(kb, 1024);
        else if (sscanf(line, "VmData: %llu kB", &kb) == 1)
            m.data = nb_sat_mul(kb, 1024);
        else if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            m.anon = nb_sat_mul(kb, 1024);
    }
    fclose(f);
    return m;
}

/* An rlimit counts this process alone: all it counts is the process's own. */
static void rlimit_room(int resource, uint64_t used, const char *name, room *r)
{
    struct rlimit lim;
    if (getrlimit(resource, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return;
    r->limited = 1;
    r->total = (uint64_t)lim.rlim_cur;
    r->own = used;
    r->bytes = r->total > used ? r->total - used : 0;
    snprintf(r->name, sizeof r->name, "%s", name);
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return UINT64_MAX;   /* unknown: let the allocator decide */
    return nb_sat_mul((uint64_t)pages, (uint64_t)size);
}

/* MemAvailable plus SwapFree from /proc/meminfo, and MemTotal plus SwapTotal; the physical
 * memory for both when it cannot be read. */
static void machine_memory(uint64_t *available, uint64_t *total)
{
    *available = *total = physical_memory();
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return;
    char line[256];
    uint64_t free_now = 0, all = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
            sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
            free_now = nb_sat_add(free_now, nb_sat_mul(kb, 1024));
            found |= 1;
        } else if (sscanf(line, "MemTotal: %llu kB", &kb) == 1 ||
                   sscanf(line, "SwapTotal: %llu kB", &kb) == 1) {
            all = nb_sat_add(all, nb_sat_mul(kb, 1024));
            found |= 2;
        }
    }
    fclose(f);
    if (found & 1)
        *available = free_now;
    if (found & 2)
        *total = all;
}

static void rooms_now(room r[N_LIMITS])
{
    memset(r, 0, N_LIMITS * sizeof *r);
    mapped m = mapped_now();
    rlimit_room(RLIMIT_AS, m.size, "ulimit -v", &r[LIMIT_AS]);
    rlimit_room(RLIMIT_DATA, m.data, "ulimit -d", &r[LIMIT_DATA]);
    /* A cgroup and the machine count every process's written memory; this process's own
     * part is its anonymous resident memory (its page cache can be reclaimed). */
    char where[4200];
    room *c = &r[LIMIT_CGROUP];
    if (nb_cgroup_memory_room(&c->bytes, &c->total, where, sizeof where)) {
        c->limited = 1;
        c->own = m.anon;
        snprintf(c->name, sizeof c->name, "the memory limit of cgroup %s", where);
    }
    room *all = &r[LIMIT_MACHINE];
    all->limited = 1;
    all->own = m.anon;
    machine_memory(&all->bytes, &all->total);
    snprintf(all->name, sizeof all->name, "the machine's available memory");
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

/* A need in MB rounded up, the room rounded down (mb): a need that does not fit never reads
 * as equal to the room, or less. */
static unsigned long long mb_up(uint64_t bytes)
{
    return (unsigned long long)(nb_sat_add(bytes, (UINT64_C(1) << 20) - 1) >> 20);
}

/* The first limit the need does not fit with `margin` to spare, or -1. */
static int binding_limit(const nb_memory_need *need, uint64_t margin, const room r[N_LIMITS])
{
    for (int i = 0; i < N_LIMITS; i++)
        if (r[i].limited && nb_sat_add(need_under(need, i), margin) > r[i].bytes)
            return i;
    return -1;
}

/* Whether the need could not fit under some limit even were the process alone there: it needs
 * more than the limit's total less what the process holds itself, or what others hold there
 * is less than NB_RUN_MARGIN, within what this process's own small allocations come to
 * (memory it holds that the count of its own misses: its page cache, malloc's free lists):
 * then freeing memory elsewhere would not help either. */
static int never_fits(const nb_memory_need *need, uint64_t margin, const room r[N_LIMITS])
{
    for (int i = 0; i < N_LIMITS; i++) {
        if (!r[i].limited)
            continue;
        uint64_t want = nb_sat_add(need_under(need, i), margin);
        if (want <= r[i].bytes)
            continue;   /* this limit does not refuse it */
        uint64_t own_and_free = nb_sat_add(r[i].own, r[i].bytes);
        uint64_t others = r[i].total > own_and_free ? r[i].total - own_and_free : 0;
        if (nb_sat_add(want, r[i].own) > r[i].total || others < NB_RUN_MARGIN)
            return 1;
    }
    return 0;
}

static nb_memory_verdict verdict = NB_MEMORY_FITS;
static nb_threads_lowered lowered;
static int have_lowered;

nb_memory_verdict nb_memory_verdict_take(void)
{
    nb_memory_verdict v = verdict;
    verdict = NB_MEMORY_FITS;
    return v;
}

int nb_memory_threads_lowered(nb_threads_lowered *out)
{
    if (have_lowered && out)
        *out = lowered;
    return have_lowered;
}

/* A refusal of `need`, whose part `fixed` every run needs whatever its configuration. */
static void note_refusal(const nb_memory_need *need, const nb_memory_need *fixed,
                         uint64_t margin, const room r[N_LIMITS])
{
    nb_memory_verdict v = !never_fits(need, margin, r) ? NB_MEMORY_SHORT_NOW
                          : never_fits(fixed, margin, r) ? NB_MEMORY_NO_RUN_FITS
                                                         : NB_MEMORY_NEVER_FITS;
    if (v > verdict)
        verdict = v;
}

/* " (ulimit -v, 1600 MB in all)" */
static void limit_text(const room *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "(%s, %llu MB in all)", r->name, mb(r->total));
}

static int fail_room(nb_error *err, const char *what, uint64_t need, const char *parts,
                     uint64_t margin, const room *r, const char *hint)
{
    if (need == UINT64_MAX)
        return nb_fail(err, "out of memory: %s needs more than 2^64 bytes", what);
    uint64_t may = r->bytes > margin ? r->bytes - margin : 0;
    char limit[4400];
    limit_text(r, limit, sizeof limit);
    return nb_fail(err, "out of memory: %s needs %llu MB%s, but the process may use %llu MB "
                        "more %s%s",
                   what, mb_up(need), parts, mb(may), limit, hint);
}

int nb_check_memory(uint64_t bytes, const char *what, nb_error *err)
{
    nb_memory_need need = {bytes, 0, 0};
    room r[N_LIMITS];
    rooms_now(r);
    int limit = binding_limit(&need, 0, r);
    if (limit < 0)
        return 0;
    nb_memory_need nothing = {0, 0, 0};
    note_refusal(&need, &nothing, 0, r);
    return fail_room(err, what, bytes, "", 0, &r[limit], "");
}

/* The parts and the pool of `threads` threads, as one need. */
static nb_memory_need run_need(const nb_memory_part *parts, int n_parts, int threads,
                               uint64_t rows, int with_batched)
{
    nb_memory_need need = nb_pool_memory_for(threads, rows);
    for (int i = 0; i < n_parts; i++)
        if (with_batched || !parts[i].batched)
            need.bytes = nb_sat_add(need.bytes, parts[i].bytes);
    return need;
}

int nb_check_run_memory(const char *what, const nb_memory_part *parts, int n_parts,
                        uint64_t rows, nb_error *err)
{
    room r[N_LIMITS];
    rooms_now(r);
    int want = nb_pool_threads();
    nb_memory_need need = {0, 0, 0};
    int limit = -1, first_limit = -1, threads;
    uint64_t first_need = 0;
    /* The most threads that fit, from the pool's own count down to one. */
    for (threads = want; threads >= 1; threads--) {
        need = run_need(parts, n_parts, threads, rows, 1);
        limit = binding_limit(&need, NB_RUN_MARGIN, r);
        if (limit < 0)
            break;
        if (threads == want) {
            first_limit = limit;
            first_need = need_under(&need, limit);
        }
    }
    if (limit < 0) {
        if (threads < want) {
            nb_set_threads(threads);
            have_lowered = 1;
            lowered.from = want;
            lowered.to = threads;
            char where[4400];
            limit_text(&r[first_limit], where, sizeof where);
            uint64_t left = r[first_limit].bytes;
            snprintf(lowered.why, sizeof lowered.why, "%.64s needs %llu MB with %d threads, but "
                     "the process may use %llu MB more %.300s", what, mb_up(first_need), want,
                     mb(left > NB_RUN_MARGIN ? left - NB_RUN_MARGIN : 0), where);
        }
        return 0;
    }
    /* Not even one thread fits: the message gives the need with one. */
    nb_memory_need fixed = nb_pool_memory_for(1, 1);
    note_refusal(&need, &fixed, NB_RUN_MARGIN, r);
    /* " (weights 520 MB, ..., OpenBLAS's buffers and the stacks of 1 thread 150 MB)": the
     * parts of a megabyte or more, the pool's as it counts under this limit. */
    char list[512] = "";
    size_t len = 0;
    nb_memory_need pool = nb_pool_memory_for(1, rows);
    for (int i = 0; i <= n_parts && len < sizeof list; i++) {
        const char *name = i < n_parts ? parts[i].name : "OpenBLAS's buffers and the stacks of "
                                                          "1 thread";
        uint64_t bytes = i < n_parts ? parts[i].bytes : need_under(&pool, limit);
        if (bytes >= (1 << 20))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s %llu MB",
                                    len ? ", " : " (", name, mb(bytes));
    }
    if (len && len < sizeof list - 1)
        snprintf(list + len, sizeof list - len, ")");
    /* Whether batches of one row would fit instead: then the batch size is what is too big. */
    nb_memory_need unbatched = run_need(parts, n_parts, 1, 1, 0);
    int batch_helps = nb_sat_add(need_under(&unbatched, limit), NB_RUN_MARGIN) <=
                      r[limit].bytes;
    return fail_room(err, what, need_under(&need, limit), list, NB_RUN_MARGIN, &r[limit],
                     batch_helps ? "; with smaller batches it would fit" : "");
}
