/* Fuzz target: the safetensors reader (nb_st_parse) on arbitrary bytes.
 *
 * A file the reader accepts is checked against the format's promises: every tensor's bytes lie
 * inside the data section and match its dtype and shape, the tensors tile the data section, names
 * and metadata keys are unique. Every data byte is read, so an offset that points outside the
 * buffer shows up under AddressSanitizer. */
#include <string.h>

#include "fuzz.h"
#include "nabla.h"

static uint64_t load_u64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* numel * element size, or UINT64_MAX on overflow. */
static uint64_t expected_bytes(const nb_st_tensor *t)
{
    uint64_t total = t->dtype == NB_I64 ? 8 : 4;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0)
            return 0;
    }
    for (int d = 0; d < t->ndim; d++) {
        uint64_t dim = (uint64_t)t->shape[d];
        if (total > UINT64_MAX / dim)
            return UINT64_MAX;
        total *= dim;
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_st_file f;
    nb_error err = {""};
    if (nb_st_parse(data, size, "fuzz.safetensors", &f, &err) != 0) {
        /* A refusal says why, on one line, naming the source. */
        FUZZ_CHECK(fuzz_message_ok(err.msg, "fuzz.safetensors: "));
        FUZZ_CHECK(f.tensors == NULL && f.meta == NULL && f.buffer == NULL);
        return 0;
    }
    FUZZ_CHECK(f.buffer != NULL && f.size == size && size >= 8);
    FUZZ_CHECK(memcmp(f.buffer, data, size) == 0);
    uint64_t hlen = load_u64_le(f.buffer);
    FUZZ_CHECK(hlen >= 1 && hlen <= size - 8);
    const uint8_t *section = f.buffer + 8 + hlen, *end = f.buffer + size;

    volatile uint64_t sink = 0;
    uint64_t tiled = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const nb_st_tensor *t = &f.tensors[i];
        FUZZ_CHECK(t->name != NULL);
        FUZZ_CHECK(nb_st_find(&f, t->name) == t);   /* names are unique */
        FUZZ_CHECK(t->dtype == NB_F32 || t->dtype == NB_I64);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= NB_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            FUZZ_CHECK(t->shape[d] >= 0);
        FUZZ_CHECK(expected_bytes(t) == t->nbytes);
        if (t->nbytes == 0)
            continue;
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= section && t->nbytes <= (size_t)(end - p));
        tiled += t->nbytes;
        /* Read every element as its type, through memcpy (the data need not be aligned). */
        size_t elem = t->dtype == NB_I64 ? 8 : 4;
        for (size_t k = 0; k < t->nbytes; k += elem) {
            if (t->dtype == NB_I64) {
                int64_t v;
                memcpy(&v, p + k, sizeof v);
                sink += (uint64_t)v;
            } else {
                uint32_t bits;
                memcpy(&bits, p + k, sizeof bits);
                sink += bits;
            }
        }
    }
    /* No gaps and no overlap: the sizes add up to the data section exactly. */
    FUZZ_CHECK(tiled == (uint64_t)(end - section));

    for (int i = 0; i < f.n_meta; i++) {
        FUZZ_CHECK(f.meta[i].key != NULL && f.meta[i].value != NULL);
        FUZZ_CHECK(nb_st_meta_get(&f, f.meta[i].key) == f.meta[i].value);   /* unique keys */
        sink += strlen(f.meta[i].key) + strlen(f.meta[i].value);
    }
    (void)sink;
    nb_st_free(&f);
    FUZZ_CHECK(f.tensors == NULL && f.buffer == NULL && f.n_tensors == 0);
    return 0;
}
