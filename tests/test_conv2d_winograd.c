/* conv2d by Winograd's method (src/ops/conv2d_winograd.c), on its own: which convolutions take
 * it, and its output, input gradient and kernel gradient against a direct convolution computed
 * here in double, over shapes that cross its chunks (one sample a chunk; chunks of 28 with a
 * short last one), odd output sizes (tiles half outside the output), paddings from 0 to larger
 * than the kernel, and the reference CNN's second conv; the input gradient both set and added
 * to; the kernel gradient of the samples given in two calls, summed across them; and
 * either gradient alone. The op itself is tested through the graph in test_ops_image.c,
 * test_fused_activation.c and ops_image_torch_check.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "ops/conv2d_winograd.h"

/* Largest |got - want| over largest |want|: rounding of the transforms and of float sums. */
#define TOLERANCE 1e-5

typedef struct wcase {
    int batch, channels, height, width, out, ph, pw;
} wcase;

static const wcase CASES[] = {
    {3, 8, 32, 32, 8, 1, 1},    /* 256 tiles a sample: one sample a chunk */
    {30, 8, 5, 5, 10, 1, 1},    /* 9 tiles a sample: a chunk of 28, then one of 2 */
    {4, 12, 7, 6, 9, 0, 2},     /* an odd output height (5), padding 0x2 */
    {2, 8, 3, 3, 8, 3, 3},      /* padding larger than the kernel: tiles of padding only */
    {2, 8, 3, 9, 11, 0, 1},     /* a one-row output */
    {3, 9, 6, 7, 1, 1, 1},      /* one channel out */
    {5, 32, 14, 14, 64, 1, 1},  /* the reference CNN's second conv */
};

typedef struct conv_data {
    wcase k;
    int ho, wo;
    size_t nx, ny, nw;
    float *x, *w, *b, *dy;
    double *y, *dx, *dw; /* the direct convolution's */
} conv_data;

static float *random_floats(size_t n, nb_rng *r)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)nb_rng_normal(r);
    return p;
}

/* y = conv(x, w) + b, dx and dw for the output gradient dy, directly, in double. */
static conv_data direct(const wcase *k, nb_rng *r)
{
    conv_data d;
    d.k = *k;
    d.ho = k->height + 2 * k->ph - 2;
    d.wo = k->width + 2 * k->pw - 2;
    d.nx = (size_t)k->batch * (size_t)k->channels * (size_t)k->height * (size_t)k->width;
    d.ny = (size_t)k->batch * (size_t)k->out * (size_t)d.ho * (size_t)d.wo;
    d.nw = (size_t)k->out * (size_t)k->channels * 9;
    d.x = random_floats(d.nx, r);
    d.w = random_floats(d.nw, r);
    d.b = random_floats((size_t)k->out, r);
    d.dy = random_floats(d.ny, r);
    d.y = calloc(d.ny, sizeof(double));
    d.dx = calloc(d.nx, sizeof(double));
    d.dw = calloc(d.nw, sizeof(double));
    assert_true(d.y && d.dx && d.dw);
    for (int s = 0; s < k->batch; s++)
        for (int o = 0; o < k->out; o++)
            for (int i = 0; i < d.ho; i++)
                for (int j = 0; j < d.wo; j++) {
                    size_t yi = (((size_t)s * (size_t)k->out + (size_t)o) * (size_t)d.ho +
                                 (size_t)i) * (size_t)d.wo + (size_t)j;
                    double total = d.b[o];
                    for (int c = 0; c < k->channels; c++)
                        for (int u = 0; u < 3; u++)
                            for (int v = 0; v < 3; v++) {
                                int r0 = i + u - k->ph, c0 = j + v - k->pw;
                                if (r0 < 0 || r0 >= k->height || c0 < 0 || c0 >= k->width)
                                    continue;
                                size_t xi = (((size_t)s * (size_t)k->channels + (size_t)c) *
                                                 (size_t)k->height + (size_t)r0) *
                                                (size_t)k->width + (size_t)c0;
                                size_t wi = (((size_t)o * (size_t)k->channels + (size_t)c) * 3 +
                                             (size_t)u) * 3 + (size_t)v;
                                total += (double)d.w[wi] * d.x[xi];
                                d.dx[xi] += (double)d.w[wi] * d.dy[yi];
                                d.dw[wi] += (double)d.x[xi] * d.dy[yi];
                            }
                    d.y[yi] = total;
                }
    return d;
}

