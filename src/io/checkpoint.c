/* Checkpoints: a model file (the same tensors and architecture, so `nabla eval` and
 * --init-weights read it) plus the training state, with a checksum over all of it.
 *
 * Tensors: the model's; "optimizer.v.<param>" and "optimizer.s.<param>" (the optimizer's
 * moments, when it has them); "train.order" (int64, the data order); with early stopping, once
 * an epoch was best, "train.best.<name>" for each of the model's tensors (the best epoch's).
 * Metadata: the architecture; "nabla_checkpoint" (format version); the state's numbers
 * (doubles printed with 17 digits, so they read back exactly; with early stopping "best_epoch",
 * "best_value" and "since_best", which older checkpoints do not have); the caller's entries;
 * "crc32c", the CRC-32C of the data section and then of every other metadata entry.
 *
 * Files in the run directory, newest first: checkpoint.next.safetensors exists only between the
 * two renames of a save; checkpoint.safetensors; checkpoint.prev.safetensors. Each is written
 * whole under a temporary name and renamed, so none is ever half-written. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"
#include "core/graph_internal.h"
#include "core/little_endian.h"
#include "core/memcheck.h"
#include "io/model_io.h"
#include "nabla.h"
#include "io/safetensors_internal.h"
#include "train/early_stop.h"

#define FORMAT_VERSION "1"
#define BEST_PREFIX NB_CHECKPOINT_TENSOR_PREFIX_TRAIN "best."

enum { NEXT, CURRENT, PREVIOUS, N_FILES };
static const char *const file_names[N_FILES] = {
    "checkpoint.next.safetensors", "checkpoint.safetensors", "checkpoint.prev.safetensors"};

static int file_path(char *out, size_t size, const char *dir, int which)
{
    return snprintf(out, size, "%s/%s", dir, file_names[which]) < (int)size ? 0 : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int nb_checkpoint_check_files(const char *dir, nb_error *err)
{
    for (int which = NEXT; which < N_FILES; which++) {
        char path[4096];
        struct stat st;
        if (file_path(path, sizeof path, dir, which) != 0)
            return nb_fail(err, "checkpoint: the directory name is too long");
        if (lstat(path, &st) != 0) {
            if (errno == ENOENT)
                continue;
            return nb_fail(err, "%s: %s", path, strerror(errno));
        }
        if (!S_ISREG(st.st_mode))
            return nb_fail(err, "%s: is %s, not a checkpoint file; nabla keeps its checkpoints "
                                "as regular files, renamed and removed as the run goes, so it "
                                "leaves this alone: move it away",
                           path, nb_file_kind(st.st_mode));
    }
    return 0;
}

/* ---- saving ---- */

/* The state's numbers, as metadata text. */
typedef struct state_text {
    char epoch[24], batch[24], steps[24], samples[24], seconds[32], loss_sum[32], correct[24],
        seen[24], rng[72], t[24], n[24], best_epoch[24], best_value[32], since_best[24];
} state_text;

static void format_state(const nb_train_state *s, state_text *t)
{
    snprintf(t->epoch, sizeof t->epoch, "%d", s->epoch);
    snprintf(t->batch, sizeof t->batch, "%" PRId64, s->batch);
    snprintf(t->steps, sizeof t->steps, "%" PRId64, s->steps);
    snprintf(t->samples, sizeof t->samples, "%" PRId64, s->samples);
    snprintf(t->seconds, sizeof t->seconds, "%.17g", s->train_seconds);
    snprintf(t->loss_sum, sizeof t->loss_sum, "%.17g", s->loss_sum);
    snprintf(t->correct, sizeof t->correct, "%" PRId64, s->correct);
    snprintf(t->seen, sizeof t->seen, "%" PRId64, s->seen);
    snprintf(t->rng, sizeof t->rng, "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64,
             s->rng.s[0], s->rng.s[1], s->rng.s[2], s->rng.s[3]);
    snprintf(t->t, sizeof t->t, "%" PRId64, s->opt.t);
    snprintf(t->n, sizeof t->n, "%d", s->n);
    snprintf(t->best_epoch, sizeof t->best_epoch, "%d", s->best_epoch);
    snprintf(t->best_value, sizeof t->best_value, "%.17g", s->best_value);
    snprintf(t->since_best, sizeof t->since_best, "%d", s->since_best);
}

