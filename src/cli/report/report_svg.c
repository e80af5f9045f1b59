/* Line and scatter charts as inline SVG, and the pieces other charts share. */
#include "cli/report/report_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const PALETTE[PALETTE_SIZE] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#393b79", "#bcbd22", "#17becf"};
/* Decision regions: dark and saturated for the points, light for the regions. */
static const char *const CLASS_COLOR[CLASS_COLORS] = {
    "#c0392b", "#2e4fa3", "#1e8449", "#b7950b", "#6c3483", "#0e6655", "#a04000", "#283747"};
static const char *const CLASS_TINT[CLASS_COLORS] = {
    "#f5c6c0", "#c4d0f0", "#bfe6cc", "#f3e5ab", "#dcc6e8", "#b8e0d9", "#f0cdb3", "#c9d1da"};

/* i modulo n, never negative. */
static int wrap(int i, int n) { return ((i % n) + n) % n; }

const char *palette_color(int i) { return PALETTE[wrap(i, PALETTE_SIZE)]; }
const char *class_color(int i) { return CLASS_COLOR[wrap(i, CLASS_COLORS)]; }
const char *class_tint(int i) { return CLASS_TINT[wrap(i, CLASS_COLORS)]; }

/* Text is 12px sans-serif; this is a generous average width of a character. */
#define CHAR_W 7.0
#define LEGEND_ROW 18
#define LEGEND_MAX_CHARS 48

double plot_x(const plot_area *p, double t)
{
    return p->left + (t - p->x.t0) / (p->x.t1 - p->x.t0) * p->width;
}

double plot_y(const plot_area *p, double t)
{
    return p->top + p->height - (t - p->y.t0) / (p->y.t1 - p->y.t0) * p->height;
}

int svg_header_height(const char *note)
{
    return note ? 46 : 30;
}

void svg_open(nb_strbuf *b, const char *id, const char *title, const char *note, int width,
              int height)
{
    nb_sb_printf(b, "<svg class=\"chart\" data-chart=\"");
    html_escape(b, id);
    nb_sb_printf(b, "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", width,
                 height, width, height);
    nb_sb_puts(b, "<text class=\"title\" x=\"10\" y=\"20\">");
    html_escape(b, title);
    nb_sb_puts(b, "</text>\n");
    if (note) {
        nb_sb_puts(b, "<text class=\"note\" x=\"10\" y=\"37\">");
        html_escape(b, note);
        nb_sb_puts(b, "</text>\n");
    }
}

void svg_close(nb_strbuf *b)
{
    nb_sb_puts(b, "</svg>\n");
}

