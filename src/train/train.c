/* The training loop: shuffle, form a batch, forward, backward, one optimizer step over the flat
 * buffers; per epoch the learning rate from the schedule and an evaluation of dev and test.
 * Nothing is allocated inside the loop: the graph was compiled for the largest batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/graph_internal.h"
#include "core/memcheck.h"
#include "nn/evaluate.h"
#include "train/early_stop.h"
#include "train/optim_internal.h"
#include "train/train_ranks.h"

static int validate_config(const nb_model *m, const nb_dataset *train, const nb_train_config *cfg,
                           nb_error *err)
{
    if (!train || train->n < 1)
        return nb_fail(err, "the training set is empty");
    if (cfg->batch_size < 0)
        return nb_fail(err, "the batch size must be positive, not %d", cfg->batch_size);
    if (cfg->epochs < 0)
        return nb_fail(err, "the number of epochs must be at least 0, not %d", cfg->epochs);
    int batch = cfg->batch_size == 0 || cfg->batch_size > train->n ? train->n : cfg->batch_size;
    if (batch > nb_graph_max_batch(m->graph))
        return nb_fail(err, "batches of %d do not fit a model compiled for batches of %d", batch,
                       nb_graph_max_batch(m->graph));
    return check_compatible(m, train, "training", err);
}

int nb_train_state_init(nb_train_state *s, const nb_optim_config *optim, size_t n_params,
                        int n_samples, nb_error *err)
{
    memset(s, 0, sizeof *s);
    if (n_samples < 1)
        return nb_fail(err, "the training set is empty");
    /* The optimizer's moments and the order. */
    uint64_t need = nb_sat_add(
        nb_sat_mul(nb_sat_mul(n_params, (uint64_t)nb_optimizer_moments(optim->kind)),
                   sizeof(float)),
        (uint64_t)n_samples * sizeof(int32_t));
    if (nb_check_memory(need, "the optimizer state", err) != 0)
        return -1;
    if (nb_optimizer_init(&s->opt, optim, n_params, err) != 0)
        return -1;
    s->order = malloc((size_t)n_samples * sizeof *s->order);
    if (!s->order) {
        nb_optimizer_free(&s->opt);
        return nb_fail(err, "out of memory");
    }
    s->n = n_samples;
    for (int i = 0; i < n_samples; i++)
        s->order[i] = i;
    s->best_epoch = -1;
    return 0;
}

void nb_train_state_free(nb_train_state *s)
{
    if (!s)
        return;
    nb_optimizer_free(&s->opt);
    free(s->order);
    free(s->best_params);
    free(s->best_states);
    free(s->best_counters);
    s->order = NULL;
    s->best_params = s->best_states = NULL;
    s->best_counters = NULL;
}

/* Whether a state to resume fits this run: the same data and optimizer, a sane position. */
static int check_resume_state(const nb_train_state *s, const nb_train_config *cfg,
                              size_t n_params, int n_samples, nb_error *err)
{
    if (s->n != n_samples || s->opt.n != n_params || s->opt.cfg.kind != cfg->optim.kind ||
        !s->order)
        return nb_fail(err, "the state to resume has %d samples and %zu %s parameters, but this "
                            "run has %d and %zu %s", s->n, s->opt.n,
                       nb_optimizer_name(s->opt.cfg.kind), n_samples, n_params,
                       nb_optimizer_name(cfg->optim.kind));
    if (s->epoch < 0 || s->batch < 0 || s->steps < 0 || s->seen < 0 || s->since_best < 0 ||
        s->best_epoch < -1 || s->best_epoch >= s->epoch)
        return nb_fail(err, "the state to resume is not valid (negative position, or a best "
                            "epoch %d not before epoch %d)", s->best_epoch, s->epoch);
    /* An all-zero generator only ever draws 0, and the shuffle would never end. */
    if (!(s->rng.s[0] | s->rng.s[1] | s->rng.s[2] | s->rng.s[3]))
        return nb_fail(err, "the state to resume is not valid (its generator is all zero)");
    return 0;
}

/* The steps themselves, alone or in lockstep with other ranks, are in train_ranks.c. */

/* Batch norm's running statistics and counters from before the step in progress. A step whose
 * loss is not finite has already updated them in its forward pass (with NaN, typically); the
 * NaN guard puts them back along with the weights, so the model it keeps evaluates as it did
 * after the last good step. */
typedef struct stats_backup {
    float *states;
    int64_t *counters;
} stats_backup;

static int backup_init(stats_backup *b, const nb_graph *g, nb_error *err)
{
    b->states = malloc((g->n_states ? g->n_states : 1) * sizeof *b->states);
    b->counters = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *b->counters);
    if (!b->states || !b->counters) {
        free(b->states);
        free(b->counters);
        return nb_fail(err, "out of memory");
    }
    return 0;
}