/* The optimizer moments of every parameter, then the order. The moments are written from
 * where they are (nb_le_view: no second copy of them in memory; owned[i] is a converted copy
 * on a big-endian host); the order becomes int64 in a buffer of its own. */
typedef struct state_tensors {
    nb_st_tensor *tensors;
    char **names;
    unsigned char **owned;
    int count;
} state_tensors;

static void state_tensors_free(state_tensors *t)
{
    for (int i = 0; t->names && t->owned && i < t->count; i++) {
        free(t->names[i]);
        free(t->owned[i]);
    }
    free(t->names);
    free(t->owned);
    free(t->tensors);
}

static int add_moment(state_tensors *t, const char *kind, const nb_named *p, const float *moment,
                      size_t offset)
{
    nb_tensor v = nb_node_value(p->node);
    size_t count = nb_tensor_numel(&v);
    size_t len = strlen(NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER) + strlen(kind) + strlen(p->name) + 2;
    char *name = malloc(len);
    if (!name)
        return -1;
    snprintf(name, len, "%s%s.%s", NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER, kind, p->name);
    int i = t->count++;
    nb_st_tensor *st = &t->tensors[i];
    t->names[i] = name;
    st->name = name;
    st->dtype = NB_F32;
    st->ndim = v.ndim;
    for (int d = 0; d < v.ndim; d++)
        st->shape[d] = v.shape[d];
    st->nbytes = count * 4;
    st->data = nb_le_view(moment + offset, count, 4, &t->owned[i]);
    return st->data || !st->nbytes ? 0 : -1;
}

/* Where the best epoch's copy of named tensor p is in s, and its element count and size. */
static void *best_copy_of(const nb_graph *g, const nb_train_state *s, const nb_named *p,
                          int counter_index, size_t *count)
{
    if (p->kind == NB_KIND_COUNTER) {
        *count = 1;
        return &s->best_counters[counter_index];
    }
    nb_tensor v = nb_node_value(p->node);
    *count = nb_tensor_numel(&v);
    return p->kind == NB_KIND_PARAM ? (void *)(s->best_params + (v.data - g->params))
                                    : (void *)(s->best_states + (v.data - g->states));
}

/* "train.best.<name>": the best epoch's copy of named tensor p, written from where it is. */
static int add_best(state_tensors *t, const nb_graph *g, const nb_train_state *s,
                    const nb_named *p, int counter_index)
{
    size_t count, len = strlen(BEST_PREFIX) + strlen(p->name) + 1;
    char *name = malloc(len);
    if (!name)
        return -1;
    snprintf(name, len, "%s%s", BEST_PREFIX, p->name);
    int i = t->count++;
    nb_st_tensor *st = &t->tensors[i];
    t->names[i] = name;
    st->name = name;
    void *copy = best_copy_of(g, s, p, counter_index, &count);
    if (p->kind == NB_KIND_COUNTER) {
        st->dtype = NB_I64;
        st->ndim = 0;
        st->nbytes = 8;
        st->data = nb_le_view(copy, 1, 8, &t->owned[i]);
    } else {
        nb_tensor v = nb_node_value(p->node);
        st->dtype = NB_F32;
        st->ndim = v.ndim;
        for (int d = 0; d < v.ndim; d++)
            st->shape[d] = v.shape[d];
        st->nbytes = count * 4;
        st->data = nb_le_view(copy, count, 4, &t->owned[i]);
    }
    return st->data || !st->nbytes ? 0 : -1;
}

