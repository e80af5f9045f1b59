/* conv2d by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016), for 3x3 kernels with stride 1.
 *
 * The output is cut into 2x2 tiles; tile (a, b) reads the 4x4 input patch d at rows 2a - ph ..
 * 2a - ph + 3 and columns 2b - pw .. 2b - pw + 3 (zero outside the image). With
 *
 *          | 1  0 -1  0 |          | 1    0    0  |
 *     Bᵀ = | 0  1  1  0 |      G = | 1/2  1/2  1/2 |      Aᵀ = | 1  1  1  0 |
 *          | 0 -1  1  0 |          | 1/2 -1/2  1/2 |           | 0  1 -1 -1 |
 *          | 0  1  0 -1 |          | 0    0    1  |
 *
 * the tile of output channel o is exactly (in real arithmetic) the direct convolution's:
 *     y_tile = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
 * The sum over channels, at each of the 16 positions ξ of the 4x4 transformed tile, is a matrix
 * product over all tiles t at once:
 *     M_ξ [T, O] = V_ξ [T, C] · U_ξᵀ,   U_ξ [O, C]: U = G g Gᵀ (the kernels), V = Bᵀ d B (the input)
 * 16 products of T·C·O multiply-adds in place of im2col's one of 4T·9C·O: 2.25 times fewer.
 *
 * Backward is the adjoint of each step, the gradient of exactly this computation:
 *     dM = A dy_tile Aᵀ
 *     dU_ξ += dM_ξᵀ · V_ξ             then  dw = Gᵀ dU G
 *     dV_ξ  = dM_ξ · U_ξ              then  dx_patch += B dV Bᵀ  (patches overlap by 2)
 * The transforms only add, subtract and halve, so the result differs from a direct
 * convolution's by rounding only (a few units in the last place of the terms' magnitude);
 * the tests hold it to PyTorch's at the same tolerance as im2col.
 *
 * Samples are transformed a chunk at a time (q->chunk, fixed by the sizes alone, so that
 * results do not depend on the thread count): T = chunk·tiles a sample. The layouts, in the
 * part's scratch: U and dU [16][O][C], V and dV [16][T][C], M [16][T][O] (dM in its place in
 * backward), and one plane.
 * Channels are last, so that a transform's inner loop runs over the channels of one tile and
 * vectorizes whatever the image's width (tiles a row: as few as 1; channels: 8 or more). An
 * image goes into the plane channels last, zero-padded, and comes back out of it.
 *
 * The products M and dV add onto their output (beta 1) rather than set it: OpenBLAS clears C
 * in a pass of its own before a product with beta 0, which costs as much as a third of these
 * thin products (K = C or O, as little as 8). The transform that reads M or dV sets what it
 * has read back to 0 instead, while it is in cache; each pass clears them once at its start. */
#include "ops/conv2d_winograd.h"

#include <cblas.h>
#include <string.h>

#include "core/simd.h"

enum { XI = 16 }; /* positions in a transformed tile */

int conv2d_winograd_fits(int channels, int out_channels, const int kernel[2], const int stride[2])
{
    /* With few input channels the products are too thin (K = C) to pay for the transforms.
     * Measured forward + backward at batch 64 on 2 threads against im2col (bench/conv_bench.c
     * on other shapes): 4 or 6 channels in were 1.1 to 1.4 times slower, 8 or 16 in 1.4 to
     * 2.5 times faster, whatever the channels out (1 to 64). The reference CNN's first conv,
     * one channel in, stays with im2col. */
    (void)out_channels;
    return kernel[0] == 3 && kernel[1] == 3 && stride[0] == 1 && stride[1] == 1 && channels >= 8;
}

winograd_shape conv2d_winograd_shape(int channels, int height, int width, int out_channels,
                                     int out_height, int out_width, const int padding[2])
{
    winograd_shape q;
    q.channels = channels;
    q.height = height;
    q.width = width;
    q.out_channels = out_channels;
    q.out_height = out_height;
    q.out_width = out_width;
    q.pad_h = padding[0];
    q.pad_w = padding[1];
    q.tiles_h = (out_height + 1) / 2;
    q.tiles_w = (out_width + 1) / 2;
    /* About 256 tiles a chunk: enough rows for the 16 products to run near OpenBLAS's best
     * on these thin shapes, few enough that V and M stay in the core's caches. (128 to 1024
     * timed the same on the reference CNN's second conv.) */
    int per_sample = q.tiles_h * q.tiles_w;
    q.chunk = per_sample >= 256 ? 1 : 256 / per_sample;
    return q;
}

