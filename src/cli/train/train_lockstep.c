/* Keeping the ranks of `mpirun -np N nabla train` in step (train_run.h).
 *
 * Under mpirun every rank runs nb_train, and a decision that ends training must be taken by all
 * of them at the same step, or one would wait for ever in a sum the others never join. Two
 * decisions are made by one rank alone: a stop signal (mpirun passes Ctrl-C on to every rank as
 * SIGTERM, but each gets it at its own moment) and a failure of rank 0 to write a file. So the
 * ranks vote, the largest vote winning: after every batch without waiting (its outcome counts
 * a step later, which costs nothing per step), and around every checkpoint, waiting: before
 * it, since a stop signal decides whether rank 0 writes it, and after, on whether it could.
 * cfg.stop points at the stop signal as agreed, which only a vote changes. (nb_train agrees on
 * the callbacks' answers and on *cfg.stop as well; the votes here make those answers, and
 * rank 0's checkpoint, the same on every rank in the first place, and tell the other ranks
 * when a failure is rank 0's, so that they keep quiet about it.) */
#include <stdio.h>
#include <stdlib.h>

#include "cli/mpi/mpi_comm.h"
#include "cli/train/train_run.h"
#include "train/run_fingerprint.h"

/* VOTE_WRITTEN: rank 0 wrote a checkpoint just now (what the others name should it be lost). */
enum { VOTE_FAILED, VOTE_SIGNAL, VOTE_WRITTEN, N_VOTES };

static void my_votes(const train_run *r, int *v)
{
    v[VOTE_FAILED] = r->callback_failed || r->tuner_gone;
    v[VOTE_SIGNAL] = *stop_signal_flag();
    v[VOTE_WRITTEN] = r->wrote_checkpoint;
}

/* Takes the outcome of a vote; returns 1 when the run must stop on a failure. */
static int apply_votes(train_run *r, const int *v)
{
    r->checkpoint_written = v[VOTE_WRITTEN];
    if (v[VOTE_SIGNAL] && !r->agreed_stop)
        r->agreed_stop = v[VOTE_SIGNAL];
    if (v[VOTE_FAILED] && !r->callback_failed) {
        r->callback_failed = 1;
        r->peer_failed = 1;   /* rank 0 failed, and says why */
        nb_fail(&r->err, "another rank stopped the run");
    }
    return v[VOTE_FAILED] != 0;
}

/* The ranks lost touch: that is the run's error now. */
int vote_lost(train_run *r, const nb_error *e)
{
    if (!r->callback_failed || r->peer_failed) {
        r->err = *e;
        r->callback_failed = 1;
        r->peer_failed = 0;
    }
    return 1;
}

int vote_now(train_run *r)
{
    int pending[N_VOTES], v[N_VOTES];
    nb_error e;
    if (job_vote_settle(pending, N_VOTES, &e) != 0)
        return vote_lost(r, &e);
    my_votes(r, v);
    for (int i = 0; i < N_VOTES; i++)
        v[i] = pending[i] > v[i] ? pending[i] : v[i];
    if (job_vote(v, N_VOTES, &e) != 0)
        return vote_lost(r, &e);
    return apply_votes(r, v);
}

int vote_later(train_run *r)
{
    int mine[N_VOTES], agreed[N_VOTES];
    nb_error e;
    my_votes(r, mine);
    if (job_vote_later(mine, agreed, N_VOTES, &e) != 0)
        return vote_lost(r, &e);
    return apply_votes(r, agreed);
}

/* The stop signal in force: the process's own, or under mpirun the agreed one. */
int stop_signal(const train_run *r)
{
    return r->comm ? r->agreed_stop : *stop_signal_flag();
}

/* "nabla train --resume DIR", with "mpirun -np N " in front under mpirun. */
void continue_command(const train_run *r, char *buf, size_t size)
{
    char launcher[48] = "";
    if (r->comm)
        snprintf(launcher, sizeof launcher, "mpirun -np %d ", job_size());
    snprintf(buf, size, "%snabla train --resume %s", launcher, r->out_dir);
}

