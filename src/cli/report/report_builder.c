/* The series, legend and texts of a chart being put together. */
#include "cli/report/report_builder.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for one more element of an array of `size`-byte elements. */
static int grow(builder *bd, void **array, int n, int *cap, size_t size)
{
    if (bd->failed)
        return -1;
    if (n < *cap)
        return 0;
    int want = *cap ? 2 * *cap : 16;
    void *grown = realloc(*array, (size_t)want * size);
    if (!grown) {
        bd->failed = 1;
        return -1;
    }
    *array = grown;
    *cap = want;
    return 0;
}

const char *builder_text(builder *bd, const char *fmt, ...)
{
    if (grow(bd, (void **)&bd->texts, bd->n_texts, &bd->cap_texts, sizeof *bd->texts) != 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!text) {
        bd->failed = 1;
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bd->texts[bd->n_texts++] = text;
    return text;
}

chart_series *builder_series(builder *bd, const chart_series *s)
{
    if (grow(bd, (void **)&bd->series, bd->n_series, &bd->cap_series, sizeof *bd->series) != 0)
        return NULL;
    bd->series[bd->n_series] = *s;
    return &bd->series[bd->n_series++];
}

void builder_legend(builder *bd, const legend_entry *e)
{
    if (grow(bd, (void **)&bd->legend, bd->n_legend, &bd->cap_legend, sizeof *bd->legend) != 0)
        return;
    bd->legend[bd->n_legend++] = *e;
}

static void clear_texts(builder *bd)
{
    for (int i = 0; i < bd->n_texts; i++)
        free(bd->texts[i]);
    bd->n_texts = 0;
}

int builder_draw(builder *bd, nb_strbuf *b, chart *c)
{
    int rc = bd->failed ? -1 : 0;
    if (rc == 0) {
        c->series = bd->series;
        c->n_series = bd->n_series;
        c->legend = bd->legend;
        c->n_legend = bd->n_legend;
        svg_chart(b, c);
    }
    clear_texts(bd);
    bd->n_series = bd->n_legend = 0;
    bd->failed = 0;
    return rc;
}

void builder_free(builder *bd)
{
    clear_texts(bd);
    free(bd->texts);
    free(bd->series);
    free(bd->legend);
    memset(bd, 0, sizeof *bd);
}

int any_finite(const double *v, int n)
{
    for (int i = 0; v && i < n; i++)
        if (isfinite(v[i]))
            return 1;
    return 0;
}
