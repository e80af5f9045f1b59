/* What the ranks of one data-parallel run must agree on (not part of the public API): the
 * training configuration's every number that shapes training, the data sets' sizes and the
 * model's. nb_train compares rank 0's with each rank's before it starts (train_ranks.c); the
 * nabla program puts it into its own check of a run under mpirun, with what only the program
 * knows (src/cli/train/train_lockstep.c). A new hyperparameter of nb_train_config is added
 * here, once, and both checks know it. */
#ifndef NABLA_RUN_FINGERPRINT_H
#define NABLA_RUN_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "nabla.h"

enum { NB_FINGERPRINT_FIELDS = 29 };

/* Numbers, floats by their bits. */
typedef struct nb_run_fingerprint {
    int64_t field[NB_FINGERPRINT_FIELDS];
} nb_run_fingerprint;

/* The fingerprint of training m on train (dev and test may be NULL) with cfg (cfg->comm may be
 * NULL: one rank). m must be built. */
void nb_run_fingerprint_of(const nb_model *m, const nb_dataset *train, const nb_dataset *dev,
                           const nb_dataset *test, const nb_train_config *cfg,
                           nb_run_fingerprint *fp);

/* The first field in which a and b differ, or -1 when they are the same. */
int nb_run_fingerprint_differs(const nb_run_fingerprint *a, const nb_run_fingerprint *b);

/* Field i's name ("the learning rate") and a value of it as text ("0.01"), for a message. */
const char *nb_run_fingerprint_name(int i);
void nb_run_fingerprint_value(int i, int64_t v, char *buf, size_t cap);

#endif /* NABLA_RUN_FINGERPRINT_H */
