/* Sums over a contiguous run of floats, in double, for the normalization ops (a channel's
 * block of an image, a sample's features).
 *
 * A single running sum would not vectorize: the compiler may not reorder a floating-point
 * sum. These keep NB_LANES running sums instead, lane k taking elements k, k + NB_LANES, ...,
 * and add the lanes pairwise at the end. The order is fixed by the run's length alone, never by
 * the thread that sums it, so results do not depend on the thread count. Each function makes
 * one sum (GCC 12 vectorizes a loop of one lane array, not of two). They are inlined into their
 * callers, which are compiled for each instruction set (simd.h). */
#ifndef NABLA_LANE_SUM_H
#define NABLA_LANE_SUM_H

#include <stddef.h>

#define NB_LANES 16

static inline double nb_lanes_total(double acc[NB_LANES])
{
    for (int width = NB_LANES / 2; width > 0; width /= 2)
        for (int k = 0; k < width; k++)
            acc[k] += acc[k + width];
    return acc[0];
}

/* The body of every sum below: returns Σ term(i) over i < n, term(i) a double. */
#define NB_LANE_SUM_RETURN(n, term)                                                          \
    do {                                                                                     \
        double acc_[NB_LANES] = {0};                                                         \
        size_t i_ = 0;                                                                       \
        for (; i_ + NB_LANES <= (n); i_ += NB_LANES)                                         \
            for (size_t k_ = 0; k_ < NB_LANES; k_++)                                         \
                acc_[k_] += term(i_ + k_);                                                   \
        for (size_t k_ = 0; i_ + k_ < (n); k_++)                                             \
            acc_[k_] += term(i_ + k_);                                                       \
        return nb_lanes_total(acc_);                                                         \
    } while (0)

/* xhat = (x - mean)·invstd in float, exactly as the normalization ops' forward passes compute
 * it (so a backward pass that recomputes it gets the same bits). */
#define NB_XHAT(x, i, mean, invstd) (((x)[i] - (mean)) * (invstd))

/* Σ x[i]. */
static inline double nb_lane_sum(const float *x, size_t n)
{
#define NB_TERM(i) (double)x[i]
    NB_LANE_SUM_RETURN(n, NB_TERM);
#undef NB_TERM
}

/* Σ (x[i] - mean)², the deviations taken in double (the second pass of a variance). */
static inline double nb_lane_sum_sq_dev(const float *x, size_t n, double mean)
{
#define NB_TERM(i) (((double)x[i] - mean) * ((double)x[i] - mean))
    NB_LANE_SUM_RETURN(n, NB_TERM);
#undef NB_TERM
}

/* Σ a[i]·b[i], the product in float. */
static inline double nb_lane_sum_product(const float *a, const float *b, size_t n)
{
#define NB_TERM(i) (double)(a[i] * b[i])
    NB_LANE_SUM_RETURN(n, NB_TERM);
#undef NB_TERM
}

/* Σ dy[i]·xhat[i] (batch norm's backward). */
static inline double nb_lane_sum_dy_xhat(const float *dy, const float *x, size_t n, float mean,
                                         float invstd)
{
#define NB_TERM(i) ((double)dy[i] * NB_XHAT(x, i, mean, invstd))
    NB_LANE_SUM_RETURN(n, NB_TERM);
#undef NB_TERM
}

/* Σ (dy[i]·w[i])·xhat[i], dy·w in float (layer norm's backward). */
static inline double nb_lane_sum_g_xhat(const float *dy, const float *w, const float *x,
                                        size_t n, float mean, float invstd)
{
#define NB_TERM(i) ((double)(dy[i] * w[i]) * NB_XHAT(x, i, mean, invstd))
    NB_LANE_SUM_RETURN(n, NB_TERM);
#undef NB_TERM
}

#endif
