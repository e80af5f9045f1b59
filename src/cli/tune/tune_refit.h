/* The refit of `nabla tune --refit`: at the study's end, the best trial's configuration trained
 * again on the whole training set, its dev split included (--dev-fraction 0), for the epochs
 * the best trial's model trained, as a `nabla train` process into STUDY/refit. Its test
 * evaluation and best.json's "refit" member are the report's (tune_report.h).
 *
 * The epochs: a trial's model is the weights of its last epoch, or with --early-stop of its
 * best epoch (summary.json's "best_epoch"): the refit trains exactly that many epochs, without
 * early stopping (it has no dev set to watch). Without --lr-decay cosine's own horizon, the
 * refit keeps the trial's (--decay-epochs, the trial's --epochs), so its schedule is the
 * trial's. --eval-every, --monitor and --min-delta, which need a dev set and change nothing
 * the model learns, are left out; everything else is the trial's, its seed included.
 *
 * Like a trial, the refit is continued from its own checkpoint when the study is run again
 * after a stop (a checkpoint that is not the refit's is refused, not continued), and a refit
 * that finished (its summary.json) is not trained again. */
#ifndef NABLA_CLI_TUNE_REFIT_H
#define NABLA_CLI_TUNE_REFIT_H

#include <cjson/cJSON.h>

#include "cli/tune/refit_epochs.h"
#include "cli/tune/tune_study.h"

typedef struct refit_run {
    int trial;               /* the best trial it trains again */
    int epochs;
    char command[16384];     /* `nabla train ...` that trains it (bit for bit) */
} refit_run;


/* Trains the refit of the best trial b into STUDY/refit, or continues it from its checkpoint,
 * or finds it finished; fills r. Returns 0 when STUDY/refit holds the finished refit, -1 with
 * err when it failed, was interrupted or cannot run (the message names STUDY/refit/train.log
 * where the run wrote its reason), or the stop flag's value (stop_signals.h) when a stop signal
 * came: the refit is then stopped too, with its checkpoint. */
int refit_train(const study *s, int b, refit_run *r, nb_error *err);

/* Whether STUDY/refit exists (a refit of an earlier run with --refit, which a run without it
 * neither continues nor names in best.json: best.json says what the command measured). */
int refit_left(const study *s);

/* best.json's "refit": its epochs, model, test figures (null without a test set, or where the
 * task has none) and command. */
cJSON *refit_json(const study *s, const refit_run *r, double test_accuracy, double test_loss,
                  double test_objective);

#endif /* NABLA_CLI_TUNE_REFIT_H */