static void backup_take(stats_backup *b, const nb_graph *g)
{
    if (g->n_states)
        memcpy(b->states, g->states, g->n_states * sizeof *b->states);
    for (int i = 0; i < g->n_nodes; i++)
        b->counters[i] = g->nodes[i]->counter;
}

static void backup_restore(const stats_backup *b, nb_graph *g)
{
    if (g->n_states)
        memcpy(g->states, b->states, g->n_states * sizeof *b->states);
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i]->counter = b->counters[i];
}

static void backup_free(stats_backup *b)
{
    free(b->states);
    free(b->counters);
}

/* Everything training adds to a graph of these sizes, checked at once before any of it is
 * allocated and before the first product calls OpenBLAS (which spins when a limit refuses it
 * its buffer): the optimizer state and the data order (unless the state to resume holds them
 * already), the spare parameter buffer, the NaN guard's copy of the batch-norm statistics,
 * what a checkpoint writes from a buffer of its own (the data order as int64), and early
 * stopping's copy of the best epoch's model (unless the state to resume holds it). */
enum { TRAIN_PARTS = 6 };
static void train_parts(const nb_graph_sizes *z, int has_spare, int samples, int has_state,
                        int has_best, const nb_train_config *cfg,
                        nb_memory_part parts[TRAIN_PARTS])
{
    uint64_t weights = nb_sat_mul(z->params, sizeof(float));
    uint64_t n = samples > 0 ? (uint64_t)samples : 0;
    int fresh = !has_state;
    parts[0] = (nb_memory_part){
        "optimizer state",
        fresh ? nb_sat_mul(weights, (uint64_t)nb_optimizer_moments(cfg->optim.kind)) : 0, 0};
    parts[1] = (nb_memory_part){"the data order", fresh ? n * sizeof(int32_t) : 0, 0};
    parts[2] = (nb_memory_part){"a second weight buffer", has_spare ? 0 : weights, 0};
    parts[3] = (nb_memory_part){"the NaN guard's statistics",
                                nb_sat_add(nb_sat_mul(z->states, sizeof(float)),
                                           nb_sat_mul(z->nodes, sizeof(int64_t))),
                                0};
    parts[4] = (nb_memory_part){"checkpoints' copy of the data order", n * sizeof(int64_t), 0};
    parts[5] = (nb_memory_part){"early stopping's copy of the best epoch's model",
                                cfg->early_stop > 0 && !has_best ? best_copy_bytes(z) : 0, 0};
}

int nb_train_check_memory(const nb_model *m, const nb_dataset *train, const nb_train_config *cfg,
                          nb_error *err)
{
    if (!m || !m->graph || !train || !cfg)
        return nb_fail(err, "no model, data or configuration to check");
    const nb_graph *g = m->graph;
    nb_graph_sizes z;
    nb_graph_measure(g, g->max_batch, &z);
    nb_memory_part parts[TRAIN_PARTS];
    train_parts(&z, g->spare_params != NULL, train->n, cfg->resume != NULL,
                cfg->resume && cfg->resume->best_params, cfg, parts);
    return nb_check_run_memory("training", parts, TRAIN_PARTS, z.rows, err);
}

int nb_train_check_model_memory(const nb_model_spec *spec, int max_batch,
                                const nb_dataset *train, const nb_train_config *cfg,
                                nb_error *err)
{
    if (!spec || !train || !cfg)
        return nb_fail(err, "no model, data or configuration to check");
    if (max_batch < 1)
        return nb_fail(err, "the largest batch must be at least 1, not %d", max_batch);
    nb_model shape;
    if (nb_model_construct(&shape, spec, err) != 0)
        return -1;
    nb_graph_sizes z;
    nb_graph_measure(shape.graph, max_batch, &z);
    nb_model_free(&shape);
    nb_memory_part parts[2 + TRAIN_PARTS];
    nb_graph_memory_parts(&z, parts);
    train_parts(&z, 0, train->n, 0, 0, cfg, parts + 2);
    return nb_check_run_memory("training", parts, 2 + TRAIN_PARTS, z.rows, err);
}

/* Everything up to the loop, on this process: checks, the state (the caller's to resume, or a
 * fresh one in *own) and the spare parameter buffer. *own is zeroed first, so it can be freed
 * whatever happens. */
