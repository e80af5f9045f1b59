/* Parallel coordinates and horizontal bars as inline SVG. */
#include "cli/report/report_figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/report/report_svg.h"

void viridis(double x, char out[8])
{
    static const double stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!(x >= 0))
        x = 0;
    if (x > 1)
        x = 1;
    double f = x * 4;
    int i = f >= 4 ? 3 : (int)f;
    f -= i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

#define PC_SPACING 150
#define PC_PLOT_H 260

static const double *sort_keys;

static int by_key(const void *a, const void *b)
{
    double x = sort_keys[*(const int *)a], y = sort_keys[*(const int *)b];
    /* Muted lines (NaN) first, then low to high: the best end up on top. */
    if (isnan(x) != isnan(y))
        return isnan(x) ? -1 : 1;
    if (x != y && !isnan(x))
        return x < y ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

/* The axis's scale, as the y scale of a plot area. */
static void axis_scale(const parallel_axis *a, scale *s)
{
    if (a->kind == SCALE_CATEGORY)
        scale_categories(s, a->n_categories, a->categories);
    else
        scale_fit(s, a->kind, scale_t(a->kind, a->lo), scale_t(a->kind, a->hi), 1, a->integer);
}

void svg_parallel(nb_strbuf *b, const char *id, const char *title, const char *note,
                  const parallel_axis *axes, int n_axes, int n_lines, const double *color_value,
                  const char *color_label, const char *const *tips)
{
    int width = 90 + PC_SPACING * (n_axes > 1 ? n_axes - 1 : 1) + 70;
    if (width < 560)
        width = 560;
    double left = 90, span = width - left - 70;
    double top = svg_header_height(note) + 28;
    int height = (int)(top + PC_PLOT_H + 92);
    int *order = malloc(((size_t)n_lines + 1) * sizeof *order);
    plot_area *pa = malloc((size_t)n_axes * sizeof *pa);
    if (!order || !pa) {
        b->failed = 1;
        free(order);
        free(pa);
        return;
    }
    for (int k = 0; k < n_axes; k++) {
        memset(&pa[k], 0, sizeof pa[k]);
        pa[k].left = left + (n_axes > 1 ? span * k / (n_axes - 1) : span / 2);
        pa[k].top = top;
        pa[k].height = PC_PLOT_H;
        axis_scale(&axes[k], &pa[k].y);
    }
    svg_open(b, id, title, note, width, height);

    /* The lines, muted ones first, the best last (on top). */
    double cmin = INFINITY, cmax = -INFINITY;
    for (int i = 0; i < n_lines; i++)
        if (isfinite(color_value[i])) {
            cmin = fmin(cmin, color_value[i]);
            cmax = fmax(cmax, color_value[i]);
        }
    for (int i = 0; i < n_lines; i++)
        order[i] = i;
    sort_keys = color_value;
    qsort(order, (size_t)n_lines, sizeof *order, by_key);
    nb_sb_puts(b, "<g class=\"lines\" fill=\"none\">\n");
    for (int o = 0; o < n_lines; o++) {
        int i = order[o];
        char color[8] = "#b4b4b4";
        int muted = !isfinite(color_value[i]);
        if (!muted)
            viridis(cmax > cmin ? (color_value[i] - cmin) / (cmax - cmin) : 1, color);
        nb_sb_printf(b, "<path class=\"trial-line\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"",
                     color, muted ? "1" : "1.8", muted ? " stroke-dasharray=\"4 3\"" : "");
        int pen = 0;
        for (int k = 0; k < n_axes; k++) {
            double t = scale_t(axes[k].kind, axes[k].v[i]);
            if (isnan(t)) {
                pen = 0;
                continue;
            }
            nb_sb_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', pa[k].left, plot_y(&pa[k], t));
            pen = 1;
        }
        nb_sb_puts(b, "\">");
        if (tips && tips[i]) {
            nb_sb_puts(b, "<title>");
            html_escape(b, tips[i]);
            nb_sb_puts(b, "</title>");
        }
        nb_sb_puts(b, "</path>\n");
    }
    nb_sb_puts(b, "</g>\n");

    /* The axes over the lines, with their names above and ticks labelled on a white halo. */
    for (int k = 0; k < n_axes; k++) {
        const plot_area *p = &pa[k];
        nb_sb_printf(b, "<g class=\"axes\"><line class=\"frame\" x1=\"%.1f\" y1=\"%.1f\" "
                     "x2=\"%.1f\" y2=\"%.1f\" stroke=\"#666\"/>", p->left, top, p->left,
                     top + PC_PLOT_H);
        nb_sb_printf(b, "<text class=\"al\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                     p->left, top - 12);
        html_escape_clipped(b, axes[k].name, 20, 0);
        nb_sb_puts(b, "</text>\n");
        for (int i = 0; i < p->y.n_ticks; i++) {
            double y = plot_y(p, p->y.tick[i]);
            nb_sb_printf(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                         "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">",
                         p->left - 4, y, p->left, y, p->left - 6, y + 4);
            html_escape_clipped(b, p->y.label[i], 12, 0);
            nb_sb_puts(b, "</text>");
        }
        nb_sb_puts(b, "</g>\n");
    }

    /* The colour scale. */
    if (cmin <= cmax) {
        double x0 = left, y0 = top + PC_PLOT_H + 34, w = 220;
        nb_sb_puts(b, "<g class=\"colorbar\">");
        for (int i = 0; i < 44; i++) {
            char c[8];
            viridis(i / 43.0, c);
            nb_sb_printf(b,
                         "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>",
                         x0 + w * i / 44, y0, w / 44 + 0.3, c);
        }
        nb_sb_printf(b, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\">%.4g</text>", x0, y0 + 24, cmin);
        nb_sb_printf(b, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>",
                     x0 + w, y0 + 24, cmax);
        nb_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x0 + w + 12, y0 + 9);
        html_escape(b, color_label);
        nb_sb_puts(b, "</text>");
        nb_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#b4b4b4\" "
                     "stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%.1f\">no score "
                     "(pruned)</text>", x0, y0 + 38, x0 + 30, y0 + 38, x0 + 36, y0 + 42);
        nb_sb_puts(b, "</g>\n");
    }
    svg_close(b);
    free(order);
    free(pa);
}

void svg_bars(nb_strbuf *b, const char *id, const char *title, const char *note,
              const char *const *names, const double *values, int n, double max,
              const char *xlabel)
{
    int width = 560, row = 24;
    double left = 150, bar_w = 330, top = svg_header_height(note) + 8;
    int height = (int)(top + n * row + 40);
    if (!(max > 0))
        max = 1;
    svg_open(b, id, title, note, width, height);
    for (int i = 0; i < n; i++) {
        double y = top + i * row;
        nb_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + 15);
        html_escape_clipped(b, names[i], 20, 0);
        nb_sb_puts(b, "</text>");
        if (isnan(values[i])) {
            nb_sb_printf(b, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\">n/a</text>\n", left + 4,
                         y + 15);
            continue;
        }
        double w = fmax(0, fmin(1, values[i] / max)) * bar_w;
        nb_sb_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" "
                     "fill=\"#5b7fa6\"/><text class=\"tl\" x=\"%.1f\" y=\"%.1f\">%.2f</text>\n",
                     left, y + 3, w, left + w + 6, y + 15, values[i]);
    }
    double base = top + n * row + 4;
    nb_sb_printf(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", left,
                 base, left + bar_w, base);
    nb_sb_printf(b, "<text class=\"al\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                 left + bar_w / 2, base + 22);
    html_escape(b, xlabel);
    nb_sb_puts(b, "</text>\n");
    svg_close(b);
}