static int build_state_tensors(const nb_model *m, const nb_train_state *s, state_tensors *t,
                               nb_error *err)
{
    memset(t, 0, sizeof *t);
    nb_graph *g = m->graph;
    int named = nb_graph_named_count(g);
    size_t n_params;
    const float *base = nb_graph_params(g, &n_params);
    if (s->opt.n != n_params)
        return nb_fail(err, "checkpoint: the optimizer has %zu parameters, the model %zu",
                       s->opt.n, n_params);
    t->tensors = calloc((size_t)named * 3 + 1, sizeof *t->tensors);
    t->names = calloc((size_t)named * 3 + 1, sizeof *t->names);
    t->owned = calloc((size_t)named * 3 + 1, sizeof *t->owned);
    if (!t->tensors || !t->names || !t->owned) {
        state_tensors_free(t);
        return nb_fail(err, "checkpoint: out of memory");
    }
    for (int i = 0; i < named; i++) {
        nb_named p = nb_graph_named(g, i);
        if (p.kind != NB_KIND_PARAM)
            continue;
        size_t offset = (size_t)(nb_node_value(p.node).data - base);
        if ((s->opt.v && add_moment(t, "v", &p, s->opt.v, offset) != 0) ||
            (s->opt.s && add_moment(t, "s", &p, s->opt.s, offset) != 0)) {
            state_tensors_free(t);
            return nb_fail(err, "checkpoint: out of memory");
        }
    }
    if (s->best_params && s->best_epoch >= 0)
        for (int i = 0, k = 0; i < named; i++) {
            nb_named p = nb_graph_named(g, i);
            if (add_best(t, g, s, &p, k) != 0) {
                state_tensors_free(t);
                return nb_fail(err, "checkpoint: out of memory");
            }
            k += p.kind == NB_KIND_COUNTER;
        }
    int i = t->count++;
    unsigned char *bytes = malloc((size_t)s->n * 8 + 1);
    if (!bytes) {
        state_tensors_free(t);
        return nb_fail(err, "checkpoint: out of memory for the data order of %d samples", s->n);
    }
    t->owned[i] = bytes;
    nb_st_tensor *order = &t->tensors[i];
    order->name = NB_CHECKPOINT_TENSOR_PREFIX_TRAIN "order";
    order->dtype = NB_I64;
    order->ndim = 1;
    order->shape[0] = s->n;
    order->nbytes = (size_t)s->n * 8;
    order->data = bytes;
    for (int k = 0; k < s->n; k++)
        nb_store_i64_le(bytes + 8 * (size_t)k, s->order[k]);
    return 0;
}

static int checkpoint_save(const char *dir, const nb_model *m, const nb_train_state *s,
                           const nb_st_meta *meta, int n_meta, int recorded, nb_error *err);

/* The save under way, for nb_abandon_writes: its files, its step count and how far it got
 * (FILLING while they are recorded: a handler reads them only in the later phases), and the
 * step count of the checkpoint the latest save put in place. A save that finds another under
 * way (another thread's) goes unrecorded. The counts are lock-free atomics (64-bit machines),
 * which a handler may read.
 * The new file is whole from the moment its temporary is renamed to checkpoint.next, which
 * happens inside the write (before it syncs the directory, still WRITING): a checkpoint.next
 * whose inode is not that of the one there before the save (left by a crash) is this save's. */
enum { SAVE_IDLE, SAVE_FILLING, SAVE_WRITING, SAVE_NEXT_WHOLE, SAVE_CURRENT_MOVED };
static struct {
    atomic_int phase;
    atomic_llong steps;      /* of the save under way */
    atomic_llong in_place;   /* of DIR/checkpoint.safetensors, as the last save left it; -1 */
    ino_t old_next;          /* the inode of a checkpoint.next there before the save; 0 */
    char next[4096], current[4096], previous[4096];
} saving = {.in_place = -1};

/* In a handler, during WRITING: whether this save's new file is whole already. */
static int next_is_new(void)
{
    struct stat st;
    return stat(saving.next, &st) == 0 && st.st_ino != saving.old_next;
}

/* Moves the recorded save to `phase`, if this save is the one recorded. */
static void save_phase(int recorded, int phase)
{
    if (recorded)
        atomic_store(&saving.phase, phase);
}

int64_t nb_abandon_writes(void)
{
    nb_remove_unfinished_files();
    switch (atomic_load(&saving.phase)) {
    case SAVE_WRITING:
        if (!next_is_new())
            break;
        /* fall through */
    case SAVE_NEXT_WHOLE:
        rename(saving.current, saving.previous);  /* fails harmlessly if there is none */
        /* fall through */
    case SAVE_CURRENT_MOVED:
        /* No next file: the save renamed it itself, just before the signal came. */
        if (rename(saving.next, saving.current) == 0 || errno == ENOENT)
            return atomic_load(&saving.steps);
        break;
    default:
        break;
    }
    return atomic_load(&saving.in_place);
}

int nb_checkpoint_save(const char *dir, const nb_model *m, const nb_train_state *s,
                       const nb_st_meta *meta, int n_meta, nb_error *err)
{
    int idle = SAVE_IDLE;
    int recorded = atomic_compare_exchange_strong(&saving.phase, &idle, SAVE_FILLING);
    int rc = checkpoint_save(dir, m, s, meta, n_meta, recorded, err);
    save_phase(recorded, SAVE_IDLE);
    return rc;
}

