/* Axis scales and their ticks. */
#include "cli/report/report_scale.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

double scale_t(scale_kind kind, double v)
{
    if (!isfinite(v))
        return NAN;
    switch (kind) {
    case SCALE_LOG: return v > 0 ? log10(v) : NAN;
    case SCALE_ONE_MINUS_LOG: return v < 1 ? -log10(1 - v) : NAN;
    default: return v;
    }
}

static double value_of(scale_kind kind, double t)
{
    switch (kind) {
    case SCALE_LOG: return pow(10, t);
    case SCALE_ONE_MINUS_LOG: return 1 - pow(10, -t);
    default: return t;
    }
}

void format_number(char *buf, size_t cap, double v, int digits)
{
    if (v == 0)
        v = 0; /* no "-0" */
    snprintf(buf, cap, "%.*g", digits, v);
    /* "1e-05" -> "1e-5", "1e+06" -> "1e6". */
    char *e = strchr(buf, 'e');
    if (!e)
        return;
    char *src = e + 1, *dst = e + 1;
    if (*src == '+')
        src++;
    else if (*src == '-')
        *dst++ = *src++;
    while (*src == '0' && src[1])
        src++;
    memmove(dst, src, strlen(src) + 1);
}

/* A round step near x: 1, 2 or 5 times a power of ten. */
static double nice_step(double x)
{
    double e = floor(log10(x)), f = x / pow(10, e);
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * pow(10, e);
}

static void add_tick(scale *s, double t, double v, int digits)
{
    if (s->n_ticks >= SCALE_MAX_TICKS || !isfinite(t) || t < s->t0 - 1e-9 * (s->t1 - s->t0) ||
        t > s->t1 + 1e-9 * (s->t1 - s->t0))
        return;
    for (int i = 0; i < s->n_ticks; i++)
        if (fabs(s->tick[i] - t) < 1e-9 * (s->t1 - s->t0))
            return;
    s->tick[s->n_ticks] = t;
    format_number(s->label[s->n_ticks], SCALE_LABEL_MAX, v, digits);
    s->n_ticks++;
}

/* Round values in value space between those of t0 and t1, placed on the scale: for log and
 * 1-log ranges narrower than a decade. */
static void value_ticks(scale *s, int digits)
{
    double v0 = value_of(s->kind, s->t0), v1 = value_of(s->kind, s->t1);
    double step = nice_step((v1 - v0) / 5);
    for (double k = ceil(v0 / step - 1e-9); k <= floor(v1 / step + 1e-9); k++) {
        double v = k * step;
        add_tick(s, scale_t(s->kind, v), v, digits);
    }
}

static void fit_linear(scale *s, double tmin, double tmax, int exact, double min_step)
{
    if (tmax - tmin <= 1e-12 * fmax(1, fabs(tmin))) {
        double d = tmin == 0 ? 1 : fabs(tmin) * 0.1;
        tmin -= d;
        tmax += d;
    }
    double step = fmax(nice_step((tmax - tmin) / 5), min_step);
    s->t0 = exact ? tmin : floor(tmin / step + 1e-9) * step;
    s->t1 = exact ? tmax : ceil(tmax / step - 1e-9) * step;
    for (double k = ceil(s->t0 / step - 1e-9); k <= floor(s->t1 / step + 1e-9); k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9)
            v = 0;
        add_tick(s, v, v, 6);
    }
}

/* Log and 1-log: ticks at whole decades (every few over a wide range), with 2 and 5 between
 * them over a narrow one; values between round ones when under a decade. */
static void fit_decades(scale *s, double tmin, double tmax, int exact)
{
    if (tmax - tmin < 1e-9) {
        tmin -= 0.15;
        tmax += 0.15;
    }
    if (exact) {
        s->t0 = tmin;
        s->t1 = tmax;
    } else if (tmax - tmin >= 1) {
        s->t0 = floor(tmin + 1e-9);
        s->t1 = ceil(tmax - 1e-9);
    } else {
        double pad = 0.05 * (tmax - tmin);
        s->t0 = tmin - pad;
        s->t1 = tmax + pad;
    }
    double decades = s->t1 - s->t0;
    /* 1-log labels need a digit per decade: 0.9999 */
    int digits = s->kind == SCALE_LOG ? 6 : 6 + (int)fmax(0, ceil(s->t1));
    if (floor(s->t1 + 1e-9) - ceil(s->t0 - 1e-9) < 1) {
        value_ticks(s, digits);
        return;
    }
    int every = (int)ceil(decades / 8);
    for (double k = ceil(s->t0 - 1e-9); k <= floor(s->t1 + 1e-9); k += every) {
        add_tick(s, k, value_of(s->kind, k), digits);
        if (decades <= 2.01) {
            /* log10 2 and log10 5 above a decade: 2 and 5 times it on a log scale; on a 1-log
             * scale 1 - 0.5*10^-k and 1 - 0.2*10^-k (0.95 and 0.98 above 0.9). */
            double a = log10(2), b = log10(5);
            add_tick(s, k + a, value_of(s->kind, k + a), digits);
            add_tick(s, k + b, value_of(s->kind, k + b), digits);
            add_tick(s, k - 1 + a, value_of(s->kind, k - 1 + a), digits);
            add_tick(s, k - 1 + b, value_of(s->kind, k - 1 + b), digits);
        }
    }
    /* A search space's bounds are worth a label too (beta from 0.5), unless a tick is near. */
    for (int end = 0; exact && end < 2; end++) {
        double t = end ? s->t1 : s->t0, nearest = INFINITY;
        for (int i = 0; i < s->n_ticks; i++)
            nearest = fmin(nearest, fabs(s->tick[i] - t));
        if (nearest > 0.08 * decades)
            add_tick(s, t, value_of(s->kind, t), digits);
    }
    /* The ticks went in out of order; the renderer does not mind, but sorted reads better. */
    for (int i = 1; i < s->n_ticks; i++)
        for (int j = i; j > 0 && s->tick[j] < s->tick[j - 1]; j--) {
            double t = s->tick[j];
            char l[SCALE_LABEL_MAX];
            s->tick[j] = s->tick[j - 1];
            s->tick[j - 1] = t;
            memcpy(l, s->label[j], sizeof l);
            memcpy(s->label[j], s->label[j - 1], sizeof l);
            memcpy(s->label[j - 1], l, sizeof l);
        }
}

void scale_fit(scale *s, scale_kind kind, double tmin, double tmax, int exact, double min_step)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    if (!isfinite(tmin) || !isfinite(tmax) || tmin > tmax)
        tmin = tmax = 0;
    if (kind == SCALE_LINEAR || kind == SCALE_CATEGORY) {
        s->kind = SCALE_LINEAR;
        fit_linear(s, tmin, tmax, exact, min_step);
    } else {
        fit_decades(s, tmin, tmax, exact);
    }
}

void scale_categories(scale *s, int n, const char *const *texts)
{
    memset(s, 0, sizeof *s);
    s->kind = SCALE_CATEGORY;
    if (n < 1)
        n = 1;
    s->t0 = -0.5;
    s->t1 = n - 0.5;
    for (int i = 0; i < n && i < SCALE_MAX_TICKS; i++) {
        s->tick[i] = i;
        snprintf(s->label[i], SCALE_LABEL_MAX, "%s", texts && texts[i] ? texts[i] : "");
        s->n_ticks++;
    }
}
