/* A study's journal (STUDY/journal.jsonl), read back: the one reader behind `nabla tune`, which
 * continues a study from it, and `nabla report`, which draws it. The tuner appends the events
 * (tune_study.h journal_append), one JSON object a line:
 *
 *   {"round":r,"space":"..."}                         round r (>= 1) of coarse to fine starts
 *   {"trial":i,"state":"running","round":r,"params":{...},["waited_seconds":w,]"args":[...]}
 *                                                      trial i starts (w: the time a free
 *                                                      worker waited for the earlier results
 *                                                      its configuration depends on)
 *   {"trial":i,"state":"running","epoch":e,"epochs_planned":E,"dev_accuracy":a,"dev_loss":l,
 *    ["dev_M":m,]"seconds":s}                          trial i reported epoch e
 *   {"trial":i,"state":"interrupted","reason":"...","seconds":s}
 *                                                      stopped by an accident (not final: the
 *                                                      study's next run resumes it)
 *   {"trial":i,"state":"complete"|"pruned"|"failed","params":{...},"dev_accuracy":a,
 *    "dev_loss":l,["dev_M":m,]"epochs":e,"seconds":s,"reason":"..."}
 *                                                      its end, final (reason: failed only)
 *
 * dev_M is the study's objective M where it is neither accuracy nor loss (tune_objective.h):
 * "dev_rmse" in a study of dev RMSE. The objective is a number in every report and every end
 * but a failed trial's; dev_accuracy is null for a task without accuracy (regression).
 *
 * Every event is checked for sense, against the study's settings (study.json, checked as tune
 * checks its options), and the first that makes none is an error naming the file and the line:
 * a trial number outside the study, a state that does not exist, params outside the study's
 * space or other than the trial's start, args other than its params and the settings give, a
 * round out of range, an event before the trial's start, a second start, epochs that go
 * backwards or repeat, epochs_planned other than the trial's --epochs, an event after the
 * trial's end, an end whose dev figures are not the ones the trial reported for that epoch,
 * an objective missing or outside its metric's values, accuracies outside [0, 1] (or any for
 * a task without one), negative losses or seconds, a trial's time that goes backwards,
 * a name twice in one object. A last line without its newline is an append cut short by a
 * crash and is left out when it is the beginning of an event; anything else there is damage. */
#ifndef NABLA_CLI_STUDY_JOURNAL_H
#define NABLA_CLI_STUDY_JOURNAL_H

#include <cjson/cJSON.h>

#include "nabla.h"
#include "tune_options.h"

typedef enum trial_state {
    TRIAL_PENDING,     /* not started */
    TRIAL_RUNNING,     /* started, not finished (or stopped with the study) */
    TRIAL_INTERRUPTED, /* stopped by an accident; resumed by the study's next run */
    TRIAL_COMPLETE,    /* from here on: finished, for good */
    TRIAL_PRUNED,
    TRIAL_FAILED,
} trial_state;

/* What is known of a trial: from the journal, and while the study runs, from its process. */
typedef struct trial {
    int round;
    trial_state state;
    int has_point;
    nb_search_point point;
    /* Dev accuracy, loss and the study's objective after each epoch, as reported (the
     * objective NaN where not yet; the accuracy NaN for a task without one). */
    double *dev_accuracy, *dev_loss, *dev_objective;
    int n_reported;          /* epochs 1..n_reported have values */
    int capacity;
    int epochs_total;        /* the trial's --epochs, from its reports (0: none yet) */
    double seconds;          /* wall time so far, over every process that ran it */
    double waited;           /* worker-seconds its start waited for earlier results */
    /* Finished trials: the result. */
    double final_accuracy, final_loss, final_objective;
    int epochs;
    char reason[512];        /* failed or interrupted: why */
    /* Only while the tuner runs the study: */
    int decided;             /* epochs 1..decided have passed the pruner */
    int exited;              /* its process ended; the result waits for the pruner */
    trial_state exit_state;  /* complete or failed, as the process ended */
} trial;

const char *trial_state_name(trial_state s);
/* Complete, pruned or failed: nothing changes it any more. */
int trial_finished(const trial *t);

/* `n` trials, nothing known of them yet (results NaN), each in its round; free with
 * trials_free. NULL when out of memory. */
trial *trials_new(int n, int rounds);
void trials_free(trial *t, int n);

/* Records the values of epoch (1-based) of trial t (objective: a number); 1 if it is new, 0 if
 * known, -1 no memory. */
int trial_set_epoch(trial *t, int epoch, double accuracy, double loss, double objective);

/* Trials of round r of a study of `trials` trials in `rounds` rounds: [*first, *end). */
void round_range(int trials, int rounds, int r, int *first, int *end);

/* Reads journal.jsonl at `path` into trials (from trials_new(opt->trials, opt->rounds)),
 * checked against the study's settings opt. Returns 0, or -1 with "path:line: what" (or why the
 * file cannot be read) in err. */
int journal_read(const char *path, const tune_options *opt, trial *trials, nb_error *err);

/* The "params" object of a point: numbers for numeric parameters, the text of choices. */
cJSON *params_json(const nb_search_space *space, const nb_search_point *p);

#endif /* NABLA_CLI_STUDY_JOURNAL_H */