static size_t tiles_per_sample(const winograd_shape *q)
{
    return (size_t)q->tiles_h * (size_t)q->tiles_w;
}

static size_t chunk_tiles(const winograd_shape *q) { return (size_t)q->chunk * tiles_per_sample(q); }

/* The padded plane of an input: the image with pad_h rows above and pad_w columns left, and
 * zeros down to 2 tiles_h + 2 rows and across to 2 tiles_w + 2 columns; channels last. */
static size_t plane_rows(const winograd_shape *q) { return 2 * (size_t)q->tiles_h + 2; }
static size_t plane_cols(const winograd_shape *q) { return 2 * (size_t)q->tiles_w + 2; }

/* ---- the part's scratch ---- */

/* The plane serves the input's channels and the output's, which fits in as many rows and
 * columns. */
static int plane_channels(const winograd_shape *q)
{
    return q->channels > q->out_channels ? q->channels : q->out_channels;
}

static size_t aligned(size_t floats) { return (floats + 15) & ~(size_t)15; }

typedef struct wino_scratch {
    float *u, *du, *v, *dv, *m, *plane;
} wino_scratch;

static wino_scratch scratch_parts(const winograd_shape *q, float *base)
{
    size_t oc = (size_t)q->out_channels * (size_t)q->channels;
    size_t t = chunk_tiles(q);
    wino_scratch s;
    s.u = base;
    s.du = s.u + aligned(XI * oc);
    s.v = s.du + aligned(XI * oc);
    s.dv = s.v + aligned(XI * (size_t)q->channels * t);
    s.m = s.dv + aligned(XI * (size_t)q->channels * t);
    s.plane = s.m + aligned(XI * (size_t)q->out_channels * t);
    return s;
}

size_t conv2d_winograd_scratch(const winograd_shape *q)
{
    size_t oc = (size_t)q->out_channels * (size_t)q->channels;
    size_t t = chunk_tiles(q);
    return 2 * aligned(XI * oc) + 2 * aligned(XI * (size_t)q->channels * t) +
           aligned(XI * (size_t)q->out_channels * t) +
           aligned(plane_rows(q) * plane_cols(q) * (size_t)plane_channels(q));
}

/* ---- the kernels: U = G g Gᵀ, and dw = Gᵀ dU G ---- */

void conv2d_winograd_kernels(const winograd_shape *q, const float *w, float *scratch)
{
    wino_scratch s = scratch_parts(q, scratch);
    size_t oc = (size_t)q->out_channels * (size_t)q->channels;
    for (size_t k = 0; k < oc; k++) {
        const float *g = w + 9 * k;
        float h[4][3]; /* G g: rows combined */
        for (int l = 0; l < 3; l++) {
            h[0][l] = g[l];
            h[1][l] = 0.5f * (g[l] + g[3 + l] + g[6 + l]);
            h[2][l] = 0.5f * (g[l] - g[3 + l] + g[6 + l]);
            h[3][l] = g[6 + l];
        }
        for (int i = 0; i < 4; i++) {
            float u[4] = {h[i][0], 0.5f * (h[i][0] + h[i][1] + h[i][2]),
                          0.5f * (h[i][0] - h[i][1] + h[i][2]), h[i][2]};
            for (int j = 0; j < 4; j++)
                s.u[(size_t)(4 * i + j) * oc + k] = u[j];
        }
    }
}

void conv2d_winograd_kernel_grad(const winograd_shape *q, const float *scratch, float *dw)
{
    wino_scratch s = scratch_parts(q, (float *)scratch);
    size_t oc = (size_t)q->out_channels * (size_t)q->channels;
    for (size_t k = 0; k < oc; k++) {
        float h[4][3]; /* dU G: columns combined */
        for (int i = 0; i < 4; i++) {
            const float *d = s.du + (size_t)(4 * i) * oc + k;
            float d0 = d[0], d1 = d[oc], d2 = d[2 * oc], d3 = d[3 * oc];
            h[i][0] = d0 + 0.5f * d1 + 0.5f * d2;
            h[i][1] = 0.5f * d1 - 0.5f * d2;
            h[i][2] = 0.5f * d1 + 0.5f * d2 + d3;
        }
        float *g = dw + 9 * k;
        for (int l = 0; l < 3; l++) {
            g[l] = h[0][l] + 0.5f * h[1][l] + 0.5f * h[2][l];
            g[3 + l] = 0.5f * h[1][l] - 0.5f * h[2][l];
            g[6 + l] = 0.5f * h[1][l] + 0.5f * h[2][l] + h[3][l];
        }
    }
}