static int prepare(nb_model *m, const nb_dataset *train, const nb_dataset *dev,
                   const nb_dataset *test, const nb_train_config *cfg, nb_train_state *own,
                   nb_error *err)
{
    memset(own, 0, sizeof *own);
    if (validate_config(m, train, cfg, err) != 0)
        return -1;
    if (dev && dev->n && check_compatible(m, dev, "dev", err) != 0)
        return -1;
    if (test && test->n && check_compatible(m, test, "test", err) != 0)
        return -1;
    if (early_stop_check(cfg, m->spec.task, dev, err) != 0)
        return -1;
    size_t n_params;
    nb_graph_params(m->graph, &n_params);
    if (cfg->resume && check_resume_state(cfg->resume, cfg, n_params, train->n, err) != 0)
        return -1;
    if (nb_train_check_memory(m, train, cfg, err) != 0)
        return -1;
    if (!cfg->resume) {
        if (nb_train_state_init(own, &cfg->optim, n_params, train->n, err) != 0)
            return -1;
        /* The data order has its own stream, apart from weight initialization. */
        nb_rng_seed(&own->rng, cfg->seed ^ 0x6a09e667f3bcc909ULL);
    }
    if (cfg->early_stop > 0 &&
        best_alloc(cfg->resume ? cfg->resume : own, m->graph, err) != 0)
        return -1;
    /* Each step reads the weights from one buffer and writes them to the other, so the
     * weights from before the last step, the last to give a finite loss, are always at hand. */
    return nb_graph_reserve_spare_params(m->graph, err);
}

