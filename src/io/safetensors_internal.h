/* Helpers of the safetensors module shared with model_io.c. Not part of the public API. */
#ifndef NABLA_SAFETENSORS_INTERNAL_H
#define NABLA_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nabla.h"

/* "[2, 3]" into buf, for messages. Returns buf. */
const char *nb_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* The size of f's data section, and n bytes of it from `offset` into dst (from memory, or from
 * the file of nb_st_open). */
uint64_t nb_st_data_size(const nb_st_file *f);
int nb_st_data_bytes(const nb_st_file *f, uint64_t offset, size_t n, void *dst, nb_error *err);

#endif
