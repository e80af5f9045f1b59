/* Before a study starts: every model its trials would train must fit the data. */
#ifndef NABLA_CLI_TUNE_MODELS_H
#define NABLA_CLI_TUNE_MODELS_H

#include "cli/tune/tune_options.h"

/* Checks the model of every trial the study can draw (each value of a searched `layers`, or
 * the fixed --layers) against the training set, as nabla train would once it has loaded the
 * data: a model's text whose shapes do not fit the data's samples and classes fails every trial
 * that draws it, so it is refused up front with train's message, before the study directory is
 * touched. Widths always fit, so the data is loaded (once) only when a model's text is among
 * them. 0, or -1 with the message printed and *exit_code set: 2 for a model that does not fit,
 * 1 when the data cannot be loaded. */
int tune_check_models(const tune_options *o, int *exit_code);

#endif /* NABLA_CLI_TUNE_MODELS_H */