static int checkpoint_save(const char *dir, const nb_model *m, const nb_train_state *s,
                           const nb_st_meta *meta, int n_meta, int recorded, nb_error *err)
{
    char next[4096], current[4096], previous[4096];
    if (file_path(next, sizeof next, dir, NEXT) != 0 ||
        file_path(current, sizeof current, dir, CURRENT) != 0 ||
        file_path(previous, sizeof previous, dir, PREVIOUS) != 0)
        return nb_fail(err, "checkpoint: the directory name is too long");
    if (nb_checkpoint_check_files(dir, err) != 0)
        return -1;
    if (recorded) {
        memcpy(saving.next, next, sizeof next);
        memcpy(saving.current, current, sizeof current);
        memcpy(saving.previous, previous, sizeof previous);
        struct stat st;
        saving.old_next = stat(next, &st) == 0 ? st.st_ino : 0;
        atomic_store(&saving.steps, (long long)s->steps);
        save_phase(recorded, SAVE_WRITING);
    }
    state_tensors t;
    if (build_state_tensors(m, s, &t, err) != 0)
        return -1;
    state_text text;
    format_state(s, &text);
    const nb_st_meta own[] = {
        {NB_CHECKPOINT_KEY, FORMAT_VERSION},
        {"epoch", text.epoch},
        {"batch", text.batch},
        {"steps", text.steps},
        {"samples", text.samples},
        {"train_seconds", text.seconds},
        {"loss_sum", text.loss_sum},
        {"correct", text.correct},
        {"seen", text.seen},
        {"rng", text.rng},
        {"optimizer", (char *)nb_optimizer_name(s->opt.cfg.kind)},
        {"optimizer_t", text.t},
        {"train_samples", text.n},
        /* Early stopping's, last: left out without it. */
        {"best_epoch", text.best_epoch},
        {"best_value", text.best_value},
        {"since_best", text.since_best},
    };
    int n_own = (int)(sizeof own / sizeof own[0]) - (s->best_params ? 0 : 3);
    nb_st_meta *all = calloc((size_t)(n_own + n_meta), sizeof *all);
    if (!all) {
        state_tensors_free(&t);
        return nb_fail(err, "checkpoint: out of memory");
    }
    memcpy(all, own, (size_t)n_own * sizeof own[0]);
    for (int i = 0; i < n_meta; i++)
        all[n_own + i] = meta[i];
    int rc = nb_model_save_ex(m, next, t.tensors, t.count, all, n_own + n_meta, 1, err);
    free(all);
    state_tensors_free(&t);
    if (rc != 0)
        return -1;
    /* The new file is whole; now the old one steps back and the new one takes its place. */
    save_phase(recorded, SAVE_NEXT_WHOLE);
    if (exists(current) && rename(current, previous) != 0)
        return nb_fail(err, "checkpoint: cannot rename %s to %s: %s", current, previous,
                       strerror(errno));
    save_phase(recorded, SAVE_CURRENT_MOVED);
    if (rename(next, current) != 0)
        return nb_fail(err, "checkpoint: cannot rename %s to %s: %s", next, current,
                       strerror(errno));
    if (recorded)
        atomic_store(&saving.in_place, (long long)s->steps);
    return nb_sync_parent_dir(current, err);
}

int nb_checkpoint_remove(const char *dir, nb_error *err)
{
    if (nb_checkpoint_check_files(dir, err) != 0)
        return -1;
    for (int which = NEXT; which < N_FILES; which++) {
        char path[4096];
        if (file_path(path, sizeof path, dir, which) != 0)
            return nb_fail(err, "checkpoint: the directory name is too long");
        if (unlink(path) != 0 && errno != ENOENT)
            return nb_fail(err, "%s: cannot remove it: %s", path, strerror(errno));
    }
    return 0;
}

/* ---- reading ---- */

/* The CRC-32C of f's data section, read from its file a piece at a time: a checkpoint is
 * checked without holding it in memory. */
