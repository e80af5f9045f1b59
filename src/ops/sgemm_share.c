/* One thread's share of a matrix product. The threads of a job each call cblas_sgemm
 * (single-threaded) on their own blocks of C, so a product needs no reduction and each thread
 * reads only its part of the operand that is split. */
#include <cblas.h>

#include "core/graph_internal.h"

/* Column blocks are multiples of 16 floats: one cache line, and every block of a row starts
 * aligned when the row does. */
enum { COLUMN_ALIGN = 16 };

void nb_part_range(int part, int parts, size_t n, size_t align, size_t *begin, size_t *end)
{
    nb_exec as_part = {NULL, part, parts};
    nb_split(&as_part, n, align, begin, end);
}

void nb_thread_parts(const nb_exec *ex, int parts, int *p0, int *p1)
{
    *p0 = (int)((long)ex->tid * parts / ex->nthreads);
    *p1 = (int)((long)(ex->tid + 1) * parts / ex->nthreads);
}

nb_block nb_sgemm_share(const nb_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc)
{
    /* The product is cut into nb_product_parts() blocks whatever the thread count (see
     * pool.h); this thread computes the consecutive blocks [p0, p1), whose union is one block
     * of C for the caller's fused work. */
    int parts = nb_product_parts(), p0, p1;
    nb_thread_parts(ex, parts, &p0, &p1);
    /* Split by rows, each block whole rows of C, when the price (every block packs all of
     * op(B), K x N) is below the size of C (M x N), i.e. K < M: the weight gradients, whose K
     * is the batch. Split by columns otherwise (every block packs all of op(A)), as in the
     * forward pass, where op(B) is the weight matrix. Too few columns for the blocks means
     * rows after all. */
    int by_rows = k < m || n < COLUMN_ALIGN * parts;
    size_t items = by_rows ? (size_t)m : (size_t)n, align = by_rows ? 1 : COLUMN_ALIGN;
    nb_block blk = {0, m, 0, n};
    size_t first = items, last = items;
    for (int p = p0; p < p1; p++) {
        size_t begin, end;
        nb_part_range(p, parts, items, align, &begin, &end);
        if (p == p0)
            first = begin;
        last = end;
        if (begin >= end)
            continue;
        int rows = by_rows ? (int)(end - begin) : m, cols = by_rows ? n : (int)(end - begin);
        /* Rows of C are rows of op(A) (columns of A when transposed); columns of C are
         * columns of op(B) (rows of B when transposed). */
        const float *pa = by_rows ? a + (trans_a ? begin : begin * (size_t)lda) : a;
        const float *pb = by_rows ? b : b + (trans_b ? begin * (size_t)ldb : begin);
        float *pc = c + (by_rows ? begin * (size_t)ldc : begin);
        if (rows > 0 && cols > 0)
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                        trans_b ? CblasTrans : CblasNoTrans, rows, cols, k, alpha, pa, lda, pb,
                        ldb, beta, pc, ldc);
    }
    if (by_rows) {
        blk.row0 = (int)first;
        blk.row1 = (int)last;
    } else {
        blk.col0 = (int)first;
        blk.col1 = (int)last;
    }
    return blk;
}