/* ---- the images, channels last ---- */

/* An image [C][rows][cols] (planes of rows x cols) and its place in a plane with channels last:
 * element (c, r, col) of the image is element ((r + top) row_len + col + left) C + c there. */
typedef struct image_place {
    size_t channels, rows, cols;
    size_t row_len, top, left;
} image_place;

/* Channels in a block: the transposes below read (or write) the image a block of channels at
 * a time, each of its planes in order, and fill whole cache lines of the other side. */
enum { CHANNEL_BLOCK = 16 };

/* plane = image, channels last, at its place. */
static void to_channels_last(const image_place *p, const float *restrict image,
                             float *restrict plane)
{
    size_t c_n = p->channels, size = p->rows * p->cols;
    for (size_t c0 = 0; c0 < c_n; c0 += CHANNEL_BLOCK) {
        size_t c1 = c0 + CHANNEL_BLOCK < c_n ? c0 + CHANNEL_BLOCK : c_n;
        for (size_t r = 0; r < p->rows; r++)
            for (size_t col = 0; col < p->cols; col++) {
                float *to = plane + ((r + p->top) * p->row_len + col + p->left) * c_n;
                const float *from = image + r * p->cols + col;
                for (size_t c = c0; c < c1; c++)
                    to[c] = from[c * size];
            }
    }
}

/* image (=, or += unless assign) the plane's channels at its place, plus bias[c] (NULL: 0). */
static void from_channels_last(const image_place *p, const float *restrict plane,
                               const float *restrict bias, int assign, float *restrict image)
{
    size_t c_n = p->channels, size = p->rows * p->cols;
    for (size_t c0 = 0; c0 < c_n; c0 += CHANNEL_BLOCK) {
        size_t c1 = c0 + CHANNEL_BLOCK < c_n ? c0 + CHANNEL_BLOCK : c_n;
        for (size_t r = 0; r < p->rows; r++)
            for (size_t col = 0; col < p->cols; col++) {
                const float *from = plane + ((r + p->top) * p->row_len + col + p->left) * c_n;
                float *to = image + r * p->cols + col;
                for (size_t c = c0; c < c1; c++) {
                    float v = bias ? bias[c] + from[c] : from[c];
                    to[c * size] = assign ? v : to[c * size] + v;
                }
            }
    }
}

/* The input's place in the padded plane. */
static image_place input_place(const winograd_shape *q)
{
    image_place p = {(size_t)q->channels, (size_t)q->height, (size_t)q->width,
                     plane_cols(q), (size_t)q->pad_h, (size_t)q->pad_w};
    return p;
}

/* The output's place in the output plane [2 tiles_h][2 tiles_w][O]. */
static image_place output_place(const winograd_shape *q)
{
    image_place p = {(size_t)q->out_channels, (size_t)q->out_height, (size_t)q->out_width,
                     2 * (size_t)q->tiles_w, 0, 0};
    return p;
}

/* ---- the tiles ---- */

/* What is done to one tile: between its patch in a plane (at patch; cols: the plane's columns;
 * ch: its channels) and its row t of a transformed array (at rows: [ξ = 0][t]; xi_stride: from
 * one ξ to the next). */
typedef void tile_fn(float *patch, size_t cols, size_t ch, float *rows, size_t xi_stride);

/* fn on every tile of one sample, in order; rows: the sample's first tile. A tile's patch
 * starts at row 2a and column 2b of the plane. */
static void each_tile(const winograd_shape *q, tile_fn *fn, float *plane, size_t cols,
                      size_t ch, float *rows, size_t xi_stride)
{
    for (int a = 0; a < q->tiles_h; a++)
        for (int b = 0; b < q->tiles_w; b++, rows += ch)
            fn(plane + (2 * (size_t)a * cols + 2 * (size_t)b) * ch, cols, ch, rows, xi_stride);
}

