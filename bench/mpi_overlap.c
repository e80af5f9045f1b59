/* Would overlapping the gradient sum with the backward pass pay on this machine? A probe, not
 * part of nabla: each rank runs "steps" of `layers` matrix products (the backward pass of the
 * wide benchmark network: `rows` rows of 1024 x 1024 per layer and rank), and sums a gradient
 * buffer of `floats` numbers over the ranks:
 *
 *   compute   the products alone;
 *   sum       the sum alone (one MPI_Allreduce);
 *   serial    the products, then one MPI_Allreduce (what nabla does);
 *   overlap   after each layer's product, an MPI_Iallreduce of that layer's share of the buffer
 *             starts, and the sums under way are pushed on (MPI_Testall) after every later
 *             product; MPI_Waitall at the end (what DistributedDataParallel's buckets do).
 *
 * overlap pays when it is clearly below serial, and at best it comes down to
 * max(compute, sum). Prints one JSON line per mode from rank 0: median milliseconds a step.
 *
 *   mpicc -O2 bench/mpi_overlap.c -lopenblas -o mpi_overlap
 *   OPENBLAS_NUM_THREADS=1 mpirun -np 2 ./mpi_overlap [floats] [layers] [steps] [rows]
 */
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WIDTH = 1024 };
static int rows = 128;

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void product(const float *a, const float *w, float *out)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, WIDTH, WIDTH, 1.0f, a, WIDTH,
                w, WIDTH, 0.0f, out, WIDTH);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long floats = argc > 1 ? atol(argv[1]) : 1863690;
    int layers = argc > 2 ? atoi(argv[2]) : 6;
    int steps = argc > 3 ? atoi(argv[3]) : 40;
    rows = argc > 4 ? atoi(argv[4]) : 128;
    if (floats < layers || layers < 1 || steps < 1 || rows < 1 || rows > 4096) {
        if (rank == 0)
            fprintf(stderr, "usage: mpi_overlap [floats >= layers] [layers >= 1] [steps >= 1] "
                            "[rows 1..4096]\n");
        MPI_Finalize();
        return 2;
    }
    float *grad = calloc((size_t)floats, sizeof *grad);
    float *a = malloc(sizeof(float) * (size_t)rows * WIDTH);
    float *w = malloc(sizeof(float) * WIDTH * WIDTH);
    float *out = malloc(sizeof(float) * (size_t)rows * WIDTH);
    double *ms = malloc((size_t)steps * sizeof *ms);
    MPI_Request *req = malloc((size_t)layers * sizeof *req);
    for (long i = 0; i < (long)rows * WIDTH; i++)
        a[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < (long)WIDTH * WIDTH; i++)
        w[i] = (float)(i % 5) * 0.01f;
    static const char *const modes[] = {"compute", "sum", "serial", "overlap"};
    for (int mode = 0; mode < 4; mode++) {
        for (int s = -2; s < steps; s++) { /* two steps to warm up */
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            int n_req = 0;
            for (int l = 0; mode != 1 && l < layers; l++) {
                product(a, w, out);
                grad[0] += out[0] * 1e-30f; /* the product is used */
                if (mode == 3) {
                    /* The backward pass goes from the last layer to the first: layer l's
                     * gradient is the l-th share from the end of the buffer. */
                    long end = floats - floats * l / layers, begin = floats - floats * (l + 1) / layers;
                    MPI_Iallreduce(MPI_IN_PLACE, grad + begin, (int)(end - begin), MPI_FLOAT,
                                   MPI_SUM, MPI_COMM_WORLD, &req[n_req++]);
                    int done;
                    MPI_Testall(n_req, req, &done, MPI_STATUSES_IGNORE);
                }
            }
            if (mode == 1 || mode == 2)
                MPI_Allreduce(MPI_IN_PLACE, grad, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (mode == 3)
                MPI_Waitall(n_req, req, MPI_STATUSES_IGNORE);
            double t = (MPI_Wtime() - start) * 1e3;
            MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (s >= 0)
                ms[s] = t;
            memset(grad, 0, (size_t)floats * sizeof *grad);
        }
        qsort(ms, (size_t)steps, sizeof *ms, by_value);
        if (rank == 0)
            printf("{\"mode\": \"%s\", \"ms_per_step\": %.3f, \"floats\": %ld, \"layers\": %d, "
                   "\"rows\": %d}\n", modes[mode], ms[steps / 2], floats, layers, rows);
    }
    free(grad);
    free(a);
    free(w);
    free(out);
    free(ms);
    free(req);
    MPI_Finalize();
    return 0;
}
