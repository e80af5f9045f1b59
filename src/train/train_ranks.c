/* nb_train's steps, alone or in lockstep with other ranks (see train_ranks.h). */
#include "train/train_ranks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/evaluate.h"
#include "core/graph_internal.h"
#include "train/early_stop.h"
#include "train/run_fingerprint.h"

/* ---- data-parallel training ----
 *
 * With a communicator of two or more ranks (cfg->comm), every rank runs this loop on its own
 * copy of the model and of the whole training set, in lockstep:
 *
 *   start       the ranks check that they run the same configuration and that each could
 *               start (a rank that could not makes all fail, not hang); then rank 0's whole
 *               run is broadcast: weights, batch-norm statistics and counters, optimizer
 *               moments and step count, data order and its generator, position and the
 *               epoch's running metrics, early stopping's best epoch and its model. The
 *               ranks start equal however each was initialized (--init-weights read on
 *               rank 0 only) or resumed. Early stopping decides on the dev metrics, which
 *               are global (below), so every rank keeps the same best epoch and stops at
 *               the same epoch's end.
 *   each step   the global mini-batch is the same on every rank (the same order); rank r
 *               trains on its rows [B*r/size, B*(r+1)/size), possibly none (B < size). Its
 *               loss divides by the global B (ops/loss.c), so the ranks' gradients, summed
 *               with one sum_floats over the flat buffer, are the global batch's mean gradient,
 *               and every rank takes the same step. The rows' losses and correct counts are
 *               summed before backward: every rank sees the global loss, so a loss that is not
 *               finite on any rank stops all of them at the same step (the NaN guard).
 *   batch norm  cfg->sync_batchnorm: statistics over the global batch (ops/batchnorm.c); the
 *               result is one process's. Otherwise each rank normalizes with its own rows'
 *               statistics, as PyTorch's DistributedDataParallel does, and after every step
 *               takes rank 0's running statistics. DDP (broadcast_buffers) broadcasts rank 0's
 *               before every forward pass instead; the statistics every rank evaluates with
 *               and saves are the same either way, rank 0's, updated from its shards only
 *               (unchanged when its shard is empty), and here the ranks are equal between
 *               steps too, for the callbacks.
 *   dropout     every rank draws the masks of its rows as one process would: the mask is a
 *               function of (seed, step, the row's position in the global batch), and rank r
 *               gives its first row position B*r/size (nb_graph_set_step, ops/dropout.c).
 *   epoch ends  each rank evaluates its share [n*r/size, n*(r+1)/size) of dev and test, and
 *               the sums are added: the same metrics on every rank for 1/size of the work.
 *   stopping    every decision that ends the loop (a callback's return value, the stop flag,
 *               a failed checkpoint) is summed over the ranks after the step, so all stop
 *               after the same step, with the same checkpoint calls.
 * Counts and times in the state and the result are global (samples of every rank), except
 * train_seconds, each rank's own clock.
 *
 * The collectives, in the order every rank calls them (see nabla.h, nb_comm):
 *   start        broadcast(fingerprint), sum_doubles(2), then broadcasts of the run's state
 *   every step   [synchronized batch norm: 2 sum_doubles per batch-norm layer in forward]
 *                sum_doubles(2): loss and correct predictions
 *                [synchronized batch norm: 1 sum_doubles per batch-norm layer in backward]
 *                sum_floats(every parameter): the gradient            (not after a NaN loss)
 *                [per-rank batch norm: broadcast(running statistics)]
 *                sum_doubles(2): stop requests                        (not after a NaN loss)
 *   checkpoints  sum_doubles(2) after each on_checkpoint call (made on every rank)
 *   epoch ends   sum_doubles(5): dev and test sums; sum_doubles(1): on_epoch's stop
 */


/* This rank's rows [lo, hi) of `rows`. */
static void shard(int rows, const nb_comm *c, int *lo, int *hi)
{
    *lo = (int)((int64_t)rows * c->rank / c->size);
    *hi = (int)((int64_t)rows * (c->rank + 1) / c->size);
}

/* The collectives; err is touched only when one fails. */
static int dp_sum(const dp_run *dp, double *x, size_t n, const char *what, nb_error *err)
{
    nb_error e = {{0}};
    if (dp->comm->sum_doubles(dp->comm->user, x, n, &e) == 0)
        return 0;
    return e.msg[0] ? nb_fail(err, "%s", e.msg)
                    : nb_fail(err, "summing %s over the ranks failed", what);
}

