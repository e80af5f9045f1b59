/* conv_bench: the speed of nabla's conv2d op, forward and backward, on the two convolutions of
 * issue 14's reference CNN at batch 64, and of the max pooling after each:
 *     conv1  x [64, 1, 28, 28]  -> conv2d(32, 3, padding=1)  (x is the data: no dx)
 *     conv2  x [64, 32, 14, 14] -> conv2d(64, 3, padding=1)  (dx too, as after a maxpool)
 *     pool1  x [64, 32, 28, 28] -> maxpool2d(2)
 *     pool2  x [64, 64, 14, 14] -> maxpool2d(2)
 * The convs have no bias (a batchnorm follows each in the CNN). Each step is nb_graph_forward
 * then nb_graph_backward from the op's output, whose gradient the graph first fills with ones
 * (one pass over the output, as the next layer's backward would write it).
 *
 *     conv_bench [THREADS [SECONDS]]     defaults: 2 threads, 0.3 s a block
 *
 * After a warm-up it times 7 blocks of about SECONDS each and prints one JSON line per op:
 * milliseconds per forward, per backward and per step (best block, and the median block), and
 * for a conv the GFLOP/s of the step: 2 FLOPs per multiply-add of each product a direct
 * convolution does (forward, dW, and dx for conv2 only), i.e. 2 * B*O*Ho*Wo*C*kh*kw FLOPs a
 * product, whatever the method (conv2 is computed by Winograd's, with fewer). Built by CMake
 * (target conv_bench); bench/conv_bench.py runs it beside PyTorch and the sgemm ceiling. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nabla.h"

enum { BATCH = 64, BLOCKS = 7 };

typedef struct op_shape {
    const char *name;
    int pool;                          /* maxpool2d(kernel) rather than conv2d(out, kernel) */
    int channels, size, out, kernel, padding, input_grad;
} op_shape;

static const op_shape SHAPES[] = {
    {"conv1", 0, 1, 28, 32, 3, 1, 0},
    {"conv2", 0, 32, 14, 64, 3, 1, 1},
    {"pool1", 1, 32, 28, 32, 2, 0, 1},
    {"pool2", 1, 64, 14, 64, 2, 0, 1},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct block {
    double forward, backward; /* seconds per step */
} block;

static block timed_block(nb_graph *g, nb_node *y, double seconds)
{
    double fwd = 0.0, bwd = 0.0, start = now();
    long steps = 0;
    do {
        double t0 = now();
        nb_graph_forward(g, BATCH);
        double t1 = now();
        nb_graph_backward(g, y);
        double t2 = now();
        fwd += t1 - t0;
        bwd += t2 - t1;
        steps++;
    } while (now() - start < seconds);
    return (block){fwd / (double)steps, bwd / (double)steps};
}

static int bench(const op_shape *s, int threads, double seconds)
{
    nb_graph *g = nb_graph_new();
    int sample[3] = {s->channels, s->size, s->size};
    int ws[4] = {s->out, s->channels, s->kernel, s->kernel}, pad[2] = {s->padding, s->padding};
    int kernel[2] = {s->kernel, s->kernel};
    nb_node *x = nb_input_shape(g, 3, sample);
    if (s->input_grad)
        nb_input_requires_grad(x);
    nb_node *w = s->pool ? NULL : nb_param(g, "w", 4, ws);
    nb_node *y = s->pool ? nb_maxpool2d(g, x, kernel, NULL) : nb_conv2d(g, x, w, NULL, NULL, pad);
    nb_error err;
    if (nb_graph_compile(g, BATCH, &err) != 0) {
        fprintf(stderr, "conv_bench: %s\n", err.msg);
        nb_graph_free(g);
        return 1;
    }
    nb_rng r;
    nb_rng_seed(&r, 1);
    size_t n_params;
    float *params = nb_graph_params(g, &n_params);
    nb_tensor xv = nb_node_value(x);
    for (size_t i = 0; i < nb_tensor_numel(&xv); i++)
        xv.data[i] = (float)nb_rng_normal(&r);
    for (size_t i = 0; i < n_params; i++)
        params[i] = (float)(0.1 * nb_rng_normal(&r));

    timed_block(g, y, seconds); /* warm-up: threads, page faults, clock ramp */
    double step[BLOCKS], fwd[BLOCKS], bwd[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        block b = timed_block(g, y, seconds);
        fwd[i] = b.forward;
        bwd[i] = b.backward;
        step[i] = b.forward + b.backward;
    }
    qsort(step, BLOCKS, sizeof step[0], compare_doubles);
    qsort(fwd, BLOCKS, sizeof fwd[0], compare_doubles);
    qsort(bwd, BLOCKS, sizeof bwd[0], compare_doubles);

    nb_tensor yv = nb_node_value(y);
    double macs = (double)BATCH * s->out * yv.shape[2] * yv.shape[3] * s->channels * s->kernel *
                  s->kernel;
    int products = s->input_grad ? 3 : 2;
    double flops = s->pool ? 0.0 : 2.0 * macs * products;
    printf("{\"op\": \"%s\", \"kind\": \"%s\", \"x\": [%d, %d, %d, %d], \"kernel\": %d, "
           "\"padding\": %d, \"input_grad\": %s, \"threads\": %d, \"products\": %d, "
           "\"mflop_per_step\": %.1f, \"forward_ms\": %.3f, \"backward_ms\": %.3f, "
           "\"step_ms\": %.3f, \"median_step_ms\": %.3f, \"gflops\": %.1f, "
           "\"median_gflops\": %.1f}\n",
           s->name, s->pool ? "maxpool2d" : "conv2d", BATCH, s->channels, s->size, s->size,
           s->kernel, s->padding, s->input_grad ? "true" : "false", threads,
           s->pool ? 0 : products, flops * 1e-6, fwd[0] * 1e3, bwd[0] * 1e3, step[0] * 1e3,
           step[BLOCKS / 2] * 1e3, flops / step[0] * 1e-9, flops / step[BLOCKS / 2] * 1e-9);
    fflush(stdout);
    nb_graph_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 0.3;
    if (argc > 3 || threads < 1 || !(seconds > 0)) {
        fprintf(stderr, "usage: conv_bench [THREADS [SECONDS]]\n");
        return 2;
    }
    nb_set_threads(threads);
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (bench(&SHAPES[i], threads, seconds) != 0)
            return 1;
    return 0;
}