void svg_axes(nb_strbuf *b, const plot_area *p, const char *xlabel, const char *ylabel,
              int grid_x, int grid_y)
{
    double bottom = p->top + p->height, right = p->left + p->width;
    nb_sb_puts(b, "<g class=\"axes\">\n");
    for (int i = 0; i < p->x.n_ticks; i++) {
        double x = plot_x(p, p->x.tick[i]);
        if (grid_x)
            nb_sb_printf(b,
                         "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                         x, p->top, x, bottom);
        nb_sb_printf(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                     x, bottom, x, bottom + 4);
        nb_sb_printf(b, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x,
                     bottom + 16);
        /* Category texts come from the study's files: escaped, and clipped to their room. */
        int room = (int)(p->width / (p->x.n_ticks > 0 ? p->x.n_ticks : 1) / CHAR_W);
        html_escape_clipped(b, p->x.label[i], room < 4 ? 4 : room, 0);
        nb_sb_puts(b, "</text>\n");
    }
    for (int i = 0; i < p->y.n_ticks; i++) {
        double y = plot_y(p, p->y.tick[i]);
        if (grid_y)
            nb_sb_printf(b,
                         "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                         p->left, y, right, y);
        nb_sb_printf(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                     p->left - 4, y, p->left, y);
        nb_sb_printf(b, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                     p->left - 6, y + 4);
        html_escape_clipped(b, p->y.label[i], (int)((p->left - 8) / CHAR_W), 0);
        nb_sb_puts(b, "</text>\n");
    }
    nb_sb_printf(b,
                 "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
                 p->left, p->top, p->width, p->height);
    if (xlabel) {
        nb_sb_printf(b, "<text class=\"al\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                     p->left + p->width / 2, bottom + 34);
        html_escape(b, xlabel);
        nb_sb_puts(b, "</text>\n");
    }
    if (ylabel) {
        double x = 14, y = p->top + p->height / 2;
        nb_sb_printf(b, "<text class=\"al\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 %.1f %.1f)\">", x, y, x, y);
        html_escape(b, ylabel);
        nb_sb_puts(b, "</text>\n");
    }
    nb_sb_puts(b, "</g>\n");
}

void svg_marker(nb_strbuf *b, mark_kind m, double x, double y, double r, const char *color)
{
    switch (m) {
    case MARK_NONE:
        break;
    case MARK_CIRCLE:
        nb_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>", x, y, r, color);
        break;
    case MARK_RING:
        nb_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"#fff\" stroke=\"%s\" "
                     "stroke-width=\"2\"/>", x, y, r, color);
        break;
    case MARK_CROSS:
        nb_sb_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"/>", x - r, y - r, x + r, y + r, x - r, y + r, x + r,
                     y - r, color);
        break;
    case MARK_SQUARE:
        nb_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                     x - r, y - r, 2 * r, 2 * r, color);
        break;
    case MARK_TRIANGLE:
        nb_sb_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x,
                     y - 1.35 * r, x + 1.25 * r, y + 0.9 * r, x - 1.25 * r, y + 0.9 * r, color);
        break;
    }
}

static const char *dasharray(dash_kind d)
{
    return d == DASH_DASHED   ? " stroke-dasharray=\"7 4\""
           : d == DASH_DOTTED ? " stroke-dasharray=\"2 3\""
                              : "";
}

static double entry_width(const legend_entry *e)
{
    int chars = utf8_chars(e->label ? e->label : "");
    if (chars > LEGEND_MAX_CHARS)
        chars = LEGEND_MAX_CHARS;
    return 34 + chars * CHAR_W + 14;
}

/* Lays the entries out in rows; returns the rows, and with b draws them. */
static int legend_layout(nb_strbuf *b, const legend_entry *e, int n, double x0, double y0,
                         double width)
{
    if (n == 0)
        return 0;
    int rows = 1;
    double x = 0;
    for (int i = 0; i < n; i++) {
        double w = entry_width(&e[i]);
        if (x > 0 && x + w > width) {
            rows++;
            x = 0;
        }
        if (b) {
            double ex = x0 + x, ey = y0 + (rows - 1) * LEGEND_ROW + 9;
            if (e[i].key) {
                nb_sb_puts(b, "<g class=\"legend-item\" data-key=\"");
                html_escape(b, e[i].key);
                nb_sb_puts(b, "\">");
            } else {
                nb_sb_puts(b, "<g class=\"legend-entry\">");
            }
            if (e[i].line)
                nb_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"%s\" stroke-width=\"2\"%s/>", ex, ey, ex + 26, ey,
                             e[i].color, dasharray(e[i].dash));
            svg_marker(b, e[i].mark, ex + 13, ey, 3.5, e[i].color);
            nb_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", ex + 32, ey + 4);
            html_escape_clipped(b, e[i].label, LEGEND_MAX_CHARS, 1);
            nb_sb_puts(b, "</text></g>\n");
        }
        x += w;
    }
    return rows;
}

int legend_height(const legend_entry *e, int n, double width)
{
    int rows = legend_layout(NULL, e, n, 0, 0, width);
    return rows ? rows * LEGEND_ROW + 6 : 0;
}

void svg_legend(nb_strbuf *b, const legend_entry *e, int n, double x, double y, double width)
{
    nb_sb_puts(b, "<g class=\"legend\">\n");
    legend_layout(b, e, n, x, y, width);
    nb_sb_puts(b, "</g>\n");
}

