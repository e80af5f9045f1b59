/* What `nabla train` shows on stdout while it runs: a live bar on a terminal, one line per
 * epoch. Each is flushed at once, and a flush that fails (a closed pipe, a full disk) is
 * returned, so that the run can stop (output.h). */
#ifndef NABLA_CLI_PROGRESS_H
#define NABLA_CLI_PROGRESS_H

#include <stdio.h>

#include "nabla.h"

typedef struct progress {
    FILE *out;           /* stdout */
    int live;            /* redraw a bar with \r (out is a terminal and not quiet) */
    int quiet;           /* nothing per epoch */
    int epochs;          /* planned, for "epoch 3/10" and the ETA */
    double last_draw;    /* monotonic seconds of the last redraw */
    int bar_shown;       /* a bar is on the current line and must be cleared first */
    int early_stop;      /* --early-stop's patience (0: off): the best epoch is marked, and */
    const char *monitor; /* the stop said with the metric's name */
} progress;

void progress_init(progress *p, int quiet, int epochs);
/* After every batch: redraws the bar at most ten times a second (live mode only). Both return
 * 0, or -1 when stdout can no longer be written. */
int progress_batch(progress *p, const nb_progress *np);
/* After every epoch: one plain line (unless quiet), replacing the bar; with early stopping,
 * "(best)" after the best epoch so far, and a line when the run stops early. */
int progress_epoch(progress *p, const nb_epoch_metrics *m);
/* Removes a bar left on the line, before other output. */
void progress_clear(progress *p);

/* Formatting helpers, exposed for reuse: "52,310" and "1:07" / "1:02:03". */
void format_thousands(double v, char *buf, size_t size);
void format_duration(double seconds, char *buf, size_t size);

#endif /* NABLA_CLI_PROGRESS_H */
