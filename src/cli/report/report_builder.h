/* nabla report: collects the series and legend entries of one chart, and owns the texts
 * (names, keys, tooltips) they point to until the chart is written. */
#ifndef NABLA_CLI_REPORT_BUILDER_H
#define NABLA_CLI_REPORT_BUILDER_H

#include "cli/report/report_svg.h"

typedef struct builder {
    chart_series *series;
    int n_series, cap_series;
    legend_entry *legend;
    int n_legend, cap_legend;
    char **texts;
    int n_texts, cap_texts;
    int failed;               /* out of memory: nothing more is added */
} builder;

/* A copy of the formatted text, owned by the builder (NULL once it has failed). */
const char *builder_text(builder *bd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Adds a copy of *s (its pointers are kept as they are). Returns the copy, or NULL. */
chart_series *builder_series(builder *bd, const chart_series *s);
void builder_legend(builder *bd, const legend_entry *e);
/* Writes the chart (c's series and legend are the builder's) and empties the builder for the
 * next one; returns -1 if the builder ran out of memory. */
int builder_draw(builder *bd, nb_strbuf *b, chart *c);
void builder_free(builder *bd);

/* Whether any of the n values is a number. */
int any_finite(const double *v, int n);

#endif /* NABLA_CLI_REPORT_BUILDER_H */
