/* Shared by the fuzz targets and the replay program. */
#ifndef NABLA_FUZZ_H
#define NABLA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

/* libFuzzer's entry point, one per target: feeds `size` bytes to a reader and walks whatever it
 * returns. Always 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A result that breaks the reader's promises is a bug the sanitizers cannot see: stop loudly, so
 * that libFuzzer saves the input as a crash (harness code, not the library, aborts). */
#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* An error message a caller can print: it starts with `prefix` (the name of the source), says
 * something after it, and stays on one line. */
static inline int fuzz_message_ok(const char *msg, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(msg, prefix, n) == 0 && msg[n] != '\0' && strchr(msg, '\n') == NULL &&
           strchr(msg, '\r') == NULL;
}

/* Every label of an accepted data set lies in [0, classes), and the largest is classes - 1 (the
 * readers count the classes from the labels). */
static inline void fuzz_check_labels(const nb_dataset *d)
{
    int largest = 0;
    for (int i = 0; i < d->n; i++) {
        FUZZ_CHECK(d->labels[i] >= 0 && d->labels[i] < d->classes);
        if (d->labels[i] > largest)
            largest = d->labels[i];
    }
    FUZZ_CHECK(largest == d->classes - 1);
}

#endif /* NABLA_FUZZ_H */