/* ---- line and scatter charts ---------------------------------------------------------------- */

/* The t range of one axis over every point that has both coordinates. */
static void data_range(const chart *c, int y_axis, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < c->n_series; s++) {
        const chart_series *se = &c->series[s];
        if (y_axis && se->pin_bottom)
            continue;
        for (int i = 0; i < se->n; i++) {
            double tx = scale_t(c->x.kind, se->x[i]);
            double ty = se->pin_bottom ? 0 : scale_t(c->y.kind, se->y[i]);
            if (isnan(tx) || isnan(ty))
                continue;
            double t = y_axis ? ty : tx;
            *lo = fmin(*lo, t);
            *hi = fmax(*hi, t);
        }
    }
}

/* Returns whether the axis has data. */
static int fit_axis(scale *s, const axis_spec *a, double lo, double hi)
{
    if (a->kind == SCALE_CATEGORY) {
        scale_categories(s, a->n_categories, a->categories);
        return 1;
    }
    if (a->exact) {
        scale_fit(s, a->kind, scale_t(a->kind, a->lo), scale_t(a->kind, a->hi), 1,
                  a->integer);
        return 1;
    }
    if (lo > hi) {
        scale_fit(s, a->kind, 0, 1, 0, a->integer);
        return 0;
    }
    scale_fit(s, a->kind, lo, hi, 0, a->integer);
    return 1;
}

/* Points of a series kept for drawing: all of them up to SERIES_MAX_POINTS; beyond, per
 * bucket of neighbours the lowest and highest (in order), and a gap where the bucket had
 * one. keep[] gets indices, -1 for a gap. Returns the count. */
static int thin_points(const chart_series *se, scale_kind ky, int *keep)
{
    if (se->n <= SERIES_MAX_POINTS) {
        for (int i = 0; i < se->n; i++)
            keep[i] = i;
        return se->n;
    }
    int buckets = SERIES_MAX_POINTS / 3, m = 0;
    for (int k = 0; k < buckets; k++) {
        int a = (int)((long long)se->n * k / buckets);
        int z = (int)((long long)se->n * (k + 1) / buckets);
        int lo = -1, hi = -1, gap = 0;
        for (int i = a; i < z; i++) {
            double t = scale_t(ky, se->y[i]);
            if (isnan(t) || !isfinite(se->x[i])) {
                gap = 1;
                continue;
            }
            if (lo < 0 || t < scale_t(ky, se->y[lo]))
                lo = i;
            if (hi < 0 || t > scale_t(ky, se->y[hi]))
                hi = i;
        }
        if (lo >= 0)
            keep[m++] = lo < hi ? lo : hi;
        if (hi >= 0 && hi != lo)
            keep[m++] = lo < hi ? hi : lo;
        if (gap)
            keep[m++] = -1;
    }
    return m;
}