/* The line that names a checkpoint, around its step count: another rank knows of a checkpoint
 * once the ranks have voted after it, and rank 0 may have written a later one before it was
 * lost. */
static void checkpoint_line(const train_run *r, const char *checkpoint, char *before,
                            size_t before_size, char *after, size_t after_size)
{
    char command[CLI_MAX_PATH + 64];
    continue_command(r, command, sizeof command);
    snprintf(before, before_size, "nabla: the last checkpoint, %s (step ", checkpoint);
    snprintf(after, after_size, "%s), is intact; continue with: %s\n",
             r->writer ? "" : " or later", command);
}

#define LINE_MAX_BYTES (2 * CLI_MAX_PATH + 256)

void note_last_checkpoint(train_run *r, const char *checkpoint, int64_t steps)
{
    char text[3 * LINE_MAX_BYTES];
    if (checkpoint) {
        char before[LINE_MAX_BYTES], after[LINE_MAX_BYTES];
        checkpoint_line(r, checkpoint, before, sizeof before, after, sizeof after);
        snprintf(text, sizeof text, "%s%lld%s", before, (long long)steps, after);
    } else if (r->writer) {
        snprintf(text, sizeof text, "nabla: no checkpoint was written yet: start the run again\n");
    } else {
        char command[CLI_MAX_PATH + 64];
        continue_command(r, command, sizeof command);
        snprintf(text, sizeof text, "nabla: if rank 0 wrote a checkpoint before it was lost, "
                 "continue with: %s (which says so if there is none); else start the run "
                 "again\n", command);
    }
    /* A second stop signal says it after its own line (the writer's, which cleans up), until
     * the run has saved a checkpoint of its own, which it then names (stop_signals.h). */
    if (r->writer)
        stop_note_set(text);
    /* A rank that a stop finds waiting for a rank that is gone says it after its watcher's
     * line (job_watch_stops). */
    if (r->comm)
        job_watch_stops(stop_signal_flag(), text);
}

void note_checkpoints_to_come(train_run *r)
{
    if (!r->writer)
        return;
    char path[CLI_MAX_PATH + 32], before[LINE_MAX_BYTES], after[LINE_MAX_BYTES];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", r->out_dir);
    checkpoint_line(r, path, before, sizeof before, after, sizeof after);
    stop_note_checkpoint(before, after);
}

void vote_settle(train_run *r, int keep_error)
{
    int agreed[N_VOTES];
    nb_error e;
    if (job_vote_settle(agreed, N_VOTES, &e) != 0 && keep_error)
        vote_lost(r, &e);
}

/* What must be the same on every rank for their sums to make sense: what nb_train itself
 * checks (run_fingerprint.h: the training configuration, the sets' and the model's sizes) and
 * what only the program knows (the model's layers, input shape, task and loss, the input
 * normalization, the dev split, and the training data as read: --target, --missing, ... and
 * --test-fraction shape it). Not, say, --threads or --quiet; nor the weights, batch-norm
 * statistics and optimizer state: nb_train starts every rank from rank 0's. */
