/* Early stopping: see early_stop.h and nabla.h (nb_train_config.early_stop). The best epoch's
 * model is a copy of the graph's flat parameter and state buffers and of its counters, taken
 * with memcpy after an epoch's evaluation (no allocation inside the loop: best_alloc comes
 * first), so putting it back gives the model that epoch ended with, bit for bit. */
#include "train/early_stop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/memcheck.h"

int early_stop_check(const nb_train_config *cfg, nb_task task, const nb_dataset *dev,
                     nb_error *err)
{
    if (cfg->early_stop < 0)
        return nb_fail(err, "early stopping's patience must be >= 0 epochs, not %d",
                       cfg->early_stop);
    if (cfg->early_stop == 0)
        return 0;
    if ((unsigned)cfg->monitor >= NB_METRICS)
        return nb_fail(err, "early stopping: unknown monitored metric %d", (int)cfg->monitor);
    if (!(cfg->min_delta >= 0) || !isfinite(cfg->min_delta))
        return nb_fail(err, "early stopping's min_delta must be a finite number >= 0, not %g",
                       cfg->min_delta);
    if (!dev || dev->n == 0)
        return nb_fail(err, "early stopping watches the dev set, and there is none");
    if (!nb_metric_applies(cfg->monitor, task)) {
        char names[128];
        nb_metric_names(task, names, sizeof names);
        return nb_fail(err, "early stopping: a %s model has no %s to monitor (it has: %s)",
                       nb_task_name(task), nb_metric_name(cfg->monitor), names);
    }
    return 0;
}

uint64_t best_copy_bytes(const nb_graph_sizes *z)
{
    return nb_sat_add(nb_sat_mul(nb_sat_add(z->params, z->states), sizeof(float)),
                      nb_sat_mul(z->nodes, sizeof(int64_t)));
}

int best_counter_count(const nb_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->n_named; i++)
        n += g->named[i].kind == NB_KIND_COUNTER;
    return n;
}

int best_alloc(nb_train_state *s, const nb_graph *g, nb_error *err)
{
    if (s->best_params)
        return 0;
    int counters = best_counter_count(g);
    s->best_params = malloc((g->n_params ? g->n_params : 1) * sizeof *s->best_params);
    s->best_states = malloc((g->n_states ? g->n_states : 1) * sizeof *s->best_states);
    s->best_counters = malloc((size_t)(counters ? counters : 1) * sizeof *s->best_counters);
    if (!s->best_params || !s->best_states || !s->best_counters) {
        free(s->best_params);
        free(s->best_states);
        free(s->best_counters);
        s->best_params = s->best_states = NULL;
        s->best_counters = NULL;
        return nb_fail(err, "out of memory for early stopping's copy of the best epoch's model");
    }
    return 0;
}

static void best_take(nb_train_state *s, const nb_graph *g)
{
    memcpy(s->best_params, g->params, g->n_params * sizeof *g->params);
    if (g->n_states)
        memcpy(s->best_states, g->states, g->n_states * sizeof *g->states);
    for (int i = 0, k = 0; i < g->n_named; i++)
        if (g->named[i].kind == NB_KIND_COUNTER)
            s->best_counters[k++] = *g->named[i].counter;
}

void best_restore(const nb_train_state *s, nb_graph *g)
{
    memcpy(g->params, s->best_params, g->n_params * sizeof *g->params);
    if (g->n_states)
        memcpy(g->states, s->best_states, g->n_states * sizeof *g->states);
    for (int i = 0, k = 0; i < g->n_named; i++)
        if (g->named[i].kind == NB_KIND_COUNTER)
            *g->named[i].counter = s->best_counters[k++];
}

/* Whether v improves on the best so far: strictly, by more than min_delta. The first finite
 * value is the first best; NaN never is. */
static int improves(const nb_train_state *s, const nb_train_config *cfg, double v)
{
    if (!isfinite(v))
        return 0;
    if (s->best_epoch < 0)
        return 1;
    return nb_metric_higher_is_better(cfg->monitor) ? v > s->best_value + cfg->min_delta
                                                     : v < s->best_value - cfg->min_delta;
}

void early_stop_after_epoch(nb_train_state *s, const nb_train_config *cfg, const nb_graph *g,
                            nb_epoch_metrics *m)
{
    m->best_epoch = -1;
    m->stops_early = 0;
    if (cfg->early_stop <= 0)
        return;
    double v = nb_metric_value(cfg->monitor, &m->dev);
    if (improves(s, cfg, v)) {
        s->best_epoch = m->epoch;
        s->best_value = v;
        s->since_best = 0;
        best_take(s, g);
    } else {
        s->since_best++;
    }
    m->best_epoch = s->best_epoch;
    m->stops_early = early_stop_due(s, cfg);
}

int early_stop_due(const nb_train_state *s, const nb_train_config *cfg)
{
    return cfg->early_stop > 0 && s->since_best >= cfg->early_stop;
}