static void free_data(conv_data *d)
{
    free(d->x);
    free(d->w);
    free(d->b);
    free(d->dy);
    free(d->y);
    free(d->dx);
    free(d->dw);
}

/* got - offset against want, as TOLERANCE says. */
static void assert_close(const float *got, float offset, const double *want, size_t n,
                         const char *what, const wcase *k)
{
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)(got[i] - offset) - want[i]);
        worst = e > worst || isnan(e) ? e : worst;
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }
    if (!(worst <= TOLERANCE * scale))
        fail_msg("B%d C%d %dx%d O%d pad %dx%d: %s off by %g of %g", k->batch, k->channels,
                 k->height, k->width, k->out, k->ph, k->pw, what, worst, scale);
}

static void test_which_convolutions(void **state)
{
    (void)state;
    int k3[2] = {3, 3}, k35[2] = {3, 5}, s1[2] = {1, 1}, s2[2] = {2, 1};
    assert_true(conv2d_winograd_fits(32, 64, k3, s1));
    assert_true(conv2d_winograd_fits(8, 8, k3, s1));
    assert_false(conv2d_winograd_fits(1, 32, k3, s1)); /* the reference CNN's first conv */
    assert_false(conv2d_winograd_fits(7, 64, k3, s1));
    assert_true(conv2d_winograd_fits(32, 1, k3, s1)); /* any channels out */
    assert_false(conv2d_winograd_fits(32, 64, k35, s1));
    assert_false(conv2d_winograd_fits(32, 64, k3, s2));
}

static void test_against_direct(void **state)
{
    (void)state;
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const wcase *k = &CASES[ci];
        conv_data d = direct(k, &r);
        int pad[2] = {k->ph, k->pw};
        winograd_shape q = conv2d_winograd_shape(k->channels, k->height, k->width, k->out, d.ho,
                                                 d.wo, pad);
        float *scratch = calloc(conv2d_winograd_scratch(&q), sizeof(float));
        float *y = malloc(d.ny * sizeof(float)), *dx = malloc(d.nx * sizeof(float));
        float *dw = malloc(d.nw * sizeof(float)), *dw2 = malloc(d.nw * sizeof(float));
        assert_true(scratch && y && dx && dw && dw2);
        size_t n = (size_t)k->batch;

        conv2d_winograd_kernels(&q, d.w, scratch);
        conv2d_winograd_forward(&q, d.x, d.b, y, n, scratch);
        assert_close(y, 0.0f, d.y, d.ny, "y", k);

        /* both gradients, dx set */
        conv2d_winograd_backward(&q, d.x, d.dy, dx, 1, 1, 1, n, scratch);
        conv2d_winograd_kernel_grad(&q, scratch, dw);
        assert_close(dx, 0.0f, d.dx, d.nx, "dx", k);
        assert_close(dw, 0.0f, d.dw, d.nw, "dw", k);

        /* dx added to (onto ones), without the kernel gradient */
        for (size_t i = 0; i < d.nx; i++)
            dx[i] = 1.0f;
        conv2d_winograd_backward(&q, d.x, d.dy, dx, 0, 0, 1, n, scratch);
        assert_close(dx, 1.0f, d.dx, d.nx, "dx added", k);

        /* the kernel gradient alone, its samples given in two calls (as parts are) */
        size_t half = n / 2;
        conv2d_winograd_backward(&q, d.x, d.dy, NULL, 0, 1, 1, half, scratch);
        size_t in_sample = d.nx / n, out_sample = d.ny / n;
        conv2d_winograd_backward(&q, d.x + half * in_sample, d.dy + half * out_sample, NULL, 0,
                                 1, half == 0, n - half, scratch);
        conv2d_winograd_kernel_grad(&q, scratch, dw2);
        assert_close(dw2, 0.0f, d.dw, d.nw, "dw in two calls", k);

        free(scratch);
        free(y);
        free(dx);
        free(dw);
        free(dw2);
        free_data(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_convolutions),
        cmocka_unit_test(test_against_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
