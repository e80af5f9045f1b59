/* A study of `nabla tune` as the study engine sees it (nb_study_config): its settings, and
 * what only nabla tune knows of its trials, which are `nabla train` runs: their --epochs,
 * whether --early-stop or --max-steps may end them early, and the arguments each starts
 * with. */
#ifndef NABLA_CLI_TUNE_RULES_H
#define NABLA_CLI_TUNE_RULES_H

#include "nabla.h"
#include "cli/tune/tune_options.h"

/* What the hooks read: the study's options and, while the tuner writes the study, the check of
 * its own files (lock, study.json) before each journal append. */
typedef struct tune_rules {
    const tune_options *opt;
    int (*check_files)(const void *study, nb_error *err);   /* NULL: none */
    const void *study;
} tune_rules;

/* The engine's config of the study r describes (r must outlive it: the hooks read it). */
void tune_study_config(const tune_rules *r, nb_study_config *c);

#endif /* NABLA_CLI_TUNE_RULES_H */