static int data_crc(const nb_st_file *f, uint32_t *crc, nb_error *err)
{
    enum { PIECE = 1 << 20 };
    if (nb_check_memory(PIECE, "checking a checkpoint", err) != 0)
        return -1;
    unsigned char *piece = malloc(PIECE);
    if (!piece)
        return nb_fail(err, "out of memory");
    uint64_t size = nb_st_data_size(f);
    int rc = 0;
    *crc = 0;
    for (uint64_t at = 0; at < size && rc == 0; at += PIECE) {
        size_t n = size - at < PIECE ? (size_t)(size - at) : PIECE;
        rc = nb_st_data_bytes(f, at, n, piece, err);
        if (rc == 0)
            *crc = nb_crc32c(*crc, piece, n);
    }
    free(piece);
    return rc;
}

int nb_checkpoint_read(const char *path, nb_st_file *f, nb_error *err)
{
    if (nb_st_open(path, f, err) != 0)
        return -1;
    const char *version = nb_st_meta_get(f, NB_CHECKPOINT_KEY);
    const char *crc_text = nb_st_meta_get(f, NB_CRC_KEY);
    int rc = 0;
    if (!version)
        rc = nb_fail(err, "%s: not a nabla checkpoint (no '%s' in its metadata)", path,
                     NB_CHECKPOINT_KEY);
    else if (strcmp(version, FORMAT_VERSION) != 0)
        rc = nb_fail(err, "%s: checkpoint format %s; this nabla reads format %s", path,
                     version, FORMAT_VERSION);
    else if (!crc_text)
        rc = nb_fail(err, "%s: the checkpoint has no checksum", path);
    if (rc == 0) {
        uint32_t crc;
        rc = data_crc(f, &crc, err);
        if (rc == 0)
            rc = nb_checksum_meta(&crc, f->meta, f->n_meta, err);
        char want[16];
        snprintf(want, sizeof want, "%08x", (unsigned)crc);
        if (rc == 0 && strcmp(want, crc_text) != 0)
            rc = nb_fail(err, "%s: the checkpoint is damaged: its contents have checksum %s, "
                              "its header says %.16s", path, want, crc_text);
    }
    if (rc != 0)
        nb_st_free(f);
    return rc;
}

/* Appends "; " and a reason to a list of them in buf. */
static void add_reason(char *buf, size_t size, const char *reason)
{
    size_t len = strlen(buf);
    /* A reason that does not fit is cut short: the message is for a person. */
    if (len + 1 < size && snprintf(buf + len, size - len, "%s%s", len ? "; " : "", reason) < 0)
        buf[len] = '\0';
}

int nb_checkpoint_open(const char *dir, nb_st_file *f, char *used, size_t used_size, char *note,
                       size_t note_size, nb_error *err)
{
    if (note_size)
        note[0] = '\0';
    /* Something other than a regular file at a checkpoint's name (a symbolic link, a
     * directory, a FIFO) is in the way of the checkpoints the resumed run will write, which
     * would rename or remove it: refused up front, by the rule saving applies. */
    nb_error blocked;
    int is_blocked = nb_checkpoint_check_files(dir, &blocked) != 0;
    char refused[1024] = ""; /* why each newer file was passed over */
    int seen = 0, found = 0;
    for (int which = NEXT; which < N_FILES; which++) {
        char path[4096];
        if (file_path(path, sizeof path, dir, which) != 0)
            return nb_fail(err, "checkpoint: the directory name is too long");
        struct stat st;
        if (lstat(path, &st) != 0) {
            /* checkpoint.next exists only in the middle of a save and checkpoint.prev only
             * from the second checkpoint on, but checkpoint.safetensors is always there once
             * a run has one: its absence before an older file is worth saying. */
            if (which == CURRENT && !found) {
                char missing[4200];
                snprintf(missing, sizeof missing, "%s: missing", path);
                add_reason(refused, sizeof refused, missing);
            }
            continue;
        }
        seen++;
        if (found || !S_ISREG(st.st_mode))   /* not regular: the check refused it */
            continue;
        nb_error why;
        nb_memory_verdict_take();
        if (nb_checkpoint_read(path, f, &why) == 0) {
            found = 1;
            snprintf(used, used_size, "%s", path);
        } else if (nb_memory_verdict_take() != NB_MEMORY_FITS) {
            /* Not the file's fault: it could not be checked for want of memory, and falling
             * back to an older one would say it was damaged. */
            return nb_fail(err, "%s (not found damaged: there was no memory to check it)",
                           why.msg);
        } else {
            add_reason(refused, sizeof refused, why.msg);
        }
    }
    if (is_blocked) {
        char intact[4200] = "";
        if (found) {
            snprintf(intact, sizeof intact, " (%s is intact)", used);
            nb_st_free(f);
        }
        return nb_fail(err, "%s%s", blocked.msg, intact);
    }
    if (found) {
        if (note_size)
            snprintf(note, note_size, "%s", refused);
        return 0;
    }
    if (!seen)
        return nb_fail(err, "%s has no checkpoint (%s)", dir, file_names[CURRENT]);
    return nb_fail(err, "%s has no usable checkpoint: %s", dir, refused);
}