/* ---- the input: V = Bᵀ d B, and dx += B dV Bᵀ ---- */

/* The four 4-vectors x0 .. x3 combined by Bᵀ (into y0 .. y3), by B (its adjoint), by Aᵀ (into
 * y0, y1) and by A (from x0, x1). Exact in its terms: only sums and differences. */
#define BT4(x0, x1, x2, x3, y0, y1, y2, y3) \
    ((y0) = (x0) - (x2), (y1) = (x1) + (x2), (y2) = (x2) - (x1), (y3) = (x1) - (x3))
#define B4(x0, x1, x2, x3, y0, y1, y2, y3) \
    ((y0) = (x0), (y1) = (x1) - (x2) + (x3), (y2) = -(x0) + (x1) + (x2), (y3) = -(x3))
#define AT4(x0, x1, x2, x3, y0, y1) ((y0) = (x0) + (x1) + (x2), (y1) = (x1) - (x2) - (x3))
#define A4(x0, x1, y0, y1, y2, y3) ((y0) = (x0), (y1) = (x0) + (x1), (y2) = (x0) - (x1), (y3) = -(x1))

/* V [ξ][t][0, C) of one tile (v at V_0[t]) from its patch at d (a tile_fn, as are the three
 * below). Each channel's 16 values come from 16 places and go to 16 others, too many pointers
 * for GCC to prove apart: NB_INDEPENDENT says they are (the plane and the rows are different
 * buffers, and each channel is its own element), so that the loop over the channels
 * vectorizes. */
NB_HOT static void transform_patch(float *restrict d, size_t cols, size_t c_n,
                                   float *restrict v, size_t xi_stride)
{
    size_t row = cols * c_n;
    NB_INDEPENDENT for (size_t c = 0; c < c_n; c++) {
        float w[4][4]; /* w[i][l]: Bᵀ d */
        for (size_t l = 0; l < 4; l++) {
            const float *col = d + l * c_n + c;
            BT4(col[0], col[row], col[2 * row], col[3 * row], w[0][l], w[1][l], w[2][l],
                w[3][l]);
        }
        for (size_t i = 0; i < 4; i++) {
            float *vi = v + 4 * i * xi_stride + c;
            BT4(w[i][0], w[i][1], w[i][2], w[i][3], vi[0], vi[xi_stride], vi[2 * xi_stride],
                vi[3 * xi_stride]);
        }
    }
}

/* V of n samples (n <= chunk). */
static void transform_input(const winograd_shape *q, const float *x, size_t n, wino_scratch *s)
{
    size_t c_n = (size_t)q->channels, cols = plane_cols(q);
    size_t xi_stride = chunk_tiles(q) * c_n;
    size_t sample = c_n * (size_t)q->height * (size_t)q->width;
    image_place place = input_place(q);
    for (size_t smp = 0; smp < n; smp++) {
        memset(s->plane, 0, plane_rows(q) * cols * c_n * sizeof(float));
        to_channels_last(&place, x + smp * sample, s->plane);
        each_tile(q, transform_patch, s->plane, cols, c_n,
                  s->v + smp * tiles_per_sample(q) * c_n, xi_stride);
    }
}

/* The padded plane's patch at d += B dV Bᵀ of one tile (dv at dV_0[t]); dV read is set to 0. */
NB_HOT static void untransform_patch(float *restrict d, size_t cols, size_t c_n,
                                     float *restrict dv, size_t xi_stride)
{
    size_t row = cols * c_n;
    NB_INDEPENDENT for (size_t c = 0; c < c_n; c++) {
        float h[4][4]; /* h[i][l]: dV Bᵀ */
        for (size_t i = 0; i < 4; i++) {
            float *di = dv + 4 * i * xi_stride + c;
            B4(di[0], di[xi_stride], di[2 * xi_stride], di[3 * xi_stride], h[i][0], h[i][1],
               h[i][2], h[i][3]);
            di[0] = di[xi_stride] = di[2 * xi_stride] = di[3 * xi_stride] = 0.0f;
        }
        for (size_t l = 0; l < 4; l++) {
            float e0, e1, e2, e3;
            float *col = d + l * c_n + c;
            B4(h[0][l], h[1][l], h[2][l], h[3][l], e0, e1, e2, e3);
            col[0] += e0;
            col[row] += e1;
            col[2 * row] += e2;
            col[3 * row] += e3;
        }
    }
}

