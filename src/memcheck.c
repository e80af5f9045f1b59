/* Checks sizes against the memory the machine has before allocating them. See memcheck.h. */
#include "memcheck.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

uint64_t nb_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t nb_sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return UINT64_MAX;   /* unknown: let the allocator decide */
    return nb_sat_mul((uint64_t)pages, (uint64_t)size);
}

uint64_t nb_memory_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return physical_memory();
    char line[256];
    uint64_t total = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
            sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
            total = nb_sat_add(total, nb_sat_mul(kb, 1024));
            found++;
        }
    }
    fclose(f);
    return found ? total : physical_memory();
}

int nb_check_memory(uint64_t bytes, const char *what, nb_error *err)
{
    uint64_t available = nb_memory_available();
    if (bytes <= available)
        return 0;
    if (bytes == UINT64_MAX)
        return nb_fail(err, "out of memory: %s needs more than 2^64 bytes", what);
    return nb_fail(err, "out of memory: %s needs %llu MB, but only %llu MB are available", what,
                   (unsigned long long)(bytes >> 20), (unsigned long long)(available >> 20));
}
