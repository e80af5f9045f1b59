/* The matrix products of one training step of a dense network, alone: the forward products,
 * then for each layer from the last the weight gradient and the input gradient (none for the
 * first layer), with the shapes, transposes and batch of the real step, on one OpenBLAS thread.
 * Nothing else of training (activations, loss, optimizer, data) is done, so this is the
 * fastest any trainer that uses OpenBLAS for its products can go on this model; with T
 * threads, at best T times as fast.
 *
 *     step_products BATCH WIDTH0 WIDTH1 ... WIDTHL     e.g. step_products 64 784 256 128 10
 *
 * Prints one JSON line: microseconds per step and the samples/s bound for 1 thread. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { MAX_WIDTHS = 18 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "step_products: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = 1e-3f * (float)(i % 13) - 6e-3f;
    return p;
}

static void one_step(int batch, int layers, const int *w, float **h, float **dh, float **W,
                     float **dW)
{
    for (int i = 0; i < layers; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, w[i + 1], w[i], 1.0f, h[i],
                    w[i], W[i], w[i], 0.0f, h[i + 1], w[i + 1]);
    for (int i = layers - 1; i >= 0; i--) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w[i + 1], w[i], batch, 1.0f,
                    dh[i + 1], w[i + 1], h[i], w[i], 0.0f, dW[i], w[i]);
        if (i > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, w[i], w[i + 1], 1.0f,
                        dh[i + 1], w[i + 1], W[i], w[i], 0.0f, dh[i], w[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc - 2 > MAX_WIDTHS) {
        fprintf(stderr, "usage: step_products BATCH WIDTH0 WIDTH1 [... WIDTH%d]\n",
                MAX_WIDTHS - 1);
        return 2;
    }
    int batch = atoi(argv[1]), n = argc - 2, w[MAX_WIDTHS];
    for (int i = 0; i < n; i++)
        w[i] = atoi(argv[2 + i]);
    if (batch < 1)
        return 2;
    for (int i = 0; i < n; i++)
        if (w[i] < 1)
            return 2;
    openblas_set_num_threads(1);
    float *h[MAX_WIDTHS], *dh[MAX_WIDTHS], *W[MAX_WIDTHS], *dW[MAX_WIDTHS];
    double flops = 0.0;
    for (int i = 0; i < n; i++) {
        h[i] = filled((size_t)batch * w[i]);
        dh[i] = filled((size_t)batch * w[i]);
    }
    for (int i = 0; i + 1 < n; i++) {
        W[i] = filled((size_t)w[i] * w[i + 1]);
        dW[i] = filled((size_t)w[i] * w[i + 1]);
        flops += (i > 0 ? 6.0 : 4.0) * batch * w[i] * w[i + 1];
    }
    for (int i = 0; i < 10; i++) /* warm-up */
        one_step(batch, n - 1, w, h, dh, W, dW);
    /* The best of 5 blocks of about 0.4 s: the machine may be shared. */
    double best = 1e30;
    for (int block = 0; block < 5; block++) {
        long steps = 0;
        double start = now(), elapsed;
        do {
            one_step(batch, n - 1, w, h, dh, W, dW);
            steps++;
        } while ((elapsed = now() - start) < 0.4);
        if (elapsed / steps < best)
            best = elapsed / steps;
    }
    printf("{\"microseconds_per_step\": %.2f, \"gflops\": %.2f, \"samples_per_second\": %.1f, "
           "\"core\": \"%s\"}\n",
           1e6 * best, flops / best * 1e-9, batch / best, openblas_get_corename());
    return 0;
}