static int dp_broadcast(const dp_run *dp, void *x, size_t bytes, const char *what, nb_error *err)
{
    nb_error e = {{0}};
    if (bytes == 0 || dp->comm->broadcast(dp->comm->user, x, bytes, &e) == 0)
        return 0;
    return e.msg[0] ? nb_fail(err, "%s", e.msg)
                    : nb_fail(err, "broadcasting %s from rank 0 failed", what);
}

/* Decisions all ranks must take together: each flag becomes 1 if it is set on any rank.
 * Alone, the flags stay as they are. */
int agree(const dp_run *dp, int *flags, int n, nb_error *err)
{
    if (!dp->comm)
        return 0;
    double sums[4];
    for (int i = 0; i < n; i++)
        sums[i] = flags[i] != 0;
    if (dp_sum(dp, sums, (size_t)n, "a decision", err) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        flags[i] = sums[i] > 0;
    return 0;
}

int dp_init(dp_run *dp, const nb_train_config *cfg, nb_model *m, nb_error *err)
{
    memset(dp, 0, sizeof *dp);
    memset(&m->graph->dp, 0, sizeof m->graph->dp);
    dp->seed = cfg->seed;
    const nb_comm *c = cfg->comm;
    if (!c)
        return 0;
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return nb_fail(err, "the communicator says rank %d of %d", c->rank, c->size);
    if (c->size == 1)
        return 0;   /* one rank: exactly a process alone */
    if (!c->sum_floats || !c->sum_doubles || !c->broadcast)
        return nb_fail(err, "the communicator lacks one of its functions");
    dp->comm = c;
    dp->sync_batchnorm = cfg->sync_batchnorm != 0;
    dp->share_states = !dp->sync_batchnorm && m->graph->n_states > 0;
    return 0;
}

/* The scalars of a run's state, broadcast as one block. */
typedef struct run_scalars {
    int64_t epoch, batch, steps, samples, correct, seen, opt_t, best_epoch, since_best;
    double train_seconds, loss_sum, best_value;
    nb_rng rng;
} run_scalars;

/* Early stopping's copy of the best epoch's model (every rank has one: nb_train allocated it). */
static int dp_share_best(const dp_run *dp, const nb_graph *g, nb_train_state *st, nb_error *err)
{
    if (!st->best_params)
        return 0;
    return dp_broadcast(dp, st->best_params, g->n_params * sizeof *st->best_params,
                        "the best epoch's weights", err) != 0 ||
                   dp_broadcast(dp, st->best_states, g->n_states * sizeof *st->best_states,
                                "the best epoch's statistics", err) != 0 ||
                   dp_broadcast(dp, st->best_counters,
                                (size_t)best_counter_count(g) * sizeof *st->best_counters,
                                "the best epoch's counters", err) != 0
               ? -1
               : 0;
}

/* Rank 0's run on every rank (see the top of this section). */
static int dp_share_run(const dp_run *dp, nb_model *m, nb_train_state *st, nb_error *err)
{
    nb_graph *g = m->graph;
    size_t n_params;
    float *params = nb_graph_params(g, &n_params);
    if (dp_broadcast(dp, params, n_params * sizeof *params, "the weights", err) != 0 ||
        dp_broadcast(dp, g->states, g->n_states * sizeof *g->states, "the batch-norm statistics",
                     err) != 0 ||
        (st->opt.v &&
         dp_broadcast(dp, st->opt.v, n_params * sizeof *st->opt.v, "the optimizer", err) != 0) ||
        (st->opt.s &&
         dp_broadcast(dp, st->opt.s, n_params * sizeof *st->opt.s, "the optimizer", err) != 0) ||
        dp_broadcast(dp, st->order, (size_t)st->n * sizeof *st->order, "the data order",
                     err) != 0)
        return -1;
    int n_counters = 0;
    for (int i = 0; i < g->n_named; i++)
        n_counters += g->named[i].kind == NB_KIND_COUNTER;
    if (n_counters > 0) {
        int64_t *counters = malloc((size_t)n_counters * sizeof *counters);
        if (!counters)
            return nb_fail(err, "out of memory");
        for (int i = 0, k = 0; i < g->n_named; i++)
            if (g->named[i].kind == NB_KIND_COUNTER)
                counters[k++] = *g->named[i].counter;
        int rc = dp_broadcast(dp, counters, (size_t)n_counters * sizeof *counters,
                              "the batch-norm counters", err);
        for (int i = 0, k = 0; i < g->n_named && rc == 0; i++)
            if (g->named[i].kind == NB_KIND_COUNTER)
                *g->named[i].counter = counters[k++];
        free(counters);
        if (rc != 0)
            return -1;
    }
    if (dp_share_best(dp, g, st, err) != 0)
        return -1;
    run_scalars s = {st->epoch,    st->batch,      st->steps,         st->samples,
                     st->correct,  st->seen,       st->opt.t,         st->best_epoch,
                     st->since_best, st->train_seconds, st->loss_sum, st->best_value,
                     st->rng};
    if (dp_broadcast(dp, &s, sizeof s, "the run's position", err) != 0)
        return -1;
    st->epoch = (int)s.epoch;
    st->batch = s.batch;
    st->steps = s.steps;
    st->samples = s.samples;
    st->correct = s.correct;
    st->seen = s.seen;
    st->opt.t = s.opt_t;
    st->train_seconds = s.train_seconds;
    st->loss_sum = s.loss_sum;
    st->best_epoch = (int)s.best_epoch;
    st->since_best = (int)s.since_best;
    st->best_value = s.best_value;
    st->rng = s.rng;
    return 0;
}

/* Alone: nothing (ready says whether this process could start). With ranks: whether every
 * rank could start and agrees with rank 0's configuration, then rank 0's run everywhere. */
int dp_start(const dp_run *dp, nb_model *m, const nb_dataset *train,
             const nb_dataset *dev, const nb_dataset *test, const nb_train_config *cfg,
             int ready, nb_train_state *st, nb_error *err)
{
    if (!dp->comm)
        return ready ? 0 : -1;
    /* What the ranks must agree on, rank 0's being the truth. */
    nb_run_fingerprint mine, rank0;
    nb_run_fingerprint_of(m, train, dev, test, cfg, &mine);
    rank0 = mine;
    if (dp_broadcast(dp, &rank0, sizeof rank0, "the configuration", err) != 0)
        return -1;
    int differs = nb_run_fingerprint_differs(&mine, &rank0);
    double verdict[2] = {!ready, differs >= 0};
    if (dp_sum(dp, verdict, 2, "the ranks' readiness", err) != 0)
        return -1;
    if (!ready)
        return -1;   /* err says why */
    if (differs >= 0) {
        char here[32], there[32];
        nb_run_fingerprint_value(differs, mine.field[differs], here, sizeof here);
        nb_run_fingerprint_value(differs, rank0.field[differs], there, sizeof there);
        return nb_fail(err, "rank %d and rank 0 disagree: %s is %s here but %s on rank 0 "
                            "(every rank must run the same configuration)",
                       dp->comm->rank, nb_run_fingerprint_name(differs), here, there);
    }
    if (verdict[0] > 0)
        return nb_fail(err, "another rank could not start training (its message says why)");
    if (verdict[1] > 0)
        return nb_fail(err, "another rank's configuration differs from rank 0's (every rank "
                            "must run the same configuration)");
    return dp_share_run(dp, m, st, err);
}

/* Takes the failure of a collective inside the graph's last pass, if any. */
static int graph_collectives_ok(nb_graph *g, nb_error *err)
{
    if (!g->dp.failed)
        return 0;
    return nb_fail(err, "%s", g->dp.error.msg);
}

/* The forward pass of a step over the global batch order[0, batch): the loss of the global
 * batch and its correct predictions. With ranks, this rank's rows only, and the sums. Each row
 * is given its position in the global batch for dropout's masks, so that the ranks draw the
 * masks one process would. */
int step_forward(const dp_run *dp, nb_model *m, const nb_dataset *train,
                 const int32_t *order, int batch, int64_t step, float *loss, int64_t *correct,
                 nb_error *err)
{
    if (!dp->comm) {
        nb_graph_set_step(m->graph, dp->seed, step, 0);
        model_set_batch(m, train, order, batch);
        nb_graph_forward(m->graph, batch);
        *loss = nb_node_scalar(m->loss);
        *correct = count_correct(m, batch);
        return 0;
    }
    int lo, hi;
    shard(batch, dp->comm, &lo, &hi);
    nb_graph *g = m->graph;
    g->dp.global_batch = batch;
    g->dp.bn_comm = dp->sync_batchnorm ? dp->comm : NULL;
    nb_graph_set_step(g, dp->seed, step, lo);
    model_set_batch(m, train, order + lo, hi - lo);
    nb_graph_forward(g, hi - lo);
    if (graph_collectives_ok(g, err) != 0)
        return -1;
    /* This rank's share of the global mean loss (in double, as the loss op keeps it). */
    double sums[2] = {m->loss->loss, count_correct(m, hi - lo)};
    if (dp_sum(dp, sums, 2, "the loss", err) != 0)
        return -1;
    *loss = (float)sums[0];
    *correct = (int64_t)sums[1];
    return 0;
}

/* The backward pass of the step; with ranks, the gradients summed over them. */
int step_backward(const dp_run *dp, nb_model *m, nb_error *err)
{
    nb_graph *g = m->graph;
    nb_graph_backward(g, m->loss);
    if (!dp->comm)
        return 0;
    if (graph_collectives_ok(g, err) != 0)
        return -1;
    size_t n_params;
    float *grads = nb_graph_grads(g, &n_params);
    nb_error e = {{0}};
    if (dp->comm->sum_floats(dp->comm->user, grads, n_params, &e) != 0)
        return e.msg[0] ? nb_fail(err, "%s", e.msg)
                        : nb_fail(err, "summing the gradients over the ranks failed");
    return 0;
}

/* The end of a step's passes: the graph is a single process's again (for evaluation and the
 * callbacks), and with per-rank batch norm every rank takes rank 0's running statistics. */
int step_end(const dp_run *dp, nb_model *m, nb_error *err)
{
    nb_graph *g = m->graph;
    g->dp.global_batch = 0;
    g->dp.bn_comm = NULL;
    if (!dp->share_states)
        return 0;
    return dp_broadcast(dp, g->states, g->n_states * sizeof *g->states,
                        "the batch-norm statistics", err);
}

/* The dev and test metrics of an epoch's end; with ranks, each evaluates its share. */
int evaluate_epoch(const dp_run *dp, nb_model *m, const nb_dataset *dev,
                   const nb_dataset *test, nb_epoch_metrics *metrics, nb_error *err)
{
    if (!dp->comm)
        return nb_evaluate(m, dev, &metrics->dev, err) != 0 ||
                       nb_evaluate(m, test, &metrics->test, err) != 0
                   ? -1
                   : 0;
    const nb_dataset *sets[2] = {dev, test};
    nb_eval_result *out[2] = {&metrics->dev, &metrics->test};
    /* Both sets' sums, then a flag: whether this rank's evaluation failed. */
    size_t count = metric_sums_count(m);
    double *sums = calloc(2 * count + 1, sizeof *sums);
    if (!sums)
        return nb_fail(err, "out of memory");
    int ok = 1;
    for (int k = 0; k < 2 && ok; k++) {
        if (!sets[k] || sets[k]->n == 0)
            continue;
        int lo, hi;
        shard(sets[k]->n, dp->comm, &lo, &hi);
        ok = evaluate_rows(m, sets[k], lo, hi, sums + k * count, err) == 0;
    }
    sums[2 * count] = !ok;
    int rc = 0;
    if (dp_sum(dp, sums, 2 * count + 1, "the evaluation", err) != 0 || !ok)
        rc = -1;
    else if (sums[2 * count] > 0)
        rc = nb_fail(err, "evaluating on another rank failed (its message says why)");
    for (int k = 0; k < 2 && rc == 0; k++)
        metric_sums_finish(m, sums + k * count, sets[k] ? sets[k]->n : 0, out[k]);
    free(sums);
    return rc;
}

/* The checkpoint callback, if any; a failure without a message gets one. */
static int checkpoint(const nb_train_config *cfg, const nb_train_state *st, nb_error *err)
{
    if (!cfg->on_checkpoint || cfg->on_checkpoint(st, cfg->user, err) == 0)
        return 0;
    if (!err->msg[0])
        nb_fail(err, "the checkpoint callback stopped training");
    return -1;
}

/* A checkpoint (on every rank: the callback decides who writes) and whether to stop after it
 * (*interrupted, or else, with read_stop, the stop flag as it is after the checkpoint), agreed
 * over the ranks. */
int checkpoint_all(const dp_run *dp, const nb_train_config *cfg, const nb_train_state *st,
                   int read_stop, int *interrupted, nb_error *err)
{
    int flags[2] = {checkpoint(cfg, st, err) != 0, *interrupted};
    if (read_stop)
        flags[1] = cfg->stop && *cfg->stop;
    int mine = flags[0];
    if (agree(dp, flags, 2, err) != 0)
        return -1;
    *interrupted = flags[1];
    if (mine)
        return -1;   /* err says why */
    if (flags[0])
        return nb_fail(err, "a checkpoint failed on another rank (its message says why)");
    return 0;
}

