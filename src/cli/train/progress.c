/* The live progress bar and the per-epoch lines of `nabla train`, on stdout. */
#include "cli/train/progress.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "cli/common/metrics_text.h"
#include "cli/common/output.h"
#include "core/clock.h"

#define BAR_WIDTH 10
#define REDRAW_SECONDS 0.1

void format_thousands(double v, char *buf, size_t size)
{
    char digits[32];
    if (!isfinite(v) || v < 0 || v > 1e18) {
        snprintf(buf, size, "-");
        return;
    }
    int len = snprintf(digits, sizeof digits, "%.0f", v);
    size_t j = 0;
    for (int i = 0; i < len && j + 1 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0 && j + 2 < size)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
}

void format_duration(double seconds, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, size, "-:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

void progress_init(progress *p, int quiet, int epochs)
{
    memset(p, 0, sizeof *p);
    p->out = stdout;
    p->quiet = quiet;
    p->live = !quiet && isatty(STDOUT_FILENO);
    p->epochs = epochs;
    p->last_draw = -1;
}

void progress_clear(progress *p)
{
    if (p->bar_shown) {
        fputs("\r\033[2K", p->out);   /* carriage return, then erase the whole line */
        output_flush();              /* a failure stays on record for the end (output.h) */
        p->bar_shown = 0;
    }
}

int progress_batch(progress *p, const nb_progress *np)
{
    if (!p->live)
        return 0;
    double now = nb_monotonic_seconds();
    int last = np->batch >= np->batches;
    if (p->last_draw >= 0 && now - p->last_draw < REDRAW_SECONDS && !last)
        return 0;
    p->last_draw = now;

    char bar[BAR_WIDTH + 1], rate[32], eta[32];
    int filled = np->batches > 0 ? (int)(BAR_WIDTH * np->batch / np->batches) : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    format_thousands(np->samples_per_second, rate, sizeof rate);

    /* Batches left in this epoch and the later ones, at this epoch's pace so far. */
    double per_batch = np->timed_batches > 0 ? np->elapsed / (double)np->timed_batches : NAN;
    double left = (double)(np->batches - np->batch) +
                  (double)(p->epochs - (np->epoch + 1)) * (double)np->batches;
    format_duration(per_batch * left, eta, sizeof eta);

    fprintf(p->out, "\r\033[2Kepoch %d/%d [%s] %lld/%lld loss %.4f lr %.1e %s samples/s ETA %s",
            np->epoch + 1, p->epochs, bar, (long long)np->batch, (long long)np->batches,
            np->loss, (double)np->lr, rate, eta);
    p->bar_shown = 1;
    return output_flush();
}

static void print_split(FILE *out, const char *name, const nb_eval_result *r)
{
    char text[256];
    metrics_text(r, 1, text, sizeof text);
    if (r->n > 0)
        fprintf(out, "  %s loss %.4f %s", name, r->loss, text);
}

int progress_epoch(progress *p, const nb_epoch_metrics *m)
{
    if (p->quiet)
        return 0;
    progress_clear(p);
    fprintf(p->out, "epoch %d/%d  lr %g  train loss %.4f", m->epoch + 1, p->epochs,
            (double)m->lr, m->train_loss);
    if (m->task != NB_TASK_REGRESSION)
        fprintf(p->out, " acc %.4f", m->train_accuracy);
    print_split(p->out, "dev", &m->dev);
    print_split(p->out, "test", &m->test);
    fprintf(p->out, "  %.1fs%s\n", m->seconds,
            p->early_stop && m->best_epoch == m->epoch ? "  (best)" : "");
    if (m->stops_early)
        fprintf(p->out, "stopping early: no better dev %s for %d epoch%s (best: epoch %d)\n",
                p->monitor, p->early_stop, p->early_stop == 1 ? "" : "s", m->best_epoch + 1);
    return output_flush();
}
