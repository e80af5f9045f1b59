/* The run directory before anything is written into it: what it may be, what may be at the
 * names of the run's files, and its lock (see train_run.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dir_kind.h"
#include "fileio.h"
#include "train_run.h"

/* How long a trial waits for its directory's lock. A trial is restarted only once the tuner
 * that ran it before is gone; that tuner's trial processes die with it (PR_SET_PDEATHSIG) or
 * checkpoint and end on its SIGTERM: seconds at most. */
#define TRIAL_LOCK_WAIT_SECONDS 10.0

/* dir/name can be written by the output rule (writes), or removed as an earlier run's file. */
static int check_file(const char *dir, const char *name, int writes, nb_error *err)
{
    char *path = path_join(dir, name);
    if (!path)
        return nb_fail(err, "out of memory");
    int rc = writes ? nb_output_check(path, err) : run_file_removable(path, err);
    free(path);
    return rc;
}

int train_dir_check(train_run *r, const char *dir)
{
    const train_options *o = &r->opt;
    int resuming = o->resume != NULL;
    if (dir_check_for_run(dir, resuming ? "--resume" : "--out", resuming, &r->err) != 0)
        return -1;
    struct stat st;
    if (stat(dir, &st) != 0)
        return 0; /* new: nothing there yet */
    static const char *const written[] = {"config.json", "metrics.jsonl", "model.safetensors",
                                          "summary.json"};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++)
        if (check_file(dir, written[i], 1, &r->err) != 0)
            return -1;
    /* A resumed run keeps these files as they are when its options leave them off. */
    if ((o->trace || !resuming) && check_file(dir, TRACE_FILE, o->trace, &r->err) != 0)
        return -1;
    if ((o->eval_every > 0 || !resuming) &&
        check_file(dir, STEPS_FILE, o->eval_every > 0, &r->err) != 0)
        return -1;
    return nb_checkpoint_check_files(dir, &r->err);
}

int train_dir_lock(train_run *r, const char *dir, int *code)
{
    struct stat st;
    if (r->lock.fd >= 0 || (r->opt.resume && stat(dir, &st) != 0))
        return 0; /* held; or nothing to resume, which resume_open says */
    int trial = r->trial.fd >= 0;
    int got = dir_check_for_run(dir, r->opt.resume ? "--resume" : "--out", r->opt.resume != NULL,
                                &r->err) != 0
                  ? DIR_LOCK_FAILED
                  : dir_lock_take(&r->lock, dir, trial ? TRIAL_LOCK_WAIT_SECONDS : 0, &r->err);
    if (got == DIR_LOCK_TAKEN)
        return 0;
    cli_error("%s", r->err.msg);   /* noted too: a trial's last word gives it (trial_channel.h) */
    *code = got == DIR_LOCK_HELD && trial ? EXIT_TRIAL_LOCKED : EXIT_RUNTIME;
    return -1;
}
