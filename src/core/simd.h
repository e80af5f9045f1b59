/* Hot loops are compiled three times, for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and the
 * baseline, and the version for the CPU at hand is chosen when the program loads (GCC's
 * function multiversioning). The loops are written so that they vectorize; this lets them use
 * the widest vectors the machine has without building for one machine. Results do not depend
 * on the version: the build is ISO C, where GCC contracts no a*b+c into an FMA.
 *
 * Mark a function NB_HOT. Other compilers and targets get the baseline only. */
#ifndef NABLA_SIMD_H
#define NABLA_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NB_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB_HOT
#endif

/* Before a loop whose iterations touch different elements through many pointers (more than
 * GCC checks for overlap at run time, so that it would not vectorize the loop): the caller
 * promises they do not overlap. */
#if defined(__GNUC__) && !defined(__clang__)
#define NB_INDEPENDENT _Pragma("GCC ivdep")
#else
#define NB_INDEPENDENT
#endif

#endif
