/* The refit's place and epochs (tune_refit.h), apart from the refit itself, so that best.json's
 * reader (study_files.c) and the tuner take them from one place without the reader depending
 * on the tuner's study. */
#ifndef NABLA_CLI_TUNE_REFIT_EPOCHS_H
#define NABLA_CLI_TUNE_REFIT_EPOCHS_H

#include "nabla.h"

/* Where the refit runs, in the study directory. */
#define REFIT_DIR "refit"
#define REFIT_MODEL REFIT_DIR "/model.safetensors"

/* The refit's epochs for the best trial b of the study in dir, which ended with `epochs`: its
 * summary.json's "best_epoch" when it ran with --early-stop, else `epochs`. Returns them, or -1
 * with err (the trial's summary.json unreadable, or its best epoch outside its epochs). Both
 * the tuner and best.json's reader (study_files.c) take the epochs from here. */
int refit_epochs(const char *dir, int b, int epochs, nb_error *err);

#endif /* NABLA_CLI_TUNE_REFIT_EPOCHS_H */
