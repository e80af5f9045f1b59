/* Learning-rate schedules: the rate of each epoch as a pure function of the epoch number.
 *
 * Epochs count from 0 and epoch 0 runs at the base rate lr (k is s->rate):
 *   none          lr
 *   inverse       lr / (1 + k*e)                 the course's 1/(1 + decay_rate*epoch)
 *   exp           lr * k^e
 *   inverse-sqrt  lr / sqrt(e + 1)
 *   interval      lr / (1 + k*floor(e/interval)) inverse decay applied every `interval` epochs
 *   step          lr * k^floor(e/interval)       torch StepLR(step_size=interval, gamma=k)
 *   cosine        lr * (1 + cos(pi*e/E)) / 2     over the horizon E = s->epochs
 * A linear warm-up of w epochs runs epoch e < w at lr*(e+1)/w; the decay then runs on e - w
 * (and cosine over E - w epochs), so the first epoch after the warm-up is at lr again.
 *
 * Only cosine depends on a length, its horizon E (`nabla train --decay-epochs`, by default the
 * run's --epochs). From epoch E on it holds the rate of epoch E - 1, the last of its horizon:
 * it neither reaches 0 (where an extended run would train nothing) nor rises again (as a
 * periodic cosine, PyTorch's CosineAnnealingLR past T_max, would). So a run extended past its
 * horizon is the run started with the longer --epochs and the same horizon, and the other
 * kinds, which never look at E, extend into the longer run as they are.
 * Computed in double, returned as float.
 */
#include <math.h>
#include <string.h>

#include "nabla.h"

static const char *const decay_names[] = {
    [NB_DECAY_NONE] = "none",         [NB_DECAY_INVERSE] = "inverse",
    [NB_DECAY_EXP] = "exp",           [NB_DECAY_INVERSE_SQRT] = "inverse-sqrt",
    [NB_DECAY_INTERVAL] = "interval", [NB_DECAY_STEP] = "step",
    [NB_DECAY_COSINE] = "cosine",
};
#define N_DECAYS ((int)(sizeof decay_names / sizeof decay_names[0]))

const char *nb_decay_name(nb_decay_kind k)
{
    if ((int)k < 0 || (int)k >= N_DECAYS)
        return "unknown";
    return decay_names[k];
}

int nb_decay_parse(const char *s, nb_decay_kind *out)
{
    if (!s)
        return -1;
    for (int k = 0; k < N_DECAYS; k++) {
        if (strcmp(s, decay_names[k]) == 0) {
            *out = (nb_decay_kind)k;
            return 0;
        }
    }
    return -1;
}

static const double pi = 3.14159265358979323846;

float nb_lr_at(const nb_schedule *s, int epoch)
{
    const double lr = s->lr, k = s->rate;
    const int warmup = s->warmup_epochs > 0 ? s->warmup_epochs : 0;
    const int interval = s->interval > 0 ? s->interval : 1;
    if (epoch < 0)
        epoch = 0;
    if (s->kind == NB_DECAY_COSINE && s->epochs >= 1 && epoch >= s->epochs)
        epoch = s->epochs - 1; /* past the horizon: hold its last epoch's rate (warm-up or not) */
    if (epoch < warmup)
        return (float)(lr * (epoch + 1) / warmup);

    const int e = epoch - warmup;
    switch (s->kind) {
    case NB_DECAY_NONE:
        return (float)lr;
    case NB_DECAY_INVERSE:
        return (float)(lr / (1.0 + k * e));
    case NB_DECAY_EXP:
        return (float)(lr * pow(k, e));
    case NB_DECAY_INVERSE_SQRT:
        return (float)(lr / sqrt(e + 1.0));
    case NB_DECAY_INTERVAL:
        return (float)(lr / (1.0 + k * (e / interval)));
    case NB_DECAY_STEP:
        return (float)(lr * pow(k, e / interval));
    case NB_DECAY_COSINE: {
        const int span = s->epochs - warmup;
        if (e >= span) /* no horizon at all (epochs < 1, which validate refuses) */
            return 0.0f;
        return (float)(lr * 0.5 * (1.0 + cos(pi * e / span)));
    }
    }
    return (float)lr;
}

int nb_schedule_validate(const nb_schedule *s, nb_error *err)
{
    const char *name = nb_decay_name(s->kind);
    const double k = s->rate;
    /* Comparisons are written so that NaN fails them. */
    if ((int)s->kind < 0 || (int)s->kind >= N_DECAYS)
        return nb_fail(err, "unknown learning-rate decay kind %d", (int)s->kind);
    if (!(s->lr > 0.0f && isfinite(s->lr)))
        return nb_fail(err, "learning rate must be positive and finite, got %g", (double)s->lr);
    switch (s->kind) {
    case NB_DECAY_INVERSE:
    case NB_DECAY_INTERVAL:
        if (!(k >= 0.0 && isfinite(k)))
            return nb_fail(err, "%s decay: rate must be >= 0, got %g", name, k);
        break;
    case NB_DECAY_EXP:
    case NB_DECAY_STEP:
        if (!(k > 0.0 && k <= 1.0))
            return nb_fail(err, "%s decay: rate must be in (0, 1], got %g", name, k);
        break;
    default:
        break;
    }
    if ((s->kind == NB_DECAY_INTERVAL || s->kind == NB_DECAY_STEP) && s->interval < 1)
        return nb_fail(err, "%s decay: interval must be >= 1 epoch, got %d", name, s->interval);
    if (s->kind == NB_DECAY_COSINE && s->epochs < 1)
        return nb_fail(err, "cosine decay needs its horizon in epochs (>= 1), got %d", s->epochs);
    if (s->warmup_epochs < 0)
        return nb_fail(err, "warm-up epochs must be >= 0, got %d", s->warmup_epochs);
    return 0;
}