static uint32_t run_fingerprint(train_run *r)
{
    const train_options *o = &r->opt;
    const nb_dataset *d = &r->train;
    nb_train_config cfg;
    fill_train_config(r, &cfg);
    nb_run_fingerprint trained;
    nb_run_fingerprint_of(&r->model, &r->train, &r->dev, &r->test, &cfg, &trained);
    uint32_t c = nb_crc32c(0, trained.field, sizeof trained.field);
    char model[NB_LAYERS_TEXT_MAX], shape[48], text[NB_LAYERS_TEXT_MAX + 256];
    if (nb_layers_format(&r->model.spec.layers, model, sizeof model) < 0)
        model[0] = 0;
    nb_shape_format(r->model.spec.input, shape, sizeof shape);
    int n = snprintf(text, sizeof text,
                     "model %s input %s task %d loss %d normalize %d dev %.17g, %d classes",
                     model, shape, (int)r->model.spec.task, (int)r->model.spec.loss,
                     o->normalize, o->dev_fraction, d->classes);
    c = nb_crc32c(c, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
    size_t cells = (size_t)d->n * (size_t)d->features;
    c = d->pixels ? nb_crc32c(c, d->pixels, cells) : nb_crc32c(c, d->values, cells * sizeof(float));
    if (d->target)
        c = nb_crc32c(c, d->target, (size_t)d->n * (size_t)d->targets * sizeof *d->target);
    return d->labels ? nb_crc32c(c, d->labels, (size_t)d->n * sizeof *d->labels) : c;
}

/* Under mpirun: the ranks go on together, all set up alike, or none does. Every rank ran the
 * same setup; a failure is usually the same everywhere (bad arguments), and rank 0 alone says
 * it, but one rank's own (its copy of the data missing on its machine) is told by that rank.
 * Then rank 0's fingerprint of the run goes to all, and each checks it has the same. Returns
 * 0 to go on, or -1 with *code set. */
int start_together(train_run *r, int failed, int *code)
{
    if (!r->comm)
        return failed ? -1 : 0;
    int rank = job_rank(), size = job_size();
    nb_error e;
    /* Anyone failed; rank 0 failed; the first other rank that did (as size - rank, the
     * largest winning); rank 0's exit code. */
    int v[4] = {failed, failed && rank == 0, failed && rank > 0 ? size - rank : 0,
                rank == 0 && failed ? *code : 0};
    if (job_vote(v, 4, &e) != 0) {
        job_release_stderr(1);
        fprintf(stderr, "nabla: %s\n", e.msg);
        *code = EXIT_RUNTIME;
        return -1;
    }
    if (v[0]) {
        job_release_stderr(failed && !v[1]);
        if (!v[1] && rank == 0)
            fprintf(stderr, "nabla: rank %d could not set the run up (see its message); "
                            "nothing was written\n", size - v[2]);
        *code = v[1] ? v[3] : EXIT_RUNTIME;
        return -1;
    }
    uint32_t mine = run_fingerprint(r), rank0 = mine;
    int w[2] = {0, 0};
    if (job_broadcast(&rank0, sizeof rank0, &e) == 0) {
        w[0] = mine != rank0;
        w[1] = w[0] ? size - rank : 0;
        if (job_vote(w, 2, &e) != 0)
            w[0] = -1;
    } else {
        w[0] = -1;
    }
    job_release_stderr(0);
    if (w[0] < 0) {
        fprintf(stderr, "nabla: %s\n", e.msg);
        *code = EXIT_RUNTIME;
        return -1;
    }
    if (w[0]) {
        if (mine != rank0)
            fprintf(stderr, "nabla: rank %d: its configuration or training data differ from "
                            "rank 0's (not the same files on every machine?)\n", rank);
        if (rank == 0)
            fprintf(stderr, "nabla: rank %d does not have rank 0's configuration or training "
                            "data; nothing was written\n", size - w[1]);
        *code = EXIT_RUNTIME;
        return -1;
    }
    return 0;
}

/* A run resumed on another number of processes: fine, but not bit for bit (rank 0 says so). */
void note_rank_change(const train_run *r)
{
    if (!r->opt.resume || !r->writer)
        return;
    const char *text = nb_st_meta_get(&r->resume.file, META_RANKS);
    int was = text ? atoi(text) : 1;
    if (was == job_size())
        return;
    if (train_options_batchnorm(&r->opt) && !r->opt.sync_batchnorm)
        fprintf(stderr, "nabla: note: the run had %d process%s and goes on with %d; batch norm "
                        "takes its statistics per process (no --sync-batchnorm), so from here "
                        "on it trains differently than it would have\n",
                was, was == 1 ? "" : "es", job_size());
    else
        fprintf(stderr, "nabla: note: the run had %d process%s and goes on with %d; the global "
                        "mini-batches are the same, so it ends with the uninterrupted run's "
                        "weights up to rounding, not bit for bit\n",
                was, was == 1 ? "" : "es", job_size());
}
