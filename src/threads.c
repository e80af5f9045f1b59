/* Thread count for the library's matrix products. OpenBLAS owns the only thread pool; the
 * library's own loops run on the calling thread, so the cores are never oversubscribed. */
#include <cblas.h>

#include "nabla.h"

void nb_set_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}
