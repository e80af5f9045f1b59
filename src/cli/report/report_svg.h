/* nabla report: charts as inline SVG. A chart has a title, two axes with ticks, labels and a
 * light grid, its series (lines and/or markers; NaN values leave gaps) and a legend under the
 * plot whose entries, when they have a key, hide and show the series with that key (a few lines
 * of script in the page). Every series is a <g class="series"> with data-color, so a test can
 * count what was drawn. No text from a file reaches the SVG unescaped. */
#ifndef NABLA_CLI_REPORT_SVG_H
#define NABLA_CLI_REPORT_SVG_H

#include "cli/report/html_escape.h"
#include "cli/report/report_scale.h"

/* Ten colours told apart easily (Tableau's, with indigo for its grey, which text would
 * blur into), in order: series of a chart, runs of a report
 * (the same colour for the same run in every chart). i is taken modulo 10. */
#define PALETTE_SIZE 10
const char *palette_color(int i);
/* The classes of decision regions have their own colours, none of the palette's, so that a
 * class never looks like a run; the regions are drawn in their light tints. */
#define CLASS_COLORS 8
const char *class_color(int i);
const char *class_tint(int i);

typedef enum mark_kind { MARK_NONE, MARK_CIRCLE, MARK_RING, MARK_CROSS, MARK_SQUARE,
                         MARK_TRIANGLE } mark_kind;
typedef enum dash_kind { DASH_SOLID, DASH_DASHED, DASH_DOTTED } dash_kind;

/* More points than this in one line are thinned (the lowest and highest of each run of
 * neighbours kept, so spikes stay), for the file's size and the browser's speed. */
#define SERIES_MAX_POINTS 2000

typedef struct chart_series {
    const char *key;          /* the legend entry that hides it; NULL: none */
    const char *name;         /* its tooltip */
    const char *color;
    dash_kind dash;
    double width;             /* line width; 0: no line */
    mark_kind mark;           /* markers; a line with few points gets small circles anyway */
    int plain;                /* no such circles (many lines in one chart); a point alone
                                 between gaps still gets one, or it would not show */
    int pin_bottom;           /* drawn along the bottom of the plot whatever y is (trials
                                 without a result), and left out of the fitting of y */
    int n;
    const double *x, *y;      /* NaN (or no value on the scale): a gap */
    const char *const *tips;  /* a tooltip for each point, or NULL */
} chart_series;

typedef struct legend_entry {
    const char *key;          /* hides the series with this key when clicked; NULL: none */
    const char *label;
    const char *color;
    dash_kind dash;
    int line;                 /* draw a line in the swatch */
    mark_kind mark;           /* and/or a marker */
} legend_entry;

typedef struct axis_spec {
    const char *label;
    scale_kind kind;
    int exact;                /* the range is [lo, hi] (values), not fitted to the data */
    int integer;              /* whole numbers (epochs, steps, trials): ticks 1 or more apart */
    double lo, hi;
    int n_categories;         /* SCALE_CATEGORY: the texts at 0..n-1 */
    const char *const *categories;
} axis_spec;

typedef struct chart {
    const char *id;           /* data-chart="id": what the chart shows, for tests */
    const char *title;
    const char *note;         /* a line under the title, or NULL */
    axis_spec x, y;
    const chart_series *series;
    int n_series;
    const legend_entry *legend;
    int n_legend;
    int width, plot_height;   /* 0: 560 and 240 */
} chart;

void svg_chart(nb_strbuf *b, const chart *c);

/* The pieces, for charts of other shapes (decision regions, parallel coordinates, bars). */
typedef struct plot_area {
    double left, top, width, height;
    scale x, y;
} plot_area;
double plot_x(const plot_area *p, double t);
double plot_y(const plot_area *p, double t);
/* <svg class="chart" data-chart=id ...> with its title and note; close with svg_close. */
void svg_open(nb_strbuf *b, const char *id, const char *title, const char *note, int width,
              int height);
void svg_close(nb_strbuf *b);
/* Space the title and note take at the top. */
int svg_header_height(const char *note);
/* Frame, grid, ticks and their labels, axis labels; grid_x/grid_y draw grid lines. */
void svg_axes(nb_strbuf *b, const plot_area *p, const char *xlabel, const char *ylabel,
              int grid_x, int grid_y);
void svg_marker(nb_strbuf *b, mark_kind m, double x, double y, double r, const char *color);
/* Height a legend of these entries takes in `width` pixels, and the legend itself at (x, y). */
int legend_height(const legend_entry *e, int n, double width);
void svg_legend(nb_strbuf *b, const legend_entry *e, int n, double x, double y, double width);

#endif /* NABLA_CLI_REPORT_SVG_H */