/* dx (=, or +=) of n samples from dV (in s->dv). Neighbouring patches overlap by two rows and
 * two columns; each element of the plane gets its terms in the order of the tiles. */
static void untransform_input(const winograd_shape *q, float *dx, int assign, size_t n,
                              wino_scratch *s)
{
    size_t c_n = (size_t)q->channels, cols = plane_cols(q);
    size_t xi_stride = chunk_tiles(q) * c_n;
    size_t image = (size_t)q->height * (size_t)q->width;
    image_place place = input_place(q);
    for (size_t smp = 0; smp < n; smp++) {
        memset(s->plane, 0, plane_rows(q) * cols * c_n * sizeof(float));
        each_tile(q, untransform_patch, s->plane, cols, c_n,
                  s->dv + smp * tiles_per_sample(q) * c_n, xi_stride);
        from_channels_last(&place, s->plane, NULL, assign, dx + smp * c_n * image);
    }
}

/* ---- the output: y = Aᵀ M A, and dM = A dy Aᵀ ---- */

/* The output plane: [2 tiles_h][2 tiles_w][O], one row and one column more than the output
 * when its height or width is odd. */
static size_t out_cols(const winograd_shape *q) { return 2 * (size_t)q->tiles_w; }

/* One tile of the output plane (at y: its corner; cols: the plane's columns) from M [ξ][t]
 * (m at M_0[t]); M read is set to 0. */
NB_HOT static void output_patch(float *restrict y, size_t cols, size_t o_n,
                                float *restrict m, size_t xi_stride)
{
    size_t row = cols * o_n;
    NB_INDEPENDENT for (size_t o = 0; o < o_n; o++) {
        float z[4][2]; /* z[i][l]: M A */
        for (size_t i = 0; i < 4; i++) {
            float *mi = m + 4 * i * xi_stride + o;
            AT4(mi[0], mi[xi_stride], mi[2 * xi_stride], mi[3 * xi_stride], z[i][0], z[i][1]);
            mi[0] = mi[xi_stride] = mi[2 * xi_stride] = mi[3 * xi_stride] = 0.0f;
        }
        for (size_t l = 0; l < 2; l++) {
            float *col = y + l * o_n + o;
            AT4(z[0][l], z[1][l], z[2][l], z[3][l], col[0], col[row]);
        }
    }
}

/* y of n samples (+ the bias b, or NULL) from M (in s->m). */
static void untransform_output(const winograd_shape *q, const float *b, float *y, size_t n,
                               wino_scratch *s)
{
    size_t o_n = (size_t)q->out_channels, cols = out_cols(q);
    size_t xi_stride = chunk_tiles(q) * o_n;
    size_t image = (size_t)q->out_height * (size_t)q->out_width;
    image_place place = output_place(q);
    for (size_t smp = 0; smp < n; smp++) {
        each_tile(q, output_patch, s->plane, cols, o_n, s->m + smp * tiles_per_sample(q) * o_n,
                  xi_stride);
        from_channels_last(&place, s->plane, b, 1, y + smp * o_n * image);
    }
}

/* dM [ξ][t][0, O) of one tile (dm at dM_0[t]) from the gradient plane's patch at d. */
NB_HOT static void gradient_patch(float *restrict d, size_t cols, size_t o_n,
                                  float *restrict dm, size_t xi_stride)
{
    size_t row = cols * o_n;
    NB_INDEPENDENT for (size_t o = 0; o < o_n; o++) {
        float e[4][2]; /* e[i][l]: A dy */
        for (size_t l = 0; l < 2; l++) {
            const float *col = d + l * o_n + o;
            A4(col[0], col[row], e[0][l], e[1][l], e[2][l], e[3][l]);
        }
        for (size_t i = 0; i < 4; i++) {
            float *mi = dm + 4 * i * xi_stride + o;
            A4(e[i][0], e[i][1], mi[0], mi[xi_stride], mi[2 * xi_stride], mi[3 * xi_stride]);
        }
    }
}