/* ---- restoring ---- */

static int meta_i64(const nb_st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    nb_error *err)
{
    const char *s = nb_st_meta_get(f, key);
    if (!s)
        return nb_fail(err, "checkpoint: '%s' is missing from the metadata", key);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return nb_fail(err, "checkpoint: '%s' is '%.40s', not a whole number in [%lld, %lld]",
                       key, s, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int meta_double(const nb_st_file *f, const char *key, double *out, nb_error *err)
{
    const char *s = nb_st_meta_get(f, key);
    if (!s)
        return nb_fail(err, "checkpoint: '%s' is missing from the metadata", key);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0.0) || v > 1e300)
        return nb_fail(err, "checkpoint: '%s' is '%.40s', not a finite number >= 0", key, s);
    *out = v;
    return 0;
}

static int meta_rng(const nb_st_file *f, nb_rng *out, nb_error *err)
{
    const char *s = nb_st_meta_get(f, "rng");
    if (!s)
        return nb_fail(err, "checkpoint: 'rng' is missing from the metadata");
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 16);
        if (end - s != 16 || errno || *end != (i < 3 ? ',' : '\0'))
            return nb_fail(err, "checkpoint: 'rng' is not four 16-digit hex numbers");
        out->s[i] = v;
        s = end + (i < 3);
    }
    if (!(out->s[0] | out->s[1] | out->s[2] | out->s[3]))
        return nb_fail(err, "checkpoint: 'rng' is all zero, which no generator reaches");
    return 0;
}

/* The moment tensor `kind` of parameter p, its dtype and shape checked; NULL (and err set) if
 * wrong. */
static const nb_st_tensor *find_moment(const nb_st_file *f, const char *kind, const nb_named *p,
                                       nb_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s.%s", NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER, kind, p->name);
    const nb_st_tensor *st = nb_st_find(f, name);
    nb_tensor v = nb_node_value(p->node);
    if (!st) {
        nb_fail(err, "checkpoint: tensor '%s' is missing", name);
        return NULL;
    }
    int same = st->dtype == NB_F32 && st->ndim == v.ndim;
    for (int d = 0; same && d < v.ndim; d++)
        same = st->shape[d] == v.shape[d];
    if (!same) {
        nb_fail(err, "checkpoint: tensor '%s' does not have the dtype and shape of '%s'", name,
                p->name);
        return NULL;
    }
    return st;
}

/* Reads the moment `kind` of parameter p into place and checks its numbers: finite, and a
 * second moment not negative. */
static int read_moment(const nb_st_file *f, const char *kind, const nb_named *p, float *moment,
                       nb_error *err)
{
    const nb_st_tensor *st = find_moment(f, kind, p, err);
    size_t count = st ? st->nbytes / 4 : 0;
    if (!st || nb_st_read_floats(f, st, moment, count, err) != 0)
        return -1;
    for (size_t k = 0; k < count; k++)
        if (!isfinite(moment[k]) || (kind[0] == 's' && moment[k] < 0.0f))
            return nb_fail(err, "checkpoint: tensor '%s%s.%s' element %zu is %g",
                           NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER, kind, p->name, k,
                           (double)moment[k]);
    return 0;
}

/* Early stopping's numbers, when the checkpoint has them (older ones and runs without early
 * stopping do not): best_epoch -1 (none yet) or an epoch before the one in progress. */
