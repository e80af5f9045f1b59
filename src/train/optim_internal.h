/* What the optimizers share with the trainer beyond the public API. Not part of it. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include "nabla.h"

/* How many moment buffers (of one float per parameter) the optimizer keeps: 0, 1 or 2. */
int nb_optimizer_moments(nb_optimizer_kind kind);

#endif /* NABLA_OPTIM_INTERNAL_H */