/* dM (into s->m) of n samples' dy. */
static void transform_gradient(const winograd_shape *q, const float *dy, size_t n,
                               wino_scratch *s)
{
    size_t o_n = (size_t)q->out_channels, cols = out_cols(q);
    size_t xi_stride = chunk_tiles(q) * o_n;
    size_t image = (size_t)q->out_height * (size_t)q->out_width;
    /* An odd height's last row and an odd width's last column are outside the output: 0. */
    memset(s->plane, 0, 2 * (size_t)q->tiles_h * cols * o_n * sizeof(float));
    image_place place = output_place(q);
    for (size_t smp = 0; smp < n; smp++) {
        to_channels_last(&place, dy + smp * o_n * image, s->plane);
        each_tile(q, gradient_patch, s->plane, cols, o_n, s->m + smp * tiles_per_sample(q) * o_n,
                  xi_stride);
    }
}

/* ---- the passes over a chunk ---- */

void conv2d_winograd_forward(const winograd_shape *q, const float *x, const float *b, float *y,
                             size_t n, float *scratch)
{
    wino_scratch s = scratch_parts(q, scratch);
    int o = q->out_channels, c = q->channels;
    size_t t_all = chunk_tiles(q);
    size_t in_sample = (size_t)c * (size_t)q->height * (size_t)q->width;
    size_t out_sample = (size_t)o * (size_t)q->out_height * (size_t)q->out_width;
    memset(s.m, 0, XI * t_all * (size_t)o * sizeof(float));
    for (size_t s0 = 0; s0 < n; s0 += (size_t)q->chunk) {
        size_t k = n - s0 < (size_t)q->chunk ? n - s0 : (size_t)q->chunk;
        int t = (int)(k * tiles_per_sample(q));
        transform_input(q, x + s0 * in_sample, k, &s);
        for (int xi = 0; xi < XI; xi++) /* M_ξ [T, O] += V_ξ [T, C] · U_ξᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, o, c, 1.0f,
                        s.v + (size_t)xi * t_all * (size_t)c, c,
                        s.u + (size_t)xi * (size_t)o * (size_t)c, c, 1.0f,
                        s.m + (size_t)xi * t_all * (size_t)o, o);
        untransform_output(q, b, y + s0 * out_sample, k, &s);
    }
}

void conv2d_winograd_backward(const winograd_shape *q, const float *x, const float *dy,
                              float *dx, int assign_dx, int want_dw, int first, size_t n,
                              float *scratch)
{
    wino_scratch s = scratch_parts(q, scratch);
    int o = q->out_channels, c = q->channels;
    size_t t_all = chunk_tiles(q);
    size_t in_sample = (size_t)c * (size_t)q->height * (size_t)q->width;
    size_t out_sample = (size_t)o * (size_t)q->out_height * (size_t)q->out_width;
    if (dx)
        memset(s.dv, 0, XI * t_all * (size_t)c * sizeof(float));
    for (size_t s0 = 0; s0 < n; s0 += (size_t)q->chunk) {
        size_t k = n - s0 < (size_t)q->chunk ? n - s0 : (size_t)q->chunk;
        int t = (int)(k * tiles_per_sample(q));
        transform_gradient(q, dy + s0 * out_sample, k, &s);
        if (want_dw) {
            transform_input(q, x + s0 * in_sample, k, &s);
            for (int xi = 0; xi < XI; xi++) /* dU_ξ [O, C] (+)= dM_ξᵀ · V_ξ */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, c, t, 1.0f,
                            s.m + (size_t)xi * t_all * (size_t)o, o,
                            s.v + (size_t)xi * t_all * (size_t)c, c,
                            first && s0 == 0 ? 0.0f : 1.0f,
                            s.du + (size_t)xi * (size_t)o * (size_t)c, c);
        }
        if (!dx)
            continue;
        for (int xi = 0; xi < XI; xi++) /* dV_ξ [T, C] += dM_ξ · U_ξ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, c, o, 1.0f,
                        s.m + (size_t)xi * t_all * (size_t)o, o,
                        s.u + (size_t)xi * (size_t)o * (size_t)c, c, 1.0f,
                        s.dv + (size_t)xi * t_all * (size_t)c, c);
        untransform_input(q, dx + s0 * in_sample, assign_dx, k, &s);
    }
}