static int meta_best(const nb_st_file *f, int64_t epoch, nb_train_state *in, nb_error *err)
{
    in->best_epoch = -1;
    in->best_value = 0.0;
    in->since_best = 0;
    if (!nb_st_meta_get(f, "best_epoch"))
        return 0;
    int64_t best, since;
    if (meta_i64(f, "best_epoch", -1, epoch - 1, &best, err) != 0 ||
        meta_i64(f, "since_best", 0, INT32_MAX, &since, err) != 0)
        return -1;
    const char *s = nb_st_meta_get(f, "best_value");
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || end == s || *end || errno || !isfinite(v))
        return nb_fail(err, "checkpoint: 'best_value' is '%.40s', not a finite number",
                       s ? s : "missing");
    in->best_epoch = (int)best;
    in->best_value = v;
    in->since_best = (int)since;
    return 0;
}

/* The best epoch's copy of named tensor p ("train.best.<name>"), its dtype and shape checked;
 * NULL (and err set) if wrong. */
static const nb_st_tensor *find_best(const nb_st_file *f, const nb_named *p, nb_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", BEST_PREFIX, p->name);
    const nb_st_tensor *st = nb_st_find(f, name);
    int same = st != NULL;
    if (same && p->kind == NB_KIND_COUNTER) {
        same = st->dtype == NB_I64 && st->ndim == 0;
    } else if (same) {
        nb_tensor v = nb_node_value(p->node);
        same = st->dtype == NB_F32 && st->ndim == v.ndim;
        for (int d = 0; same && d < v.ndim; d++)
            same = st->shape[d] == v.shape[d];
    }
    if (!same) {
        nb_fail(err, "checkpoint: it has a best epoch, but tensor '%s' is %s", name,
                st ? "not of the dtype and shape of the model's" : "missing");
        return NULL;
    }
    return st;
}

/* Reads the best epoch's copy of every named tensor into s (allocated here), checking its
 * numbers as the model's are checked: finite, counters not negative. */
static int read_best(const nb_st_file *f, const nb_graph *g, nb_train_state *s, nb_error *err)
{
    if (best_alloc(s, g, err) != 0)
        return -1;
    for (int i = 0, k = 0; i < g->n_named; i++) {
        nb_named p = g->named[i];
        const nb_st_tensor *st = find_best(f, &p, err);
        size_t count;
        void *copy = best_copy_of(g, s, &p, k, &count);
        if (!st)
            return -1;
        if (p.kind == NB_KIND_COUNTER) {
            unsigned char b[8];
            if (nb_st_tensor_bytes(f, st, 0, 8, b, err) != 0)
                return -1;
            s->best_counters[k++] = nb_load_i64_le(b);
            if (s->best_counters[k - 1] < 0)
                return nb_fail(err, "checkpoint: tensor '%s%s' is negative", BEST_PREFIX, p.name);
            continue;
        }
        float *x = copy;
        if (nb_st_read_floats(f, st, x, count, err) != 0)
            return -1;
        for (size_t e = 0; e < count; e++)
            if (!isfinite(x[e]))
                return nb_fail(err, "checkpoint: tensor '%s%s' element %zu is %g", BEST_PREFIX,
                               p.name, e, (double)x[e]);
    }
    return 0;
}

/* Reads the data order (int64 [n], a permutation of 0..n-1) into order, a piece at a time. */
static int read_order(const nb_st_file *f, int n, int32_t *order, nb_error *err)
{
    const nb_st_tensor *st = nb_st_find(f, NB_CHECKPOINT_TENSOR_PREFIX_TRAIN "order");
    if (!st || st->dtype != NB_I64 || st->ndim != 1 || st->shape[0] != n)
        return nb_fail(err, "checkpoint: 'train.order' must be int64 [%d], one entry per "
                            "training sample", n);
    enum { PIECE = 8192 };
    unsigned char *seen = calloc((size_t)n, 1), *piece = malloc(8 * PIECE);
    int rc = !seen || !piece ? nb_fail(err, "checkpoint: out of memory") : 0;
    for (int i = 0; i < n && rc == 0; i += PIECE) {
        int m = n - i < PIECE ? n - i : PIECE;
        rc = nb_st_tensor_bytes(f, st, 8 * (uint64_t)i, 8 * (size_t)m, piece, err);
        for (int j = 0; j < m && rc == 0; j++) {
            int64_t v = nb_load_i64_le(piece + 8 * (size_t)j);
            if (v < 0 || v >= n || seen[v])
                rc = nb_fail(err, "checkpoint: 'train.order' is not an order of %d samples "
                                  "(entry %d is %lld)", n, i + j, (long long)v);
            else {
                seen[v] = 1;
                order[i + j] = (int32_t)v;
            }
        }
    }
    free(seen);
    free(piece);
    return rc;
}

