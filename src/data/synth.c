/* The course's planar toy sets, generated from a seed.
 *
 *   moons    two interleaving half circles, as sklearn.datasets.make_moons: the outer arc
 *            (cos t, sin t) is class 0, the inner arc (1 - cos t, 0.5 - sin t) class 1,
 *            t evenly spaced over [0, pi] on each arc.
 *   circles  two concentric circles, as sklearn.datasets.make_circles with factor 0.5: the
 *            unit circle is class 0, the circle of radius 0.5 class 1, angles evenly spaced
 *            over [0, 2 pi) without the endpoint.
 *   spirals  three arms as in the CS231n notes: for class k, r evenly spaced over [0, 1] and
 *            angle t = 4k + 4r + noise, point (r sin t, r cos t).
 *
 * For moons and circles `noise` is the standard deviation of Gaussian noise added to each
 * coordinate, as in sklearn. For spirals it is the standard deviation of the noise added to
 * the angle, in radians, as in CS231n: noise 0.2 reproduces the notes' figure. (Noise on the
 * angle keeps every arm a spiral; coordinate noise would blur the centre into one blob.)
 *
 * Class sizes differ by at most one (the first classes get the extra samples). The points are
 * generated class by class and then shuffled, so the rows are not sorted by class. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memcheck.h"
#include "nabla.h"

static const char *const synthetic_kinds[] = {"moons", "circles", "spirals"};

int nb_is_synthetic(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof synthetic_kinds / sizeof *synthetic_kinds; i++)
        if (strcmp(name, synthetic_kinds[i]) == 0)
            return 1;
    return 0;
}

/* numpy.linspace(start, stop, count, endpoint) element i. */
static double linspace(double start, double stop, int count, int endpoint, int i)
{
    int intervals = endpoint ? count - 1 : count;
    if (intervals <= 0)
        return start;
    return start + (stop - start) * i / intervals;
}

/* Writes point i of class `label` (out of `count` in that class) into xy, noise included. */
static void make_point(int kind, int label, int i, int count, double noise, nb_rng *rng,
                       float *xy)
{
    double x, y;
    if (kind == 0) {   /* moons */
        double t = linspace(0.0, M_PI, count, 1, i);
        x = label == 0 ? cos(t) : 1.0 - cos(t);
        y = label == 0 ? sin(t) : 0.5 - sin(t);
        x += noise * nb_rng_normal(rng);
        y += noise * nb_rng_normal(rng);
    } else if (kind == 1) {   /* circles */
        double t = linspace(0.0, 2.0 * M_PI, count, 0, i);
        double radius = label == 0 ? 1.0 : 0.5;
        x = radius * cos(t) + noise * nb_rng_normal(rng);
        y = radius * sin(t) + noise * nb_rng_normal(rng);
    } else {   /* spirals */
        double r = linspace(0.0, 1.0, count, 1, i);
        double t = 4.0 * label + 4.0 * r + noise * nb_rng_normal(rng);
        x = r * sin(t);
        y = r * cos(t);
    }
    xy[0] = (float)x;
    xy[1] = (float)y;
}

int nb_make_synthetic(const char *kind, int n, float noise, uint64_t seed, nb_dataset *out,
                      nb_error *err)
{
    memset(out, 0, sizeof *out);
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (kind && strcmp(kind, synthetic_kinds[i]) == 0)
            k = i;
    if (k < 0)
        return nb_fail(err, "unknown synthetic data set '%s' (moons, circles, spirals)",
                       kind ? kind : "(null)");
    if (n <= 0)
        return nb_fail(err, "%s: the number of samples must be positive, not %d", kind, n);
    if (!(noise >= 0.0f) || isinf(noise))
        return nb_fail(err, "%s: noise must be a finite number >= 0, not %g", kind,
                       (double)noise);

    /* Five arrays of the set's size exist at once while it is shuffled. */
    char what[64];
    snprintf(what, sizeof what, "%d samples of %s", n, synthetic_kinds[k]);
    if (nb_check_memory(nb_sat_mul((uint64_t)n, 2 * 2 * sizeof(float) + 3 * sizeof(int32_t)),
                        what, err) != 0)
        return -1;

    int classes = k == 2 ? 3 : 2;
    float *xy = malloc((size_t)n * 2 * sizeof *xy);
    int32_t *y = malloc((size_t)n * sizeof *y);
    int32_t *order = malloc((size_t)n * sizeof *order);
    float *shuffled_xy = malloc((size_t)n * 2 * sizeof *shuffled_xy);
    int32_t *shuffled_y = malloc((size_t)n * sizeof *shuffled_y);
    if (!xy || !y || !order || !shuffled_xy || !shuffled_y) {
        free(xy);
        free(y);
        free(order);
        free(shuffled_xy);
        free(shuffled_y);
        return nb_fail(err, "%s: out of memory for %d samples", kind, n);
    }

    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int row = 0;
    for (int c = 0; c < classes; c++) {
        int count = n / classes + (c < n % classes);
        for (int i = 0; i < count; i++, row++) {
            make_point(k, c, i, count, noise, &rng, xy + 2 * (size_t)row);
            y[row] = c;
        }
    }

    for (int i = 0; i < n; i++)
        order[i] = i;
    nb_shuffle(&rng, order, n);
    for (int i = 0; i < n; i++) {
        shuffled_xy[2 * (size_t)i] = xy[2 * (size_t)order[i]];
        shuffled_xy[2 * (size_t)i + 1] = xy[2 * (size_t)order[i] + 1];
        shuffled_y[i] = y[order[i]];
    }
    free(xy);
    free(y);
    free(order);

    out->n = n;
    out->features = 2;
    out->classes = classes;
    out->values = shuffled_xy;
    out->labels = shuffled_y;
    return 0;
}
