/* Decision regions: regenerate the run's training set, load its model, predict a grid. */
#include "cli/report/report_regions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_files.h"
#include "cli/common/run_check.h"
#include "cli/common/run_source.h"
#include "cli/report/report_svg.h"

#define WIDTH 560
#define PLOT_W 476
#define PLOT_H 300

int regions_possible(const run_data *r)
{
    const char *task = json_string(r->config, "task");   /* absent: a classifier */
    return r->has_model && json_number(r->config, "features") == 2 &&
           (!task || strcmp(task, "classification") == 0);
}

/* The run's training points, as `nabla train` had them: 1 with *train filled, 0 when they
 * cannot be had (why says so), -1 on an error. */
static int training_points(const run_data *r, const nb_model *m, nb_dataset *train, char *why,
                           size_t why_size, nb_error *err)
{
    const char *kind = json_string(r->config, "data_kind");
    if (strcmp(kind, "csv") != 0 && strcmp(kind, "synthetic") != 0) {
        memset(train, 0, sizeof *train);
        snprintf(why, why_size, "its data is not a two-feature set");
        return 0;
    }
    int got = run_read_data(r->config, r->dir, m, RUN_TRAIN, train, why, why_size, err);
    if (got <= 0)
        return got;
    if (train->features != 2 || !train->values) {
        snprintf(why, why_size, "its data has %d features now, not 2", train->features);
        nb_dataset_free(train);
        return 0;
    }
    return 1;
}

/* The data's box, padded; widened to the plot's proportions so that circles stay round,
 * unless the features' spans differ too much for that (unscaled CSV columns). */
static void data_box(const nb_dataset *d, double box[4])
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < d->n; i++) {
        x0 = fmin(x0, d->values[2 * i]);
        x1 = fmax(x1, d->values[2 * i]);
        y0 = fmin(y0, d->values[2 * i + 1]);
        y1 = fmax(y1, d->values[2 * i + 1]);
    }
    double sx = fmax(x1 - x0, 1e-6 * fmax(1, fabs(x0)));
    double sy = fmax(y1 - y0, 1e-6 * fmax(1, fabs(y0)));
    sx *= 1.16;
    sy *= 1.16;
    double shape = (sx / sy) / ((double)PLOT_W / PLOT_H);
    if (shape >= 1.0 / 3 && shape < 1)
        sx = sy * PLOT_W / PLOT_H;
    else if (shape >= 1 && shape <= 3)
        sy = sx * PLOT_H / PLOT_W;
    double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    box[0] = cx - sx / 2;
    box[1] = cx + sx / 2;
    box[2] = cy - sy / 2;
    box[3] = cy + sy / 2;
}

/* The predicted class of every cell (row 0 at the top), or -1 with err. */
static int predict_grid(nb_model *m, const double box[4], int cols, int rows, int32_t *cls,
                        nb_error *err)
{
    float *x = malloc((size_t)cols * rows * 2 * sizeof *x);
    if (!x)
        return nb_fail(err, "out of memory");
    for (int j = 0; j < rows; j++)
        for (int i = 0; i < cols; i++) {
            float *p = x + 2 * ((size_t)j * cols + i);
            p[0] = (float)(box[0] + (i + 0.5) * (box[1] - box[0]) / cols);
            p[1] = (float)(box[3] - (j + 0.5) * (box[3] - box[2]) / rows);
            /* The model's input standardization (--normalize standard), as train applied it. */
            for (int f = 0; m->norm_mean && m->norm_std && f < 2; f++)
                p[f] = (p[f] - m->norm_mean[f]) / m->norm_std[f];
        }
    int rc = nb_model_predict(m, x, cols * rows, cls, err);
    free(x);
    return rc;
}

static void draw_regions(nb_strbuf *b, const plot_area *p, const int32_t *cls, int cols, int rows)
{
    double cw = p->width / cols, ch = p->height / rows;
    nb_sb_puts(b, "<g class=\"regions\">\n");
    for (int j = 0; j < rows; j++) {
        const int32_t *row = cls + (size_t)j * cols;
        for (int i = 0; i < cols;) {
            int k = i;
            while (k < cols && row[k] == row[i])
                k++;
            nb_sb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                         "fill=\"%s\"/>", p->left + i * cw, p->top + j * ch, (k - i) * cw, ch,
                         class_tint(row[i]));
            i = k;
        }
        nb_sb_puts(b, "\n");
    }
    nb_sb_puts(b, "</g>\n");
}