int nb_checkpoint_restore(const nb_st_file *f, nb_model *m, nb_train_state *s, nb_error *err)
{
    nb_train_state in = {0};
    int64_t epoch, t, n;
    if (meta_i64(f, "train_samples", 1, INT32_MAX, &n, err) != 0)
        return -1;
    if (n != s->n)
        return nb_fail(err, "checkpoint: it was taken on %lld training samples, this run has %d",
                       (long long)n, s->n);
    const char *opt = nb_st_meta_get(f, "optimizer");
    if (!opt || strcmp(opt, nb_optimizer_name(s->opt.cfg.kind)) != 0)
        return nb_fail(err, "checkpoint: its optimizer is %.40s, this run's %s",
                       opt ? opt : "missing", nb_optimizer_name(s->opt.cfg.kind));
    if (meta_i64(f, "epoch", 0, INT32_MAX, &epoch, err) != 0 ||
        meta_i64(f, "batch", 0, INT64_MAX, &in.batch, err) != 0 ||
        meta_i64(f, "steps", 0, INT64_MAX, &in.steps, err) != 0 ||
        meta_i64(f, "samples", 0, INT64_MAX, &in.samples, err) != 0 ||
        meta_i64(f, "correct", 0, INT64_MAX, &in.correct, err) != 0 ||
        meta_i64(f, "seen", 0, INT64_MAX, &in.seen, err) != 0 ||
        meta_i64(f, "optimizer_t", 0, INT64_MAX, &t, err) != 0 ||
        meta_double(f, "train_seconds", &in.train_seconds, err) != 0 ||
        meta_double(f, "loss_sum", &in.loss_sum, err) != 0 || meta_rng(f, &in.rng, err) != 0 ||
        meta_best(f, epoch, &in, err) != 0)
        return -1;
    if (in.correct > in.seen || in.seen > in.samples || in.batch > in.steps)
        return nb_fail(err, "checkpoint: its counts do not add up (correct %lld, seen %lld, "
                            "samples %lld)", (long long)in.correct, (long long)in.seen,
                       (long long)in.samples);
    nb_graph *g = m->graph;
    size_t n_params;
    float *base = nb_graph_params(g, &n_params);
    if (n_params != s->opt.n)
        return nb_fail(err, "checkpoint: the model has %zu parameters, the optimizer %zu",
                       n_params, s->opt.n);
    int named = nb_graph_named_count(g);
    for (int i = 0; i < named; i++) {
        nb_named p = nb_graph_named(g, i);
        if (p.kind != NB_KIND_PARAM)
            continue;
        if ((s->opt.v && !find_moment(f, "v", &p, err)) ||
            (s->opt.s && !find_moment(f, "s", &p, err)))
            return -1;
    }
    for (int i = 0; in.best_epoch >= 0 && i < named; i++) {
        nb_named p = nb_graph_named(g, i);
        if (!find_best(f, &p, err))
            return -1;
    }
    /* Names and shapes checked: the numbers are read straight into the model and the state
     * (a file of nb_st_open is never copied whole into memory) and checked there. */
    if (nb_model_apply_weights(m, f, "checkpoint", err) != 0 ||
        read_order(f, s->n, s->order, err) != 0 ||
        (in.best_epoch >= 0 && read_best(f, g, s, err) != 0))
        return -1;
    for (int i = 0; i < named; i++) {
        nb_named p = nb_graph_named(g, i);
        if (p.kind != NB_KIND_PARAM)
            continue;
        size_t offset = (size_t)(nb_node_value(p.node).data - base);
        if ((s->opt.v && read_moment(f, "v", &p, s->opt.v + offset, err) != 0) ||
            (s->opt.s && read_moment(f, "s", &p, s->opt.s + offset, err) != 0))
            return -1;
    }
    s->epoch = (int)epoch;
    s->batch = in.batch;
    s->steps = in.steps;
    s->samples = in.samples;
    s->train_seconds = in.train_seconds;
    s->loss_sum = in.loss_sum;
    s->correct = in.correct;
    s->seen = in.seen;
    s->rng = in.rng;
    s->opt.t = t;
    s->best_epoch = in.best_epoch;
    s->best_value = in.best_value;
    s->since_best = in.since_best;
    return 0;
}
