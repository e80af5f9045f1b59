/* What the ranks of one run must agree on (run_fingerprint.h). */
#include "train/run_fingerprint.h"

#include <stdio.h>
#include <string.h>

#include "core/graph_internal.h"

/* is_float: 1 a float's bits, 2 a double's. */
static const struct {
    const char *name;
    int is_float;
} fields[NB_FINGERPRINT_FIELDS] = {
    {"the number of ranks", 0}, {"sync_batchnorm", 0}, {"the training set's size", 0},
    {"its features", 0}, {"the dev set's size", 0}, {"the test set's size", 0},
    {"the batch size", 0}, {"the epochs", 0}, {"max_steps", 0}, {"shuffle", 0},
    {"the seed", 0}, {"checkpoint_every", 0}, {"the parameter count", 0},
    {"the size of the batch-norm statistics", 0}, {"the optimizer", 0}, {"beta", 1},
    {"beta2", 1}, {"eps", 1}, {"the weight decay", 1}, {"bias correction", 0},
    {"the learning-rate decay", 0}, {"the learning rate", 1}, {"the decay rate", 1},
    {"the decay interval", 0}, {"the warm-up epochs", 0}, {"the schedule's horizon", 0},
    {"early stopping's patience", 0}, {"the monitored metric", 0}, {"min_delta", 2},
};

static int64_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static int64_t double_bits(double d)
{
    int64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

void nb_run_fingerprint_of(const nb_model *m, const nb_dataset *train, const nb_dataset *dev,
                           const nb_dataset *test, const nb_train_config *cfg,
                           nb_run_fingerprint *fp)
{
    const nb_optim_config *o = &cfg->optim;
    const nb_schedule *s = &cfg->schedule;
    const int64_t v[NB_FINGERPRINT_FIELDS] = {
        cfg->comm ? cfg->comm->size : 1, cfg->sync_batchnorm != 0, train ? train->n : -1,
        train ? train->features : -1, dev ? dev->n : 0, test ? test->n : 0, cfg->batch_size,
        cfg->epochs, cfg->max_steps, cfg->shuffle != 0, (int64_t)cfg->seed,
        cfg->checkpoint_every, (int64_t)m->graph->n_params, (int64_t)m->graph->n_states,
        o->kind, float_bits(o->beta), float_bits(o->beta2), float_bits(o->eps),
        float_bits(o->weight_decay), o->bias_correction, s->kind, float_bits(s->lr),
        float_bits(s->rate), s->interval, s->warmup_epochs, s->epochs,
        cfg->early_stop, cfg->monitor, double_bits(cfg->min_delta),
    };
    memcpy(fp->field, v, sizeof v);
}

int nb_run_fingerprint_differs(const nb_run_fingerprint *a, const nb_run_fingerprint *b)
{
    for (int i = 0; i < NB_FINGERPRINT_FIELDS; i++)
        if (a->field[i] != b->field[i])
            return i;
    return -1;
}

const char *nb_run_fingerprint_name(int i)
{
    return fields[i].name;
}

void nb_run_fingerprint_value(int i, int64_t v, char *buf, size_t cap)
{
    if (fields[i].is_float == 2) {
        double d;
        memcpy(&d, &v, sizeof d);
        snprintf(buf, cap, "%g", d);
    } else if (fields[i].is_float) {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, sizeof f);
        snprintf(buf, cap, "%g", (double)f);
    } else {
        snprintf(buf, cap, "%lld", (long long)v);
    }
}
