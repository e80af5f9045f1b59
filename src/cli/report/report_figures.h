/* nabla report: the study's charts that are not line or scatter charts: parallel coordinates
 * and horizontal bars. */
#ifndef NABLA_CLI_REPORT_FIGURES_H
#define NABLA_CLI_REPORT_FIGURES_H

#include "cli/report/html_escape.h"
#include "cli/report/report_scale.h"

/* One vertical axis of a parallel-coordinates chart and every line's value on it. */
typedef struct parallel_axis {
    const char *name;
    scale_kind kind;
    double lo, hi;                  /* numeric: the range shown (values) */
    int integer;                    /* whole numbers: ticks 1 or more apart */
    int n_categories;               /* SCALE_CATEGORY: the texts */
    const char *const *categories;
    const double *v;                /* a value per line (a category's index); NaN: none */
} parallel_axis;

/* Each line crosses every axis at its value; lines with a colour value are coloured by it
 * (viridis, low to high, the highest drawn on top) and the others (muted) drawn thin, grey and
 * dashed behind them. Lines are <path class="trial-line">, with a tooltip each. */
void svg_parallel(nb_strbuf *b, const char *id, const char *title, const char *note,
                  const parallel_axis *axes, int n_axes, int n_lines, const double *color_value,
                  const char *color_label, const char *const *tips);

/* The colour of x in [0, 1] on the viridis map, as "#rrggbb". */
void viridis(double x, char out[8]);

/* A horizontal bar per name, longest first as given, value written after it; NaN: "n/a".
 * Bars span [0, max]. */
void svg_bars(nb_strbuf *b, const char *id, const char *title, const char *note,
              const char *const *names, const double *values, int n, double max,
              const char *xlabel);

#endif /* NABLA_CLI_REPORT_FIGURES_H */