static void draw_series(nb_strbuf *b, const chart *c, const plot_area *p, const chart_series *se,
                        int *keep)
{
    int m = thin_points(se, c->y.kind, keep);
    double pin = p->top + p->height - 7;
    nb_sb_puts(b, "<g class=\"series\"");
    if (se->key) {
        nb_sb_puts(b, " data-key=\"");
        html_escape(b, se->key);
        nb_sb_puts(b, "\"");
    }
    nb_sb_printf(b, " data-color=\"%s\"><title>", se->color);
    html_escape(b, se->name);
    nb_sb_puts(b, "</title>\n");
    int finite = 0;
    for (int k = 0; k < m; k++)
        if (keep[k] >= 0 && !isnan(scale_t(c->x.kind, se->x[keep[k]])) &&
            (se->pin_bottom || !isnan(scale_t(c->y.kind, se->y[keep[k]]))))
            finite++;
    /* The line: a move after every gap. */
    if (se->width > 0) {
        nb_sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                     "stroke-linejoin=\"round\"%s d=\"", se->color, se->width,
                     dasharray(se->dash));
        int pen = 0;
        for (int k = 0; k < m; k++) {
            int i = keep[k];
            double tx = i >= 0 ? scale_t(c->x.kind, se->x[i]) : NAN;
            double ty = i >= 0 ? (se->pin_bottom ? 0 : scale_t(c->y.kind, se->y[i])) : NAN;
            if (isnan(tx) || isnan(ty)) {
                pen = 0;
                continue;
            }
            nb_sb_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', plot_x(p, tx),
                         se->pin_bottom ? pin : plot_y(p, ty));
            pen = 1;
        }
        nb_sb_puts(b, "\"/>\n");
    }
    /* Markers: as asked, or small circles on a line with few points, and always on a point
     * with gaps on both sides, which the line alone would not show. */
    for (int k = 0; k < m; k++) {
        int i = keep[k];
        if (i < 0)
            continue;
        double tx = scale_t(c->x.kind, se->x[i]);
        double ty = se->pin_bottom ? 0 : scale_t(c->y.kind, se->y[i]);
        if (isnan(tx) || isnan(ty))
            continue;
        mark_kind mk = se->mark;
        double r = 3.5;
        if (mk == MARK_NONE) {
            int before = k > 0 && keep[k - 1] >= 0 &&
                         !isnan(scale_t(c->y.kind, se->y[keep[k - 1]]));
            int after = k + 1 < m && keep[k + 1] >= 0 &&
                        !isnan(scale_t(c->y.kind, se->y[keep[k + 1]]));
            if (se->width > 0 && ((finite <= 40 && !se->plain) || (!before && !after)))
                mk = MARK_CIRCLE, r = 3;
        }
        if (mk == MARK_NONE)
            continue;
        double x = plot_x(p, tx), y = se->pin_bottom ? pin : plot_y(p, ty);
        if (se->tips && se->tips[i]) {
            nb_sb_puts(b, "<g><title>");
            html_escape(b, se->tips[i]);
            nb_sb_puts(b, "</title>");
            svg_marker(b, mk, x, y, r, se->color);
            nb_sb_puts(b, "</g>");
        } else {
            svg_marker(b, mk, x, y, r, se->color);
        }
    }
    nb_sb_puts(b, "</g>\n");
}

void svg_chart(nb_strbuf *b, const chart *c)
{
    int width = c->width ? c->width : 560, plot_h = c->plot_height ? c->plot_height : 240;
    plot_area p;
    memset(&p, 0, sizeof p);
    p.left = 66;
    p.top = svg_header_height(c->note) + 6;
    p.width = width - p.left - 18;
    p.height = plot_h;
    double lo, hi;
    data_range(c, 0, &lo, &hi);
    int has_x = fit_axis(&p.x, &c->x, lo, hi);
    data_range(c, 1, &lo, &hi);
    int has_y = fit_axis(&p.y, &c->y, lo, hi);
    double legend_top = p.top + p.height + 44;
    int height = (int)(legend_top + legend_height(c->legend, c->n_legend, p.width) + 4);

    svg_open(b, c->id, c->title, c->note, width, height);
    svg_axes(b, &p, c->x.label, c->y.label, 1, 1);
    if (!has_x || !has_y) {
        nb_sb_printf(b, "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                     "no data yet</text>\n", p.left + p.width / 2, p.top + p.height / 2);
    } else {
        int most = 0;
        for (int s = 0; s < c->n_series; s++)
            most = c->series[s].n > most ? c->series[s].n : most;
        int *keep = malloc(((size_t)most + 1) * sizeof *keep);
        if (!keep) {
            b->failed = 1;
            return;
        }
        for (int s = 0; s < c->n_series; s++)
            draw_series(b, c, &p, &c->series[s], keep);
        free(keep);
    }
    svg_legend(b, c->legend, c->n_legend, p.left, legend_top, p.width);
    svg_close(b);
}
