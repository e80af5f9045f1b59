/* The run directory before anything is written into it: what it may be, what may be at the
 * names of the run's files, and its lock (see train_run.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli/common/dir_kind.h"
#include "cli/train/train_run.h"
#include "io/fileio.h"
#include "io/paths.h"

/* How long a trial waits for its directory's lock. A trial is restarted only once the tuner
 * that ran it before is gone; that tuner's trial processes die with it (PR_SET_PDEATHSIG) or
 * checkpoint and end on its SIGTERM: seconds at most. */
#define TRIAL_LOCK_WAIT_SECONDS 10.0

/* What the run does with one of its files: writes it by the output rule, and if it grows line
 * by line, alone (not another run's through a link); removes an earlier run's (a device or
 * FIFO there left as it is with THROUGH_OK: written through at the end). */
enum { WRITES = 1, LINES = 2, REMOVES = 4, THROUGH_OK = 8 };

/* Whether dir/name may be handled as `how` says. */
static int check_file(const char *dir, const char *name, int how, nb_error *err)
{
    char *path = path_join(dir, name);
    if (!path)
        return nb_fail(err, "out of memory");
    int rc = ((how & WRITES) && nb_output_check(path, err) != 0) ||
                     ((how & LINES) && line_file_free(path, err) != 0) ||
                     ((how & REMOVES) && run_file_removable(path, how & THROUGH_OK, err) != 0)
                 ? -1
                 : 0;
    free(path);
    return rc;
}

/* A study's trials/ and what is under it are the tuner's: only the trial it starts writes a run
 * there (a run from outside would be resumed by the tuner as the trial's own, or make the
 * study's trials/ hold what is no trial), and only the tuner continues one. */
static int check_not_a_trial(const train_run *r, const char *dir, nb_error *err)
{
    char study[CLI_MAX_PATH];
    int depth;
    const char *opt = r->opt.resume ? "--resume" : "--out";
    if (r->trial.fd >= 0 || !dir_in_trials(dir, study, sizeof study, &depth))
        return 0;
    if (depth == 1)
        return nb_fail(err, "%s %s: is a trial's directory of the study %s, which nabla tune "
                            "runs; %s (to continue the study, run its nabla tune command "
                            "again)",
                       opt, dir, study,
                       r->opt.resume ? "nabla train does not continue it" : "give another "
                                                                             "directory");
    return nb_fail(err, "%s %s: is %sthe study %s's trials/, which nabla tune runs; give "
                        "another directory (to continue the study, run its nabla tune command "
                        "again)",
                   opt, dir, depth == 0 ? "" : "inside ", study);
}

int train_dir_check(train_run *r, const char *dir)
{
    const train_options *o = &r->opt;
    int resuming = o->resume != NULL;
    if (check_not_a_trial(r, dir, &r->err) != 0 ||
        dir_check_for_run(dir, resuming ? "--resume" : "--out", resuming, &r->err) != 0)
        return -1;
    struct stat st;
    if (stat(dir, &st) != 0)
        return 0; /* new: nothing there yet */
    static const char *const results[] = RUN_RESULT_FILES;
    if (check_file(dir, "config.json", WRITES, &r->err) != 0 ||
        check_file(dir, "metrics.jsonl", WRITES | LINES, &r->err) != 0)
        return -1;
    /* Written at the end, and removed at the start (a device or FIFO left for the end). */
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
        if (check_file(dir, results[i], WRITES | REMOVES | THROUGH_OK, &r->err) != 0)
            return -1;
    /* A resumed run keeps these files as they are when its options leave them off; a new run
     * removes an earlier run's. */
    if ((o->trace || !resuming) &&
        check_file(dir, TRACE_FILE, o->trace ? WRITES | LINES : REMOVES, &r->err) != 0)
        return -1;
    if ((o->eval_every > 0 || !resuming) &&
        check_file(dir, STEPS_FILE, o->eval_every > 0 ? WRITES | LINES : REMOVES, &r->err) != 0)
        return -1;
    return nb_checkpoint_check_files(dir, &r->err);
}

/* Whether dir may be locked for the run: a run's (or new), not a study nor the tuner's. */
static int check_kind(train_run *r, const char *dir)
{
    return check_not_a_trial(r, dir, &r->err) != 0
               ? -1
               : dir_check_for_run(dir, r->opt.resume ? "--resume" : "--out",
                                   r->opt.resume != NULL, &r->err);
}

int train_dir_lock(train_run *r, const char *dir, int *code)
{
    struct stat st;
    if (r->lock.fd >= 0 || (r->opt.resume && stat(dir, &st) != 0))
        return 0; /* held; or nothing to resume, which resume_open says */
    int trial = r->trial.fd >= 0;
    /* The directory's kind is checked before the lock is created in it (a --resume of a
     * directory that is no run leaves no .lock there), and again once it is held: another
     * process may have made it a study (or a run) meanwhile, and only the holder is sure it
     * is alone. */
    int got = check_kind(r, dir) != 0
                  ? DIR_LOCK_FAILED
                  : dir_lock_take(&r->lock, dir, trial ? TRIAL_LOCK_WAIT_SECONDS : 0, &r->err);
    if (got == DIR_LOCK_TAKEN && check_kind(r, dir) != 0) {
        dir_lock_release(&r->lock);
        got = DIR_LOCK_FAILED;
    }
    if (got == DIR_LOCK_TAKEN)
        return 0;
    cli_error("%s", r->err.msg);   /* noted too: a trial's last word gives it (trial_channel.h) */
    *code = got == DIR_LOCK_HELD && trial ? EXIT_TRIAL_LOCKED : EXIT_RUNTIME;
    return -1;
}
