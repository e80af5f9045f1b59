/* Inside the model files, shared with the checkpoints (src/io/checkpoint.c). */
#ifndef NABLA_MODEL_IO_H
#define NABLA_MODEL_IO_H

#include "nabla.h"

/* The metadata key of a file's data-section checksum (CRC-32C, 8 hex digits). */
#define NB_CRC_KEY "crc32c"
/* A checkpoint has this metadata key (its format version), and its training state in tensors
 * under these prefixes, which a model loading weights from it skips. */
#define NB_CHECKPOINT_KEY "nabla_checkpoint"
#define NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER "optimizer."
#define NB_CHECKPOINT_TENSOR_PREFIX_TRAIN "train."

/* Continues *crc over the metadata entries (all but NB_CRC_KEY), sorted by key, each as key
 * and value with their terminating zeros: the header's values are covered too, not only the
 * data section (a flipped digit in a stored number would otherwise go unnoticed). */
int nb_checksum_meta(uint32_t *crc, const nb_st_meta *meta, int n, nb_error *err);

/* nb_model_save, with `extra` tensors after the model's and `extra_meta` after its
 * architecture; with `checksum`, the CRC-32C of the whole data section and then of the
 * metadata (nb_checksum_meta) in NB_CRC_KEY. */
int nb_model_save_ex(const nb_model *m, const char *path, const nb_st_tensor *extra,
                     int n_extra, const nb_st_meta *extra_meta, int n_extra_meta, int checksum,
                     nb_error *err);

/* Checks that f has every tensor of the model with the right dtype and shape, then reads
 * them in, checking their numbers (no NaN or infinity, no negative variance or counter); `what`
 * names the file in messages. A file in memory (nb_st_read) is checked whole first and a
 * failure leaves the model as it was; one of nb_st_open is read straight into the model, which
 * holds part of it after a bad number (the caller frees it). */
int nb_model_apply_weights(nb_model *m, const nb_st_file *f, const char *what, nb_error *err);

/* count F32 numbers of tensor st into dst, in the host's order (nb_st_tensor_bytes). */
int nb_st_read_floats(const nb_st_file *f, const nb_st_tensor *st, float *dst, size_t count,
                      nb_error *err);

#endif