int nb_train(nb_model *m, const nb_dataset *train, const nb_dataset *dev, const nb_dataset *test,
             const nb_train_config *cfg, nb_train_result *result, nb_error *err)
{
    memset(result, 0, sizeof *result);
    err->msg[0] = '\0';
    dp_run dp;
    if (dp_init(&dp, cfg, m, err) != 0)
        return -1;
    /* A resumed run goes on in the caller's state, which holds the checkpoint's moments: a
     * copy would need a second optimizer state, more than the run itself needed. */
    nb_train_state own;
    nb_train_state *st = cfg->resume ? cfg->resume : &own;
    int ready = prepare(m, train, dev, test, cfg, &own, err) == 0;
    if (dp_start(&dp, m, train, dev, test, cfg, ready, st, err) != 0) {
        nb_train_state_free(&own);
        return -1;
    }

    stats_backup before;
    if (backup_init(&before, m->graph, err) != 0) {
        nb_train_state_free(&own);
        return -1;
    }
    int n = train->n;
    int batch_size = cfg->batch_size == 0 || cfg->batch_size > n ? n : cfg->batch_size;
    int64_t batches = (n + batch_size - 1) / batch_size;
    float *grads = nb_graph_grads(m->graph, NULL);
    result->epochs = st->epoch;
    result->steps = st->steps;
    result->samples = st->samples;
    result->train_seconds = st->train_seconds;

    nb_graph_set_training(m->graph, 1);
    nb_pool_start();
    int stop = cfg->max_steps > 0 && st->steps >= cfg->max_steps, failed = 0;
    int64_t steps_now = 0;  /* in this call: a step to undo exists only after one */
    while (st->epoch < cfg->epochs && !stop) {
        /* Early stopping's end comes at an epoch's end, so also before a resumed run's
         * first epoch when the checkpoint was that end's. */
        if (early_stop_due(st, cfg)) {
            result->stopped_early = 1;
            break;
        }
        int epoch = st->epoch;
        float lr = nb_lr_at(&cfg->schedule, epoch);
        if (st->batch == 0) {
            if (cfg->shuffle)
                nb_shuffle(&st->rng, st->order, n);
            st->loss_sum = 0.0;
            st->correct = st->seen = 0;
        }
        /* train_seconds counts the steps only: the callbacks (progress, evaluation every N
         * steps, traces) and mid-epoch checkpoints take their time out of it. */
        double start = nb_monotonic_seconds(), seconds_before = st->train_seconds, aside = 0.0;
        int64_t seen_before = st->seen, batch_before = st->batch;
        for (int64_t b = st->batch; b < batches && !stop; b++) {
            int first = (int)(b * batch_size);
            int batch = n - first < batch_size ? n - first : batch_size;
            float loss;
            int64_t correct;
            backup_take(&before, m->graph);
            if (step_forward(&dp, m, train, st->order + first, batch, st->steps, &loss, &correct,
                             err) != 0) {
                failed = 1;
                break;
            }
            if (!isfinite(loss)) {
                if (step_end(&dp, m, err) != 0) {
                    failed = 1;
                    break;
                }
                if (steps_now > 0)
                    nb_graph_swap_params(m->graph);
                backup_restore(&before, m->graph);
                result->diverged = 1;
                result->diverged_epoch = epoch;
                result->diverged_step = b;
                stop = 1;
                break;
            }
            st->correct += correct;
            if (step_backward(&dp, m, err) != 0) {
                failed = 1;
                break;
            }
            nb_optimizer_step_to(&st->opt, nb_graph_params(m->graph, NULL), grads, lr,
                                 nb_graph_spare_params(m->graph));
            nb_graph_swap_params(m->graph);
            if (step_end(&dp, m, err) != 0) {
                failed = 1;
                break;
            }
            st->loss_sum += (double)loss * batch;
            st->seen += batch;
            st->steps++;
            st->samples += batch;
            st->batch = b + 1;
            double stepped = nb_monotonic_seconds();
            st->train_seconds = seconds_before + (stepped - start - aside);
            steps_now++;
            if (cfg->max_steps > 0 && st->steps >= cfg->max_steps)
                stop = 1;
            /* flags: a callback asks to stop; the stop flag is up. */
            int flags[2] = {0, 0};
            if (cfg->on_batch) {
                double stepping = st->train_seconds - seconds_before;
                double rate = stepping > 0 ? (double)(st->seen - seen_before) / stepping : 0.0;
                double elapsed = stepped - start;
                nb_progress p = {epoch, cfg->epochs, b + 1, batches, st->loss_sum / st->seen, lr,
                                 rate, elapsed, b + 1 - batch_before};
                flags[0] = cfg->on_batch(&p, cfg->user) != 0;
            }
            flags[1] = cfg->stop && *cfg->stop;
            if (agree(&dp, flags, 2, err) != 0) {
                failed = 1;
                break;
            }
            if (flags[0])
                stop = 1;
            int interrupted = flags[1];
            /* Mid-epoch checkpoints; the end of the epoch has its own, after its metrics. */
            if (st->batch < batches && !stop &&
                (interrupted || (cfg->checkpoint_every > 0 &&
                                 st->steps % cfg->checkpoint_every == 0))) {
                if (checkpoint_all(&dp, cfg, st, 0, &interrupted, err) != 0) {
                    failed = 1;
                    break;
                }
                if (interrupted) {
                    result->interrupted = 1;
                    stop = 1;
                }
            }
            aside += nb_monotonic_seconds() - stepped;
        }
        result->train_seconds = st->train_seconds;
        result->steps = st->steps;
        result->samples = st->samples;
        if (failed || result->interrupted || st->seen == 0)
            break;
        nb_epoch_metrics metrics = {0};
        metrics.task = m->spec.task;
        metrics.epoch = epoch;
        metrics.lr = lr;
        metrics.train_loss = st->loss_sum / st->seen;
        int scored = scored_per_sample(&m->spec);   /* 0: regression has no accuracy */
        metrics.train_accuracy = scored ? (double)st->correct / ((double)st->seen * scored) : 0.0;
        metrics.seconds = st->train_seconds - seconds_before;
        result->train_loss = metrics.train_loss;
        result->epochs = epoch + 1;
        if (evaluate_epoch(&dp, m, dev, test, &metrics, err) != 0) {
            failed = 1;
            break;
        }
        early_stop_after_epoch(st, cfg, m->graph, &metrics);
        metrics.stops_early = metrics.stops_early && epoch + 1 < cfg->epochs && !stop;
        int asked = cfg->on_epoch && cfg->on_epoch(&metrics, cfg->user);
        if (agree(&dp, &asked, 1, err) != 0) {
            failed = 1;
            break;
        }
        if (asked)
            stop = 1;
        if (result->diverged)
            break;
        /* The epoch is done: the state points at the start of the next one. A run stopped
         * by max_steps or a callback mid-epoch counts that epoch as done too. */
        st->epoch++;
        st->batch = 0;
        st->loss_sum = 0.0;
        st->correct = st->seen = 0;
        int interrupted = 0;
        if (checkpoint_all(&dp, cfg, st, 1, &interrupted, err) != 0) {
            failed = 1;
            break;
        }
        if (interrupted) {
            result->interrupted = 1;
            break;
        }
    }
    /* A run of no epochs checkpoints its start: it is its end too, and --resume --epochs N
     * extends it. */
    if (!failed && cfg->epochs == 0 && !cfg->resume) {
        int interrupted = 0;
        if (checkpoint_all(&dp, cfg, st, 1, &interrupted, err) != 0)
            failed = 1;
    }
    result->best_epoch = cfg->early_stop > 0 ? st->best_epoch : -1;
    result->best_value = cfg->early_stop > 0 && st->best_epoch >= 0 ? st->best_value : 0.0;
    /* However the run ended (its epochs, early stopping, max_steps, a callback, a NaN), but
     * for a failure or an interruption (resumed from the last weights), it ends with the best
     * epoch's model. */
    if (!failed && !result->interrupted && cfg->early_stop > 0 && st->best_epoch >= 0)
        best_restore(st, m->graph);
    memset(&m->graph->dp, 0, sizeof m->graph->dp);
    backup_free(&before);
    nb_train_state_free(&own);
    return failed ? -1 : 0;
}
