/* Which OpenBLAS kernels run the matrix products, and whether the CPU could run better ones.
 *
 * OpenBLAS picks its kernels from the CPU model when it is loaded. A CPU newer than the
 * OpenBLAS release is not in its table (Debian 12's 0.3.21 does not know Intel family 6
 * model 207, a 5th-generation Xeon), and it then falls back to its Prescott (SSE3) kernels:
 * about 5 times slower than the AVX-512 ones on the same chip. The environment variable
 * OPENBLAS_CORETYPE, read when the library loads, overrides the choice; the command-line
 * program sets it and restarts itself when this file says it should (see src/cli/main.c). */
#include <cblas.h>
#include <ctype.h>
#include <stddef.h>

#include "nabla.h"

/* Instruction-set levels, and the OpenBLAS core name that stands for each. */
enum { LEVEL_SSE, LEVEL_AVX, LEVEL_AVX2, LEVEL_AVX512, LEVEL_UNKNOWN };
static const char *const level_core[] = {"Prescott", "Sandybridge", "Haswell", "SkylakeX"};

static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* The level an OpenBLAS core's kernels use; unknown names are taken as good enough. */
static int core_level(const char *core)
{
    static const struct {
        const char *name;
        int level;
    } cores[] = {
        {"Prescott", LEVEL_SSE},    {"Core2", LEVEL_SSE},        {"Penryn", LEVEL_SSE},
        {"Dunnington", LEVEL_SSE},  {"Nehalem", LEVEL_SSE},      {"Atom", LEVEL_SSE},
        {"Katmai", LEVEL_SSE},      {"Coppermine", LEVEL_SSE},   {"Northwood", LEVEL_SSE},
        {"Banias", LEVEL_SSE},      {"Sandybridge", LEVEL_AVX},  {"Bulldozer", LEVEL_AVX},
        {"Piledriver", LEVEL_AVX},  {"Haswell", LEVEL_AVX2},     {"Zen", LEVEL_AVX2},
        {"Excavator", LEVEL_AVX2},  {"Steamroller", LEVEL_AVX2}, {"SkylakeX", LEVEL_AVX512},
        {"Cooperlake", LEVEL_AVX512}, {"SapphireRapids", LEVEL_AVX512},
    };
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (same_name(core, cores[i].name))
            return cores[i].level;
    return LEVEL_UNKNOWN;
}

static int cpu_level(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return LEVEL_AVX2;
    if (__builtin_cpu_supports("avx"))
        return LEVEL_AVX;
#endif
    return LEVEL_SSE;
}

const char *nb_blas_kernel(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

const char *nb_blas_better_kernel(void)
{
    int have = core_level(nb_blas_kernel()), can = cpu_level();
    return have != LEVEL_UNKNOWN && have < can ? level_core[can] : NULL;
}
