/* conv2d by Winograd's minimal filtering F(2x2, 3x3): the convolutions with a 3x3 kernel and
 * stride 1, with 2.25 times fewer multiplications than im2col. conv2d.c chooses it
 * (conv2d_winograd_fits) and keeps the threads, the parts and the sums of the parts; this file
 * does the arithmetic of one part's samples. The method is described in conv2d_winograd.c. */
#ifndef NABLA_CONV2D_WINOGRAD_H
#define NABLA_CONV2D_WINOGRAD_H

#include <stddef.h>

typedef struct winograd_shape {
    int channels, height, width;         /* of x's samples */
    int out_channels, out_height, out_width;
    int pad_h, pad_w;
    int tiles_h, tiles_w;                /* 2x2 output tiles down and across */
    int chunk;                           /* samples transformed together */
} winograd_shape;

/* Whether a conv2d of these sizes is done by Winograd's method: 3x3, stride 1, 8 channels in
 * or more. */
int conv2d_winograd_fits(int channels, int out_channels, const int kernel[2], const int stride[2]);

winograd_shape conv2d_winograd_shape(int channels, int height, int width, int out_channels,
                                     int out_height, int out_width, const int padding[2]);

/* Floats of scratch one part needs. */
size_t conv2d_winograd_scratch(const winograd_shape *q);

/* The kernels w [O, C, 3, 3] transformed, into the part's scratch. Every pass starts with it. */
void conv2d_winograd_kernels(const winograd_shape *q, const float *w, float *scratch);

/* y (samples [O, Ho, Wo]) = the convolution of x (samples [C, H, W]) (+ the bias b, or NULL),
 * for n consecutive samples. */
void conv2d_winograd_forward(const winograd_shape *q, const float *x, const float *b, float *y,
                             size_t n, float *scratch);

/* For n consecutive samples with output gradients dy: the kernels' gradient in the
 * transformed domain (=, when first, or +=) kept in scratch if want_dw, and dx (=, when
 * assign_dx, or +=) unless dx is NULL. */
void conv2d_winograd_backward(const winograd_shape *q, const float *x, const float *dy,
                              float *dx, int assign_dx, int want_dw, int first, size_t n,
                              float *scratch);

/* dw [O, C, 3, 3] = the kernels' gradient kept by conv2d_winograd_backward, back from the
 * transformed domain. */
void conv2d_winograd_kernel_grad(const winograd_shape *q, const float *scratch, float *dw);

#endif
