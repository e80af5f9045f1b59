/* CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and SSE4.2's crc32 instruction), to tell
 * a damaged checkpoint from a good one. Table-driven, one byte at a time: a checkpoint of a few
 * megabytes takes milliseconds, next to the fsync that follows. */
#include <pthread.h>

#include "nabla.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* the reflected polynomial */
        table[i] = c;
    }
}

uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&table_once, make_table);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
