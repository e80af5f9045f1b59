/* One thread's share of a matrix product. The threads of a job each call cblas_sgemm
 * (single-threaded) on their own block of C, so a product needs no reduction and each thread
 * reads only its part of the operand that is split. */
#include <cblas.h>

#include "graph_internal.h"

/* Column blocks are multiples of 16 floats: one cache line, and every block of a row starts
 * aligned when the row does. */
enum { COLUMN_ALIGN = 16 };

nb_block nb_sgemm_share(const nb_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc)
{
    nb_block blk = {0, m, 0, n};
    size_t begin, end;
    /* Split by rows, each thread writing whole rows of C, when the price (every thread packs
     * all of op(B), K x N) is below the size of C (M x N), i.e. K < M: the weight gradients,
     * whose K is the batch. Split by columns otherwise (every thread packs all of op(A)), as
     * in the forward pass, where op(B) is the weight matrix. Too few columns for the threads
     * means rows after all. */
    int by_rows = k < m;
    if (!by_rows && n < COLUMN_ALIGN * ex->nthreads)
        by_rows = 1;
    if (!by_rows) {
        nb_split(ex, (size_t)n, COLUMN_ALIGN, &begin, &end);
        blk.col0 = (int)begin;
        blk.col1 = (int)end;
        /* Columns of C are columns of op(B): rows of B when it is transposed. */
        b += trans_b ? begin * (size_t)ldb : begin;
    } else {
        nb_split(ex, (size_t)m, 1, &begin, &end);
        blk.row0 = (int)begin;
        blk.row1 = (int)end;
        /* Rows of C are rows of op(A): columns of A when it is transposed. */
        a += trans_a ? begin : begin * (size_t)lda;
    }
    int rows = blk.row1 - blk.row0, cols = blk.col1 - blk.col0;
    if (rows > 0 && cols > 0)
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, rows, cols, k, alpha, a, lda, b, ldb,
                    beta, c + (size_t)blk.row0 * ldc + blk.col0, ldc);
    return blk;
}
