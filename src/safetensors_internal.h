/* Helpers of the safetensors module shared with model_io.c. Not part of the public API. */
#ifndef NABLA_SAFETENSORS_INTERNAL_H
#define NABLA_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* "[2, 3]" into buf, for messages. Returns buf. */
const char *nb_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

#endif
