/*
 * sgemm_ceiling: measures what OpenBLAS's square single-precision matrix multiply reaches on
 * this machine, the ceiling bench/run.py judges training throughput against.
 *
 *     sgemm_ceiling [N [THREADS [SECONDS]]]      defaults: 1024 2 0.5
 *
 * After a warm-up it times several blocks of about SECONDS each and prints one JSON line with
 * the best block's rate (the ceiling is what the library *can* do; the slower blocks are noise
 * from other work on a shared machine):
 *     {"gflops": 301.2, "median_gflops": 295.0, "n": 1024, "threads": 2, "core": "SkylakeX",
 *      "config": "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."}
 * The kernel OpenBLAS picked ("core") is printed because a CPU it does not recognize makes it
 * fall back to a slow generic one; run.py uses that to choose OPENBLAS_CORETYPE.
 *
 * Build: gcc -O2 -o sgemm_ceiling bench/sgemm_ceiling.c -lopenblas
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h> /* OpenBLAS's: also declares openblas_set_num_threads, _get_corename */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BLOCKS = 7 };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void multiply(int n, const float *a, const float *b, float *c)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                n);
}

/* Repeats the multiply for at least `seconds` and returns the GFLOP/s of that block. */
static double timed_block(int n, const float *a, const float *b, float *c, double seconds)
{
    double flops_per_call = 2.0 * n * n * n;
    long calls = 0;
    double start = now_seconds(), elapsed;
    do {
        multiply(n, a, b, c);
        calls++;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    return flops_per_call * (double)calls / elapsed * 1e-9;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static float *random_matrix(int n)
{
    float *m = malloc(sizeof *m * (size_t)n * (size_t)n);
    if (m)
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++)
            m[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return m;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    double seconds = argc > 3 ? atof(argv[3]) : 0.5;
    if (n < 1 || threads < 1 || seconds <= 0) {
        fprintf(stderr, "usage: sgemm_ceiling [N [THREADS [SECONDS]]]\n");
        return 2;
    }
    openblas_set_num_threads(threads);

    float *a = random_matrix(n), *b = random_matrix(n), *c = random_matrix(n);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_ceiling: out of memory for n=%d\n", n);
        free(a), free(b), free(c);
        return 1;
    }
    timed_block(n, a, b, c, seconds); /* warm-up: thread start, page faults, clock ramp */
    double rates[BLOCKS];
    for (int i = 0; i < BLOCKS; i++)
        rates[i] = timed_block(n, a, b, c, seconds);
    qsort(rates, BLOCKS, sizeof rates[0], compare_doubles);

    printf("{\"gflops\": %.1f, \"median_gflops\": %.1f, \"n\": %d, \"threads\": %d, "
           "\"core\": \"%s\", \"config\": \"%s\"}\n",
           rates[BLOCKS - 1], rates[BLOCKS / 2], n, threads, openblas_get_corename(),
           openblas_get_config());
    free(a), free(b), free(c);
    return 0;
}
