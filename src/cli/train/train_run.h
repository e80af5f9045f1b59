/* A `nabla train` run as the program holds it (cmd_train.c), and the parts of it that live in
 * files of their own: the run's config.json and summary.json (train_files.c), and keeping the
 * ranks of an MPI job in step (train_lockstep.c). */
#ifndef NABLA_CLI_TRAIN_RUN_H
#define NABLA_CLI_TRAIN_RUN_H

#include <signal.h>
#include <stdint.h>

#include "cli/common/dir_lock.h"
#include "cli/common/options.h"
#include "cli/common/stop_signals.h"
#include "cli/train/progress.h"
#include "cli/train/resume.h"
#include "cli/train/run_files.h"
#include "cli/train/train_options.h"
#include "cli/train/train_trace.h"
#include "cli/common/trial_channel.h"
#include "nabla.h"

/* Everything a run holds; released in one place. */
typedef struct train_run {
    train_options opt;
    data_kind kind;
    const char *data_path;
    nb_dataset train, dev, test;
    nb_model model;
    char out_dir[CLI_MAX_PATH];
    dir_lock lock;               /* rank 0: the run directory's, for the process's life */
    char *metrics_path;
    int metrics_fd;              /* open from the run's start (-1 before) */
    metrics_log log;             /* metrics.jsonl's lines, for checkpoints */
    char *argv_json;             /* the arguments checkpoints store */
    char cwd[CLI_MAX_PATH];      /* ... and the directory they are relative to */
    char run_name[RUN_NAME_SIZE]; /* the run's name (resume.h): in config.json, checkpoints */
    resume_point resume;         /* --resume: the checkpoint */
    nb_train_state state;        /* --resume: the state it holds */
    int have_state;
    progress prog;
    nb_error err;
    int callback_failed;
    int stepped;                 /* nb_train took a step (it did not refuse to start) */
    int bad_model;               /* the model does not fit the data: a usage error */
    int own_fault;               /* it failed for what it is responsible for: its model does
                                    not fit in memory, its loss diverged (trial_channel.h) */
    trial_channel trial;         /* a trial of `nabla tune`: reports each epoch */
    int tuner_gone;
    double last_checkpoint;      /* nb_monotonic_seconds() when the last one was written */
    int64_t checkpoint_steps;    /* the steps of the newest checkpoint on disk, -1: none */
    int final_checkpoint_failed; /* the run's last checkpoint was not written: ... */
    nb_error final_checkpoint;   /* ... why */
    double checkpoint_cost;      /* seconds it took (0 before the first) */
    int cut_short;               /* a stop found a file of the run not being read (a FIFO): */
    nb_error cut;                /* ... which, said when the run ends (run_files.h) */
    double last_train_accuracy;  /* of the last epoch, for the summary */
    double last_train_loss;
    train_trace trace;           /* --trace-activations and --eval-every */
    /* Under mpirun with several ranks (else comm is NULL and writer 1). */
    const nb_comm *comm;
    int writer;                  /* rank 0: writes the files, prints */
    volatile sig_atomic_t agreed_stop; /* the stop signal as the ranks agreed on it (cfg.stop) */
    int peer_failed;             /* another rank's failure stopped the run: nothing to say */
    int wrote_checkpoint;        /* rank 0 wrote one at this on_checkpoint call */
    int checkpoint_written;      /* ... as the last vote made known to every rank */
    char ranks_text[16];         /* the job's size, for the checkpoints' metadata */
} train_run;

/* ---- cmd_train.c ---- */

/* The configuration nb_train gets from the run's options (its callbacks are cmd_train.c's). */
void fill_train_config(train_run *r, nb_train_config *c);

/* ---- train_files.c ---- */

/* config.json: the run's settings, data and model as they were at the start. */
int train_write_config(train_run *r);
/* summary.json: the saved weights' dev and test results and the run's figures. */
int train_write_summary(train_run *r, const nb_train_result *res, const nb_eval_result *dev,
                        const nb_eval_result *test);

/* ---- train_dir.c: the run directory, before anything is written into it ---- */

/* Whether the run may write into dir (rank 0, before anything is written): dir is new, empty
 * or a run directory (train_run's --resume: not a study), every file the run writes there can
 * be written by the output rule, and those it rotates or removes (checkpoints, an earlier
 * run's trace.jsonl and steps.jsonl) are regular files. Returns 0, or -1 with r->err. */
int train_dir_check(train_run *r, const char *dir);

/* Takes dir's lock for the rest of the process (after checking that dir may be a run's; dir
 * must exist). A trial of nabla tune waits a while for a holder that is ending (the trial's
 * own process before a restart); any other run is refused at once. Returns 0, or -1 with *code
 * set and the message printed: EXIT_TRIAL_LOCKED for a trial whose directory stays held, else
 * EXIT_RUNTIME. */
int train_dir_lock(train_run *r, const char *dir, int *code);

/* ---- train_lockstep.c: keeping the ranks in step (see there) ---- */

/* Votes on a failure and the stop signal: now, waiting; or for the step after, not waiting.
 * Return 1 when the run must stop on a failure (r->err says why). */
int vote_now(train_run *r);
int vote_later(train_run *r);
/* Settles the last vote still out; with keep_error, a lost rank becomes the run's error. */
void vote_settle(train_run *r, int keep_error);
/* The ranks lost touch: that is the run's error now. Returns 1. */
int vote_lost(train_run *r, const nb_error *e);
/* The stop signal in force: the process's own, or under mpirun the agreed one. */
int stop_signal(const train_run *r);
/* "nabla train --resume DIR", with "mpirun -np N " in front under mpirun. */
void continue_command(const train_run *r, char *buf, size_t size);
/* Where the run goes on from, as of now: its last checkpoint (NULL: none yet) after `steps`
 * steps. What a second stop signal says (stop_signals.h), and what a rank says if a stop finds
 * it waiting for a rank that is gone. */
void note_last_checkpoint(train_run *r, const char *checkpoint, int64_t steps);
/* What a second stop signal says once the run has saved checkpoints of its own: the last one
 * (nb_abandon_writes tells which step it holds). */
void note_checkpoints_to_come(train_run *r);
/* Under mpirun: the ranks go on together, all set up alike, or none does. Returns 0 to go on,
 * or -1 with *code set. */
int start_together(train_run *r, int failed, int *code);
/* A run resumed on another number of processes: rank 0 says what that means. */
void note_rank_change(const train_run *r);

#endif /* NABLA_CLI_TRAIN_RUN_H */