static void draw_points(nb_strbuf *b, const plot_area *p, const nb_dataset *d, int classes,
                        legend_entry *legend, int *n_legend, char keys[][16], char names[][32])
{
    int stride = (d->n + REGIONS_MAX_POINTS - 1) / REGIONS_MAX_POINTS;
    for (int c = 0; c < classes; c++) {
        int any = 0;
        for (int i = 0; i < d->n && !any; i += stride)
            any = d->labels[i] == c;
        if (!any)
            continue; /* no empty series: each one drawn is there to be seen */
        snprintf(keys[*n_legend], 16, "c%d", c);
        snprintf(names[*n_legend], 32, "class %d", c);
        legend[*n_legend] = (legend_entry){keys[*n_legend], names[*n_legend], class_color(c),
                                           DASH_SOLID, 0, MARK_CIRCLE};
        (*n_legend)++;
        nb_sb_printf(b, "<g class=\"series\" data-key=\"c%d\" data-color=\"%s\"><title>class %d "
                     "(training points)</title>\n", c, class_color(c), c);
        for (int i = 0; i < d->n; i += stride)
            if (d->labels[i] == c)
                nb_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" "
                             "stroke=\"#fff\" stroke-width=\"0.5\"/>",
                             plot_x(p, d->values[2 * i]), plot_y(p, d->values[2 * i + 1]),
                             class_color(c));
        nb_sb_puts(b, "\n</g>\n");
    }
}

int regions_chart(nb_strbuf *b, const run_data *r, const char *title, const char *note,
                  char *why, size_t why_size, nb_error *err)
{
    nb_model m;
    if (run_load_model(r, 1024, &m, err) != 0)
        return -1;
    nb_dataset train;
    int rc = training_points(r, &m, &train, why, why_size, err);
    if (rc <= 0) {
        nb_model_free(&m);
        return rc;
    }
    int cols = REGIONS_GRID, rows = (int)lround((double)REGIONS_GRID * PLOT_H / PLOT_W);
    int32_t *cls = rc == 1 ? malloc((size_t)cols * rows * sizeof *cls) : NULL;
    double box[4];
    if (rc == 1 && !cls)
        rc = nb_fail(err, "out of memory");
    if (rc == 1) {
        data_box(&train, box);
        if (predict_grid(&m, box, cols, rows, cls, err) != 0)
            rc = -1;
    }
    if (rc == 1) {
        plot_area p;
        memset(&p, 0, sizeof p);
        p.left = 66;
        p.top = svg_header_height(note) + 6;
        p.width = PLOT_W;
        p.height = PLOT_H;
        scale_fit(&p.x, SCALE_LINEAR, box[0], box[1], 1, 0);
        scale_fit(&p.y, SCALE_LINEAR, box[2], box[3], 1, 0);
        legend_entry legend[REGIONS_MAX_CLASSES];
        char keys[REGIONS_MAX_CLASSES][16], names[REGIONS_MAX_CLASSES][32];
        int n_legend = 0;
        int classes = m.spec.classes < REGIONS_MAX_CLASSES ? m.spec.classes : REGIONS_MAX_CLASSES;
        /* The legend's height first: it sets the chart's. */
        legend_entry probe[REGIONS_MAX_CLASSES];
        for (int c = 0; c < classes; c++)
            probe[c] = (legend_entry){"c", "class 00", "#000", DASH_SOLID, 0, MARK_CIRCLE};
        double legend_top = p.top + p.height + 44;
        int height = (int)(legend_top + legend_height(probe, classes, p.width) + 4);
        svg_open(b, "regions", title, note, WIDTH, height);
        draw_regions(b, &p, cls, cols, rows);
        svg_axes(b, &p, "feature 1", "feature 2", 0, 0);
        draw_points(b, &p, &train, classes, legend, &n_legend, keys, names);
        svg_legend(b, legend, n_legend, p.left, legend_top, p.width);
        svg_close(b);
    }
    free(cls);
    nb_model_free(&m);
    nb_dataset_free(&train);
    return rc;
}
