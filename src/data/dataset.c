/* Operations on a loaded data set: dev splits, per-feature statistics, standardization, a
 * finiteness check, copying a batch out, freeing.
 *
 * A data set holds either bytes (images, `pixels`) or floats (`values`). Everything here
 * treats a byte as the float the network sees: byte / 255. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "core/pool.h"
#include "core/simd.h"

void nb_dataset_free(nb_dataset *d)
{
    if (!d)
        return;
    free(d->pixels);
    free(d->values);
    free(d->labels);
    free(d->target);
    nb_table_free(d->table);
    free(d->table);
    memset(d, 0, sizeof *d);
}

/* byte / 255 as a division, the way torchvision's ToTensor computes it, so that inputs are
 * bit-identical to PyTorch's (a multiplication by 1/255.0f differs in the last bit for some
 * bytes). */
static float byte_to_float(uint8_t b) { return (float)b / 255.0f; }

static size_t row_bytes(const nb_dataset *d)
{
    return (size_t)d->features * (d->pixels ? sizeof *d->pixels : sizeof *d->values);
}

/* Moves the rows of `rows` (n of `row` bytes each) that `chosen` marks into `held` and closes
 * the gap in place, both in their original order; the array shrinks to the rows kept (a
 * failed shrink keeps the old block). Returns the array of kept rows. */
static void *partition_rows(void *rows, size_t row, int n, const unsigned char *chosen,
                            void *held)
{
    unsigned char *x = rows, *h = held;
    int kept = 0, out = 0;
    for (int i = 0; i < n; i++) {
        if (chosen[i]) {
            memcpy(h + (size_t)out++ * row, x + (size_t)i * row, row);
        } else {
            if (kept != i)
                memmove(x + (size_t)kept * row, x + (size_t)i * row, row);
            kept++;
        }
    }
    void *fit = realloc(x, (size_t)kept * row);
    return fit ? fit : x;
}

/* dev's fields that describe the data rather than hold it, copied from `from`. */
static int copy_shape(nb_dataset *dev, const nb_dataset *from, nb_error *err)
{
    dev->features = from->features;
    dev->image = from->image;
    dev->classes = from->classes;
    dev->task = from->task;
    dev->targets = from->targets;
    dev->header = from->header;
    if (!from->table)
        return 0;
    nb_table *t = malloc(sizeof *t);
    if (!t)
        return nb_fail(err, "split: out of memory");
    if (nb_table_copy(t, from->table, err) != 0) {
        free(t);
        return -1;
    }
    dev->table = t;
    return 0;
}

int nb_dataset_split(nb_dataset *from, float fraction, uint64_t seed, nb_dataset *dev,
                     nb_error *err)
{
    if (dev == from)
        return nb_fail(err, "split: the dev set must be a different data set");
    memset(dev, 0, sizeof *dev);
    if (!(fraction >= 0.0f && fraction < 1.0f))
        return nb_fail(err, "split: the dev fraction must be in [0, 1), not %g",
                       (double)fraction);
    if (fraction == 0.0f)
        return copy_shape(dev, from, err);   /* empty, but shaped like its source */

    int n = from->n;
    long take = lround((double)fraction * n);
    if (take < 1)
        take = 1;
    if (take > n - 1)
        take = n - 1;
    if (take < 1)
        return nb_fail(err, "split: cannot hold out a dev set from %d sample%s", n,
                       n == 1 ? "" : "s");

    int32_t *order = malloc((size_t)n * sizeof *order);
    unsigned char *chosen = calloc((size_t)n, 1);
    if (!order || !chosen) {
        free(order);
        free(chosen);
        return nb_fail(err, "split: out of memory");
    }

    /* The first `take` of a seeded permutation go to dev; both parts keep the original
     * relative order, so a split of a sorted set is still sorted. */
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++)
        order[i] = i;
    nb_shuffle(&rng, order, n);
    for (long i = 0; i < take; i++)
        chosen[order[i]] = 1;
    free(order);

    /* The arrays of rows a data set may hold: features, labels, targets. */
    void **arrays[3] = {from->pixels ? (void **)&from->pixels : (void **)&from->values,
                        (void **)&from->labels, (void **)&from->target};
    void **dev_arrays[3] = {from->pixels ? (void **)&dev->pixels : (void **)&dev->values,
                            (void **)&dev->labels, (void **)&dev->target};
    size_t row_sizes[3] = {row_bytes(from), sizeof *from->labels,
                           (size_t)(from->targets > 0 ? from->targets : 0) * sizeof(float)};
    /* Allocate every dev array before moving any rows, so a failure leaves `from` whole. */
    void *held[3] = {NULL, NULL, NULL};
    int failed = 0;
    for (int a = 0; a < 3; a++)
        if (*arrays[a] && row_sizes[a] > 0)
            failed |= !(held[a] = malloc((size_t)take * row_sizes[a]));
    if (failed || copy_shape(dev, from, err) != 0) {
        for (int a = 0; a < 3; a++)
            free(held[a]);
        free(chosen);
        nb_dataset_free(dev);
        return failed ? nb_fail(err, "split: out of memory") : -1;
    }
    for (int a = 0; a < 3; a++) {
        if (!held[a])
            continue;
        *arrays[a] = partition_rows(*arrays[a], row_sizes[a], n, chosen, held[a]);
        *dev_arrays[a] = held[a];
    }
    free(chosen);
    from->n = n - (int)take;
    dev->n = (int)take;
    return 0;
}

