/* nabla report: the scales of chart axes (linear, log, 1-x on a log axis, categories), with
 * tick positions and their labels. A value v has coordinate t on its scale:
 *   linear  t = v
 *   log     t = log10 v                  (learning rates, weight decay)
 *   1-log   t = -log10(1 - v)            (momentum, Adam's betas: 0.9, 0.99, 0.999 evenly
 *                                         spaced, increasing to the right, labelled with v)
 *   category t = the index of the value
 * and the chart maps t linearly to pixels. */
#ifndef NABLA_CLI_REPORT_SCALE_H
#define NABLA_CLI_REPORT_SCALE_H

#include <stddef.h>

typedef enum scale_kind { SCALE_LINEAR, SCALE_LOG, SCALE_ONE_MINUS_LOG, SCALE_CATEGORY } scale_kind;

#define SCALE_MAX_TICKS 40
#define SCALE_LABEL_MAX 64

typedef struct scale {
    scale_kind kind;
    double t0, t1;                 /* the range shown, t0 < t1 */
    int n_ticks;
    double tick[SCALE_MAX_TICKS];  /* positions (t) */
    char label[SCALE_MAX_TICKS][SCALE_LABEL_MAX];
} scale;

/* t of v, or NaN where v has none (not finite; v <= 0 on a log scale; v >= 1 on a 1-log
 * one). Categories: v itself (an index, maybe jittered). */
double scale_t(scale_kind kind, double v);

/* Fits a numeric scale to data whose coordinates span [tmin, tmax] (finite, tmin <= tmax):
 * a range that holds them, never of zero width (all-equal data gets room around it), with
 * 3 to about 10 ticks at round values, labelled with the values. With exact, the range is
 * [tmin, tmax] itself (a search space's bounds) and only ticks inside are kept. Linear ticks
 * are at least min_step apart (1 for epochs and steps; 0: no minimum). */
void scale_fit(scale *s, scale_kind kind, double tmin, double tmax, int exact, double min_step);

/* A categorical scale: ticks at 0..n-1 labelled with the texts, range [-0.5, n - 0.5]. */
void scale_categories(scale *s, int n, const char *const *texts);

/* v in at most `digits` significant digits, exponents short ("1e-5", not "1e-05"). */
void format_number(char *buf, size_t cap, double v, int digits);

#endif /* NABLA_CLI_REPORT_SCALE_H */