/* Features are processed in blocks of this many, with double accumulators on the stack and
 * a row-by-row sweep, so memory is read in order however wide a sample is. */
#define STATS_BLOCK 64

/* n rows of `columns` numbers: bytes (images, as byte / 255) or floats. */
typedef struct columns_of {
    int n, columns;
    const uint8_t *bytes;
    const float *floats;
} columns_of;

static double value_at(const columns_of *d, size_t i, int j)
{
    size_t k = i * (size_t)d->columns + (size_t)j;
    return d->bytes ? (double)byte_to_float(d->bytes[k]) : (double)d->floats[k];
}

/* Per-column mean and standard deviation (nb_dataset_stats). */
static void column_stats(const columns_of *d, float *mean, float *std)
{
    for (int j0 = 0; j0 < d->columns; j0 += STATS_BLOCK) {
        int width = d->columns - j0 < STATS_BLOCK ? d->columns - j0 : STATS_BLOCK;
        double sum[STATS_BLOCK] = {0}, squares[STATS_BLOCK] = {0};
        /* Two passes: the mean, then squared deviations from it (no cancellation). */
        for (size_t i = 0; i < (size_t)d->n; i++)
            for (int j = 0; j < width; j++)
                sum[j] += value_at(d, i, j0 + j);
        for (int j = 0; j < width; j++)
            sum[j] = d->n > 0 ? sum[j] / d->n : 0.0;
        for (size_t i = 0; i < (size_t)d->n; i++)
            for (int j = 0; j < width; j++) {
                double dev = value_at(d, i, j0 + j) - sum[j];
                squares[j] += dev * dev;
            }
        for (int j = 0; j < width; j++) {
            double sd = d->n > 0 ? sqrt(squares[j] / d->n) : 0.0;
            mean[j0 + j] = (float)sum[j];
            /* A constant feature carries no information; dividing by 1 leaves it centred. So
             * does one whose spread is below the smallest normal float: dividing by a
             * subnormal would overflow, and a model's metadata refuses one (model_io.c). */
            std[j0 + j] = (float)sd >= FLT_MIN ? (float)sd : 1.0f;
        }
    }
}

void nb_dataset_stats(const nb_dataset *d, float *mean, float *std)
{
    columns_of c = {d->n, d->features, d->pixels, d->values};
    column_stats(&c, mean, std);
}

void nb_dataset_target_stats(const nb_dataset *d, float *mean, float *std)
{
    columns_of c = {d->target ? d->n : 0, d->targets, NULL, d->target};
    column_stats(&c, mean, std);
}

void nb_dataset_normalize(nb_dataset *d, const float *mean, const float *std)
{
    if (!d->values)
        return;   /* images are scaled per batch, not standardized */
    size_t f = (size_t)d->features;
    for (size_t i = 0; i < (size_t)d->n; i++) {
        float *row = d->values + i * f;
        for (size_t j = 0; j < f; j++)
            row[j] = (row[j] - mean[j]) / std[j];
    }
}

int nb_dataset_check_finite(const nb_dataset *d, const char *what, nb_error *err)
{
    if (!d->values)
        return 0;   /* bytes are always finite */
    size_t f = (size_t)d->features;
    for (size_t i = 0; i < (size_t)d->n; i++)
        for (size_t j = 0; j < f; j++) {
            float v = d->values[i * f + j];
            if (!isfinite(v))
                return nb_fail(err, "%s: sample %zu, feature %zu is %s (counted from 0)",
                               what ? what : "data", i, j, isnan(v) ? "NaN" : "infinite");
        }
    return 0;
}

typedef struct batch_job {
    const nb_dataset *d;
    const int32_t *index;
    int n;
    float *x;
    int32_t *y;
} batch_job;

/* This thread's rows of the batch. */
NB_HOT static void batch_rows(const nb_exec *ex, void *arg)
{
    const batch_job *j = arg;
    const nb_dataset *d = j->d;
    size_t f = (size_t)d->features, r0, r1;
    nb_split(ex, (size_t)j->n, 1, &r0, &r1);
    for (size_t i = r0; i < r1; i++) {
        size_t src = j->index ? (size_t)j->index[i] : i;
        float *dst = j->x + i * f;
        if (d->pixels) {
            const uint8_t *p = d->pixels + src * f;
            for (size_t k = 0; k < f; k++)
                dst[k] = byte_to_float(p[k]);
        } else {
            memcpy(dst, d->values + src * f, f * sizeof *dst);
        }
        if (j->y && d->labels)
            j->y[i] = d->labels[src];
    }
}

void nb_dataset_batch(const nb_dataset *d, const int32_t *index, int n, float *x, int32_t *y)
{
    batch_job j = {d, index, n, x, y};
    nb_parallel(batch_rows, &j);
}
