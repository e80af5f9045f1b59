/* nabla train: parse and check every option, load the data, build the model, and only then
 * create the run directory, train, and write the results.
 *
 * The order matters: any bad input (usage error, missing or malformed file, shape mismatch)
 * stops the program before a file or directory is created.
 *
 * Under mpirun (mpi_comm.h) every rank runs all of this with the same arguments and trains on
 * its shard of each mini-batch; only rank 0 writes files and prints. The ranks start together
 * (all set up, with the same configuration and data, or none goes on) and vote on every
 * decision one of them makes alone (see "keeping the ranks in step"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_comm.h"
#include "options.h"
#include "progress.h"
#include "resume.h"
#include "run_files.h"
#include "trial_channel.h"
#include "train_options.h"
#include "train_trace.h"

static const char *const CMD = "train";

/* Option combinations that depend on what kind of data --data names. */
static int check_data_options(const train_options *o, data_kind kind, int *exit_code)
{
    if (o->src.test && kind != DATA_CSV) {
        *exit_code = cli_usage_error(CMD, "--test needs a CSV training set, but --data %s is %s",
                                     o->src.data, kind == DATA_IDX ? "an IDX data set"
                                                                   : "a synthetic set");
        return -1;
    }
    if (o->normalize && kind == DATA_IDX) {
        *exit_code = cli_usage_error(CMD, "--normalize standard works on CSV and synthetic "
                                          "data, not on the pixels of %s", o->src.data);
        return -1;
    }
    return 0;
}

/* Everything a run holds; released in one place. */
typedef struct train_run {
    train_options opt;
    data_kind kind;
    const char *data_path;
    nb_dataset train, dev, test;
    nb_model model;
    char out_dir[CLI_MAX_PATH];
    char *metrics_path;
    metrics_log log;             /* metrics.jsonl's lines, for checkpoints */
    char *argv_json;             /* the arguments checkpoints store */
    char cwd[CLI_MAX_PATH];      /* ... and the directory they are relative to */
    resume_point resume;         /* --resume: the checkpoint */
    nb_train_state state;        /* --resume: the state it holds */
    int have_state;
    progress prog;
    nb_error err;
    int callback_failed;
    trial_channel trial;         /* a trial of `nabla tune`: reports each epoch */
    int tuner_gone;
    double last_checkpoint;      /* monotonic_seconds() when the last one was written */
    double checkpoint_cost;      /* seconds it took (0 before the first) */
    double last_train_accuracy;  /* of the last epoch, for the summary */
    double last_train_loss;
    train_trace trace;           /* --trace-activations and --eval-every */
    /* Under mpirun with several ranks (else comm is NULL and writer 1). */
    const nb_comm *comm;
    int writer;                  /* rank 0: writes the files, prints */
    volatile sig_atomic_t agreed_stop; /* the stop signal as the ranks agreed on it (cfg.stop) */
    int peer_failed;             /* another rank's failure stopped the run: nothing to say */
    char ranks_text[16];         /* the job's size, for the checkpoints' metadata */
} train_run;

static void run_free(train_run *r)
{
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->dev);
    nb_dataset_free(&r->test);
    nb_model_free(&r->model);   /* safe on the zeroed model of a run that stopped early */
    free(r->metrics_path);
    metrics_log_free(&r->log);
    free(r->argv_json);
    if (r->have_state)
        nb_train_state_free(&r->state);
    resume_close(&r->resume);
    trial_channel_close(&r->trial);
    train_trace_free(&r->trace);
}

static int runtime_error(const nb_error *err)
{
    fprintf(stderr, "nabla: %s\n", err->msg);
    return EXIT_RUNTIME;
}

static void optim_config_of(const train_options *o, nb_optim_config *c)
{
    memset(c, 0, sizeof *c);
    c->kind = o->optimizer;
    c->beta = (float)o->beta;
    c->beta2 = (float)o->beta2;
    c->eps = (float)o->eps;
    c->weight_decay = (float)o->weight_decay;
    c->bias_correction = o->bias_correction;
}

/* Loads the data, splits off dev, standardizes, builds the model, and loads --init-weights or,
 * for --resume, the checkpoint's weights and state. */
static int prepare(train_run *r)
{
    train_options *o = &r->opt;
    if (data_load_train(&o->src, &r->train, &r->test, &r->err) != 0)
        return -1;
    if (r->test.n > 0 &&
        data_check_for_model(&r->test, "test set", r->train.features, r->train.classes,
                             &r->err) != 0)
        return -1;
    if (o->dev_fraction > 0 &&
        nb_dataset_split(&r->train, (float)o->dev_fraction, o->src.seed, &r->dev, &r->err) != 0)
        return -1;

    float *mean = NULL, *std = NULL;
    if (o->normalize) {
        if (!r->train.values)
            return nb_fail(&r->err, "--normalize standard needs float data");
        mean = malloc(sizeof(float) * (size_t)r->train.features);
        std = malloc(sizeof(float) * (size_t)r->train.features);
        if (!mean || !std) {
            free(mean);
            free(std);
            return nb_fail(&r->err, "out of memory");
        }
        nb_dataset_stats(&r->train, mean, std);
        nb_dataset_normalize(&r->train, mean, std);
        if (r->dev.n > 0)
            nb_dataset_normalize(&r->dev, mean, std);
        if (r->test.n > 0)
            nb_dataset_normalize(&r->test, mean, std);
    }

    nb_model_spec spec = o->spec;
    spec.inputs = r->train.features;
    spec.classes = r->train.classes;
    /* A mini-batch larger than the set is the whole set; no need for a bigger graph. */
    int max_batch = o->batch_size > 0 && o->batch_size < r->train.n ? o->batch_size
                                                                    : r->train.n;
    if (nb_model_build(&r->model, &spec, max_batch, o->src.seed, &r->err) != 0) {
        free(mean);
        free(std);
        return -1;
    }
    r->model.norm_mean = mean;   /* owned by the model from here on, and saved with it */
    r->model.norm_std = std;

    if (o->init_weights && nb_model_load_weights(&r->model, o->init_weights, &r->err) != 0)
        return -1;
    if (o->resume) {
        size_t n_params;
        nb_graph_params(r->model.graph, &n_params);
        nb_optim_config optim;
        optim_config_of(o, &optim);
        if (nb_train_state_init(&r->state, &optim, n_params, r->train.n, &r->err) != 0)
            return -1;
        r->have_state = 1;
        if (nb_checkpoint_restore(&r->resume.file, &r->model, &r->state, &r->err) != 0) {
            char why[sizeof r->err.msg];
            snprintf(why, sizeof why, "%s", r->err.msg);
            return nb_fail(&r->err, "%s: %s (was the data changed since the run started?)",
                           r->resume.used, why);
        }
    }
    return 0;
}

/* What --trace-activations and --eval-every need from the data: the default --trace-every
 * comes from the batches in an epoch, and an evaluation needs a set to evaluate. */
static int check_watch_options(train_run *r, int *exit_code)
{
    train_options *o = &r->opt;
    if (o->trace && o->trace_every == 0)
        o->trace_every = trace_default_every(r->train.n, o->batch_size);
    if (o->eval_every > 0 && r->dev.n == 0 && r->test.n == 0) {
        *exit_code = cli_usage_error(CMD, "--eval-every needs a dev set (--dev-fraction) or a "
                                          "test set, and this run has neither");
        return -1;
    }
    return 0;
}

/* Fails early (before training, before the run directory exists) when --save-weights could
 * not be written at the end: its directory is missing or not writable, or the path itself is
 * a directory (the final rename onto it would fail). */
static int check_save_path(const char *path, nb_error *err)
{
    struct stat st;
    if (!*path)
        return nb_fail(err, "--save-weights needs a file name");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return nb_fail(err, "--save-weights %s: is a directory", path);
    char *dir = strdup(path);
    if (!dir)
        return nb_fail(err, "out of memory");
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    const char *d = slash ? dir : ".";
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = nb_fail(err, "--save-weights %s: directory %s does not exist", path, d);
    else if (access(d, W_OK | X_OK) != 0)
        rc = nb_fail(err, "--save-weights %s: cannot write to directory %s: %s", path, d,
                     strerror(errno));
    free(dir);
    return rc;
}

static cJSON *json_seed(uint64_t seed)
{
    /* JSON numbers are doubles here: seeds beyond 2^53 go in as strings to stay exact. */
    if (seed <= (1ULL << 53))
        return cJSON_CreateNumber((double)seed);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    return cJSON_CreateString(buf);
}

static cJSON *json_string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static int write_config(train_run *r)
{
    const train_options *o = &r->opt;
    const nb_model_spec *s = &r->model.spec;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(&r->err, "out of memory");
    cJSON_AddStringToObject(j, "command", "train");
    cJSON_AddStringToObject(j, "version", NABLA_VERSION);
    cJSON_AddStringToObject(j, "data", o->src.data);
    cJSON_AddStringToObject(j, "data_path", r->data_path);
    cJSON_AddStringToObject(j, "data_kind", data_kind_name(r->kind));
    cJSON_AddItemToObject(j, "test", json_string_or_null(o->src.test));
    cJSON_AddNumberToObject(j, "features", s->inputs);
    cJSON_AddNumberToObject(j, "classes", s->classes);
    cJSON_AddNumberToObject(j, "train_samples", r->train.n);
    cJSON_AddNumberToObject(j, "dev_samples", r->dev.n);
    cJSON_AddNumberToObject(j, "test_samples", r->test.n);
    if (r->kind == DATA_SYNTHETIC) {
        cJSON_AddNumberToObject(j, "samples", o->src.samples);
        cJSON_AddNumberToObject(j, "noise", o->src.noise);
    } else {
        cJSON_AddNullToObject(j, "samples");
        cJSON_AddNullToObject(j, "noise");
    }
    cJSON_AddNumberToObject(j, "dev_fraction", o->dev_fraction);
    cJSON_AddStringToObject(j, "normalize", o->normalize ? "standard" : "none");

    cJSON_AddItemToObject(j, "layers", cJSON_CreateIntArray(s->hidden, s->n_hidden));
    cJSON_AddStringToObject(j, "activation", nb_activation_name(s->activation));
    cJSON_AddNumberToObject(j, "leaky_slope", o->leaky_slope);
    cJSON_AddBoolToObject(j, "batchnorm", s->batchnorm);
    cJSON_AddBoolToObject(j, "sync_batchnorm", o->sync_batchnorm);
    size_t n_params = 0;
    nb_graph_params(r->model.graph, &n_params);
    cJSON_AddNumberToObject(j, "parameters", (double)n_params);
    cJSON_AddItemToObject(j, "init_weights", json_string_or_null(o->init_weights));

    cJSON_AddStringToObject(j, "optimizer", nb_optimizer_name(o->optimizer));
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "beta", o->beta);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddBoolToObject(j, "bias_correction", o->bias_correction);
    if (o->batch_size > 0)
        cJSON_AddNumberToObject(j, "batch_size", o->batch_size);
    else
        cJSON_AddStringToObject(j, "batch_size", "full");
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    if (o->max_steps > 0)
        cJSON_AddNumberToObject(j, "max_steps", (double)o->max_steps);
    else
        cJSON_AddNullToObject(j, "max_steps");
    cJSON_AddBoolToObject(j, "shuffle", o->shuffle);
    cJSON_AddStringToObject(j, "lr_decay", nb_decay_name(o->decay));
    cJSON_AddNumberToObject(j, "decay_rate", o->decay_rate);
    cJSON_AddNumberToObject(j, "decay_interval", o->decay_interval);
    cJSON_AddNumberToObject(j, "warmup_epochs", o->warmup_epochs);

    cJSON_AddItemToObject(j, "seed", json_seed(o->src.seed));
    cJSON_AddNumberToObject(j, "threads", o->threads);
    cJSON_AddNumberToObject(j, "ranks", job_size());
    cJSON_AddStringToObject(j, "blas_kernel", nb_blas_kernel());
    cJSON_AddStringToObject(j, "out", r->out_dir);
    if (o->checkpoint_every > 0)
        cJSON_AddNumberToObject(j, "checkpoint_every", (double)o->checkpoint_every);
    else
        cJSON_AddStringToObject(j, "checkpoint_every", "epoch");
    cJSON_AddItemToObject(j, "resumed_from", json_string_or_null(o->resume ? r->resume.used
                                                                            : NULL));
    cJSON_AddItemToObject(j, "save_weights", json_string_or_null(o->save_weights));
    cJSON_AddBoolToObject(j, "trace_activations", o->trace);
    if (o->trace) {
        cJSON_AddNumberToObject(j, "trace_layer", o->trace_layer);
        cJSON_AddNumberToObject(j, "trace_unit", o->trace_unit);
        cJSON_AddNumberToObject(j, "trace_every", (double)o->trace_every);
    } else {
        cJSON_AddNullToObject(j, "trace_layer");
        cJSON_AddNullToObject(j, "trace_unit");
        cJSON_AddNullToObject(j, "trace_every");
    }
    if (o->eval_every > 0)
        cJSON_AddNumberToObject(j, "eval_every", (double)o->eval_every);
    else
        cJSON_AddNullToObject(j, "eval_every");

    int rc = write_json_file(r->out_dir, "config.json", j, &r->err);
    cJSON_Delete(j);
    return rc;
}

static int write_summary(train_run *r, const nb_train_result *res, const nb_eval_result *dev,
                         const nb_eval_result *test, double last_train_accuracy)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(&r->err, "out of memory");
    json_add_split(j, "test", test);
    cJSON_AddNumberToObject(j, "test_samples", test->n);
    json_add_split(j, "dev", dev);
    cJSON_AddNumberToObject(j, "dev_samples", dev->n);
    /* No finished epoch (a NaN in the very first batch): no training metrics to report. */
    cJSON_AddItemToObject(j, "train_loss", res->epochs > 0
                                               ? cJSON_CreateNumber(r->last_train_loss)
                                               : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "train_accuracy", res->epochs > 0
                                                   ? cJSON_CreateNumber(last_train_accuracy)
                                                   : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "epochs", res->epochs);
    cJSON_AddNumberToObject(j, "steps", (double)res->steps);
    cJSON_AddNumberToObject(j, "samples", (double)res->samples);
    cJSON_AddNumberToObject(j, "train_seconds", res->train_seconds);
    cJSON_AddItemToObject(j, "samples_per_second",
                          res->train_seconds > 0
                              ? cJSON_CreateNumber((double)res->samples / res->train_seconds)
                              : cJSON_CreateNull());
    /* Under mpirun: the processes, and the time rank 0 spent in the sums over them
     * (gradients, statistics), waiting for the slowest rank included. */
    cJSON_AddNumberToObject(j, "ranks", job_size());
    cJSON_AddNumberToObject(j, "allreduce_seconds", job_sum_seconds());
    cJSON_AddNumberToObject(j, "allreduce_calls", (double)job_sum_calls());
    cJSON_AddBoolToObject(j, "diverged", res->diverged);
    if (res->diverged) {
        cJSON_AddNumberToObject(j, "diverged_epoch", res->diverged_epoch + 1);
        cJSON_AddNumberToObject(j, "diverged_step", (double)res->diverged_step + 1);
    } else {
        cJSON_AddNullToObject(j, "diverged_epoch");
        cJSON_AddNullToObject(j, "diverged_step");
    }
    cJSON_AddStringToObject(j, "model", "model.safetensors");
    int rc = write_json_file(r->out_dir, "summary.json", j, &r->err);
    cJSON_Delete(j);
    return rc;
}

/* ---- keeping the ranks in step ----
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
enum { VOTE_FAILED, VOTE_SIGNAL, N_VOTES };

static void my_votes(const train_run *r, int *v)
{
    v[VOTE_FAILED] = r->callback_failed || r->tuner_gone;
    v[VOTE_SIGNAL] = *stop_signal_flag();
}

/* Takes the outcome of a vote; returns 1 when the run must stop on a failure. */
static int apply_votes(train_run *r, const int *v)
{
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
static int vote_lost(train_run *r, const nb_error *e)
{
    if (!r->callback_failed || r->peer_failed) {
        r->err = *e;
        r->callback_failed = 1;
        r->peer_failed = 0;
    }
    return 1;
}

static int vote_now(train_run *r)
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

static int vote_later(train_run *r)
{
    int mine[N_VOTES], agreed[N_VOTES];
    nb_error e;
    my_votes(r, mine);
    if (job_vote_later(mine, agreed, N_VOTES, &e) != 0)
        return vote_lost(r, &e);
    return apply_votes(r, agreed);
}

/* The stop signal in force: the process's own, or under mpirun the agreed one. */
static int stop_signal(const train_run *r)
{
    return r->comm ? r->agreed_stop : *stop_signal_flag();
}

/* "nabla train --resume DIR", with "mpirun -np N " in front under mpirun. */
static void continue_command(const train_run *r, char *buf, size_t size)
{
    char launcher[48] = "";
    if (r->comm)
        snprintf(launcher, sizeof launcher, "mpirun -np %d ", job_size());
    snprintf(buf, size, "%snabla train --resume %s", launcher, r->out_dir);
}

/* What rank 0 says if a stop finds it waiting for a rank that is gone (job_watch_stops): where
 * the last checkpoint is, as of now. */
static void watch_for_lost_ranks(train_run *r, const char *checkpoint, int64_t steps)
{
    if (!r->comm || !r->writer)
        return;
    char command[CLI_MAX_PATH + 64], text[3 * CLI_MAX_PATH];
    continue_command(r, command, sizeof command);
    int n = snprintf(text, sizeof text, "nabla: asked to stop while rank 0 waits for the other "
                                        "ranks, which no longer answer: one of them is gone "
                                        "(mpirun's message says which)\n");
    if (n > 0 && (size_t)n < sizeof text) {
        if (checkpoint)
            snprintf(text + n, sizeof text - (size_t)n, "nabla: the last checkpoint, %s (step "
                     "%lld), is intact; continue with: %s\n", checkpoint, (long long)steps,
                     command);
        else
            snprintf(text + n, sizeof text - (size_t)n,
                     "nabla: no checkpoint was written yet: start the run again\n");
    }
    job_watch_stops(stop_signal_flag(), text);
}

/* ---- callbacks from nb_train ----
 * In a single process a failure stops training at once; under mpirun it is voted on first. */

static int on_batch(const nb_progress *p, void *user)
{
    train_run *r = user;
    if (r->writer) {
        progress_batch(&r->prog, p);
        if (!(r->comm && r->callback_failed) &&
            train_trace_step(&r->trace, &r->model, p, r->dev.n > 0 ? &r->dev : NULL,
                             r->test.n > 0 ? &r->test : NULL, &r->err) != 0) {
            r->callback_failed = 1;
            if (!r->comm)
                return 1;   /* stop, as when metrics.jsonl cannot be written */
        }
    }
    return r->comm ? vote_later(r) : 0;
}

static int on_epoch(const nb_epoch_metrics *m, void *user)
{
    train_run *r = user;
    r->last_train_accuracy = m->train_accuracy;
    r->last_train_loss = m->train_loss;
    if (r->writer) {
        progress_epoch(&r->prog, m);
        if (!(r->comm && r->callback_failed) &&
            metrics_append(r->metrics_path, m, &r->log, &r->err) != 0) {
            r->callback_failed = 1;
            if (!r->comm)
                return 1;   /* stop: a run whose log cannot be written is not worth continuing */
        }
    }
    /* Under mpirun the failure goes to the vote of the checkpoint that follows. */
    return 0;
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Epoch ends can come faster than checkpoints can be written (the course's moons run has 5000
 * epochs of 5 steps, a fraction of a millisecond each, and a checkpoint costs fsyncs and grows
 * with metrics.jsonl). So at an epoch's end a checkpoint is written only when the training
 * since the last one took at least CHECKPOINT_SHARE times as long as writing that one did:
 * checkpoints then take at most about 1/CHECKPOINT_SHARE of the run, and any epoch longer than
 * that gets its checkpoint. Always written: the first, the last (end of the run, --max-steps,
 * a signal) and those asked for with --checkpoint-every. */
#define CHECKPOINT_SHARE 10.0

static int checkpoint_due(const train_run *r, const nb_train_state *s)
{
    int epoch_end = s->batch == 0;
    int last = s->epoch >= r->opt.epochs || (r->opt.max_steps > 0 && s->steps >= r->opt.max_steps);
    return !epoch_end || last || stop_signal(r) ||
           monotonic_seconds() - r->last_checkpoint >= CHECKPOINT_SHARE * r->checkpoint_cost;
}

/* Rank 0's part of a checkpoint: the files, and the report to the tuner. Returns 0, or 1 with
 * err filled. */
static int write_checkpoint(train_run *r, const nb_train_state *s, nb_error *err)
{
    const nb_st_meta meta[] = {
        {META_ARGV, r->argv_json},
        {META_CWD, r->cwd},
        {META_METRICS, r->log.text ? r->log.text : ""},
        {META_RANKS, r->ranks_text},
    };
    /* The metrics, trace and evaluation lines up to this step reach the disk before the
     * checkpoint that a resumed run would keep them for. */
    if (checkpoint_due(r, s)) {
        double start = monotonic_seconds();
        if (metrics_sync(r->metrics_path, err) != 0 || train_trace_sync(&r->trace, err) != 0 ||
            nb_checkpoint_save(r->out_dir, &r->model, s, meta, 4, err) != 0)
            return 1;
        r->last_checkpoint = monotonic_seconds();
        r->checkpoint_cost = r->last_checkpoint - start;
        char *path = path_join(r->out_dir, "checkpoint.safetensors");
        if (path)
            watch_for_lost_ranks(r, path, s->steps);
        free(path);
    }
    /* At an epoch's end a trial tells the tuner (and stops if the tuner is gone). */
    if (s->batch == 0 && trial_channel_report(&r->trial, r->log.text, r->log.len,
                                              r->opt.epochs) != 0) {
        r->tuner_gone = 1;
        nb_fail(err, "the tuner is gone");
        return 1;
    }
    return 0;
}

static int on_checkpoint(const nb_train_state *s, void *user, nb_error *err)
{
    train_run *r = user;
    if (!r->comm)
        return write_checkpoint(r, s, err);
    /* First the ranks agree on a stop signal, which decides whether this checkpoint is written
     * and whether the run ends after it; then on whether rank 0 managed to write it. nb_train's
     * err is r->err, where the votes put their messages. */
    if (vote_now(r))
        return 1;
    if (r->writer && !r->callback_failed && write_checkpoint(r, s, err) != 0)
        r->callback_failed = 1;
    return vote_now(r);
}

static void fill_train_config(train_run *r, nb_train_config *c)
{
    const train_options *o = &r->opt;
    memset(c, 0, sizeof *c);
    optim_config_of(o, &c->optim);
    c->schedule.kind = o->decay;
    c->schedule.lr = (float)o->lr;
    c->schedule.rate = (float)o->decay_rate;
    c->schedule.interval = o->decay_interval;
    c->schedule.warmup_epochs = o->warmup_epochs;
    c->schedule.epochs = o->epochs;
    /* 0 stays 0 (the whole set); a mini-batch larger than the set is the whole set too. */
    c->batch_size = o->batch_size < r->train.n ? o->batch_size : r->train.n;
    c->epochs = o->epochs;
    c->max_steps = o->max_steps;
    c->shuffle = o->shuffle;
    c->seed = o->src.seed;
    c->on_batch = on_batch;
    c->on_epoch = on_epoch;
    c->on_checkpoint = on_checkpoint;
    c->checkpoint_every = o->checkpoint_every;
    c->resume = r->have_state ? &r->state : NULL;
    c->stop = r->comm ? &r->agreed_stop : stop_signal_flag();
    c->comm = r->comm;
    c->sync_batchnorm = o->sync_batchnorm;
}

static void print_result(const train_run *r, const nb_eval_result *dev,
                         const nb_eval_result *test, const nb_train_result *res)
{
    if (test->n > 0)
        printf("test accuracy %.4f (loss %.4f)\n", test->accuracy, test->loss);
    else if (dev->n > 0)
        printf("dev accuracy %.4f (loss %.4f), no test set\n", dev->accuracy, dev->loss);
    else
        printf("train accuracy %.4f (loss %.4f), no test set\n", r->last_train_accuracy,
               r->last_train_loss);
    if (!r->opt.quiet) {
        printf("wrote %s/ (config.json, metrics.jsonl, %s%smodel.safetensors, summary.json, "
               "checkpoint.safetensors)\n",
               r->out_dir, r->opt.trace ? TRACE_FILE ", " : "",
               r->opt.eval_every > 0 ? STEPS_FILE ", " : "");
        if (r->opt.save_weights)
            printf("wrote %s\n", r->opt.save_weights);
    }
    fflush(stdout);
}

/* A new run in a directory starts with an empty metrics.jsonl and without the checkpoints of
 * whatever ran there before, which would otherwise be taken for this run's older ones. */
static int start_fresh(train_run *r)
{
    if (nb_checkpoint_remove(r->out_dir, &r->err) != 0)
        return -1;
    return metrics_start(r->metrics_path, &r->err);
}

/* A resumed run's metrics.jsonl is what it was at the checkpoint: the epochs finished after
 * it (if a crash came between the two) will be trained and written again. */
static int resume_metrics(train_run *r)
{
    if (metrics_restore(r->metrics_path, r->resume.metrics, &r->log, &r->err) != 0)
        return -1;
    /* The summary's training figures are the last epoch's, even if no epoch is left to run. */
    const char *last = r->log.len ? r->log.text + r->log.len - 1 : NULL;
    while (last && last > r->log.text && last[-1] != '\n')
        last--;
    cJSON *j = last ? cJSON_Parse(last) : NULL;
    cJSON *acc = cJSON_GetObjectItem(j, "train_accuracy"), *loss = cJSON_GetObjectItem(j, "train_loss");
    if (cJSON_IsNumber(acc) && cJSON_IsNumber(loss)) {
        r->last_train_accuracy = acc->valuedouble;
        r->last_train_loss = loss->valuedouble;
    }
    cJSON_Delete(j);
    return 0;
}

/* How a run that failed in training ends: the message (under mpirun each rank says its own;
 * a rank that only followed rank 0's failure says nothing), and after lost ranks, where to go
 * on from. */
static int training_failed(train_run *r)
{
    if (!r->comm)
        return runtime_error(&r->err);
    if (r->peer_failed)
        return EXIT_RUNTIME;   /* rank 0 failed and says why */
    if (!r->writer) {
        fprintf(stderr, "nabla: rank %d: %s\n", job_rank(), r->err.msg);
        return EXIT_RUNTIME;
    }
    runtime_error(&r->err);
    if (job_lost()) {
        char command[CLI_MAX_PATH + 64];
        continue_command(r, command, sizeof command);
        fprintf(stderr, "nabla: the last checkpoint in %s is intact; continue with: %s\n",
                r->out_dir, command);
    }
    return EXIT_RUNTIME;
}

/* Trains, evaluates the final weights and writes the results (rank 0). */
static int train_and_report(train_run *r)
{
    nb_train_config cfg;
    nb_train_result res;
    memset(&res, 0, sizeof res);
    fill_train_config(r, &cfg);
    cfg.user = r;

    progress_init(&r->prog, stdout, r->opt.quiet || !r->writer, r->opt.epochs);
    /* Open MPI gives the ranks a pseudo-terminal for stdout even when mpirun's own goes to a
     * file (a batch job's log): a line per epoch there, no bar redrawn ten times a second. */
    if (r->comm)
        r->prog.live = 0;
    stop_signals_install();
    r->last_checkpoint = monotonic_seconds();
    int rc = nb_train(&r->model, &r->train, r->dev.n > 0 ? &r->dev : NULL,
                      r->test.n > 0 ? &r->test : NULL, &cfg, &res, &r->err);
    if (r->comm) {
        /* The last batch's vote is still out, on every rank alike. */
        int agreed[N_VOTES];
        nb_error e;
        if (job_vote_settle(agreed, N_VOTES, &e) != 0 && rc == 0)
            vote_lost(r, &e);
    }
    progress_clear(&r->prog);
    if (train_trace_close(&r->trace, rc == 0 && !r->callback_failed ? &r->err
                                                                    : &(nb_error){{0}}) != 0)
        rc = -1;
    if (r->tuner_gone)
        return EXIT_RUNTIME; /* the tuner's next run continues from the checkpoint */
    if (rc != 0 || r->callback_failed)
        return training_failed(r);
    if (res.interrupted) {
        int sig = stop_signal(r);
        char command[CLI_MAX_PATH + 64];
        continue_command(r, command, sizeof command);
        if (r->writer)
            fprintf(stderr, "nabla: stopped by %s after %lld steps; checkpoint written to "
                            "%s/checkpoint.safetensors\nnabla: continue with: %s\n",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)res.steps, r->out_dir,
                    command);
        return 128 + (sig == SIGTERM ? SIGTERM : SIGINT);
    }
    if (!r->writer)
        return res.diverged ? EXIT_RUNTIME : EXIT_OK;

    /* The summary describes the weights that are saved, so evaluate those once more (after a
     * NaN stop they are the last good weights, not the ones of the last finished epoch). */
    nb_eval_result dev = {0}, test = {0};
    if (r->dev.n > 0 && nb_evaluate(&r->model, &r->dev, &dev, &r->err) != 0)
        return runtime_error(&r->err);
    if (r->test.n > 0 && nb_evaluate(&r->model, &r->test, &test, &r->err) != 0)
        return runtime_error(&r->err);

    char *model_path = path_join(r->out_dir, "model.safetensors");
    if (!model_path) {
        nb_fail(&r->err, "out of memory");
        return runtime_error(&r->err);
    }
    rc = nb_model_save(&r->model, model_path, &r->err);
    free(model_path);
    if (rc == 0 && r->opt.save_weights)
        rc = nb_model_save(&r->model, r->opt.save_weights, &r->err);
    if (rc == 0)
        rc = write_summary(r, &res, &dev, &test, r->last_train_accuracy);
    if (rc != 0)
        return runtime_error(&r->err);

    if (res.diverged)
        fprintf(stderr, "nabla: loss became NaN/inf at epoch %d step %lld; keeping the last good "
                        "weights. Try a lower learning rate (--lr is %g).\n",
                res.diverged_epoch + 1, (long long)res.diverged_step + 1, r->opt.lr);
    print_result(r, &dev, &test, &res);
    return res.diverged ? EXIT_RUNTIME : EXIT_OK;
}

/* Ranks on one machine share its cores: unless --threads says otherwise, each rank gets its
 * part of them (the results do not depend on the thread count). */
static void share_cores(train_options *o)
{
    int local = job_local_size();
    if (!o->given_threads && local > 1)
        o->threads = o->threads / local > 0 ? o->threads / local : 1;
}

/* Parses and checks every option, reads the data and builds the model (from the checkpoint
 * with --resume): all that comes before the run touches the file system. Returns 0, or -1 with
 * *code set and the message printed. */
static int set_up(train_run *r, int argc, char **argv, int *code)
{
    if (train_options_parse(&r->opt, argc, argv, code) != 0)
        return -1;
    if (r->opt.resume && resume_open(&r->opt, &r->resume, code) != 0)
        return -1;
    share_cores(&r->opt);
    /* Before any parallel work (loading, splitting): --threads 1 means one thread throughout. */
    nb_set_threads(r->opt.threads);
    r->argv_json = r->opt.resume ? resume_argv_json(&r->opt) : argv_json(argc, argv);
    if (!r->argv_json || !getcwd(r->cwd, sizeof r->cwd)) {
        nb_fail(&r->err, "cannot record the run's arguments and directory: %s",
                r->argv_json ? strerror(errno) : "out of memory");
        *code = runtime_error(&r->err);
        return -1;
    }
    if (data_classify(r->opt.src.data, &r->kind, &r->data_path, &r->err) != 0) {
        *code = runtime_error(&r->err);
        return -1;
    }
    if (check_data_options(&r->opt, r->kind, code) != 0)
        return -1;
    /* Only rank 0 writes --save-weights, so only its file system matters. */
    if (prepare(r) != 0 || (r->writer && r->opt.save_weights &&
                            check_save_path(r->opt.save_weights, &r->err) != 0)) {
        *code = runtime_error(&r->err);
        return -1;
    }
    return check_watch_options(r, code);
}

/* What must be the same on every rank for their sums to make sense: what shapes training (not,
 * say, --threads or --quiet) and the training data. (The weights, batch-norm statistics and
 * optimizer state need not be: nb_train starts every rank from rank 0's.) */
static uint32_t run_fingerprint(const train_run *r)
{
    const train_options *o = &r->opt;
    const nb_dataset *d = &r->train;
    size_t n_params;
    nb_graph_params(r->model.graph, &n_params);
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "layers %s act %d slope %.17g bn %d sync %d opt %d lr %.17g beta %.17g "
                     "beta2 %.17g eps %.17g wd %.17g bc %d batch %d epochs %d max %lld shuffle %d "
                     "decay %d rate %.17g interval %d warmup %d seed %llu normalize %d "
                     "dev %.17g every %lld data %d x %d, %d classes, dev %d, test %d, params %zu",
                     o->layers, (int)o->spec.activation, o->leaky_slope, o->spec.batchnorm,
                     o->sync_batchnorm, (int)o->optimizer, o->lr, o->beta, o->beta2, o->eps,
                     o->weight_decay, o->bias_correction, o->batch_size, o->epochs,
                     (long long)o->max_steps, o->shuffle, (int)o->decay, o->decay_rate,
                     o->decay_interval, o->warmup_epochs, (unsigned long long)o->src.seed,
                     o->normalize, o->dev_fraction, (long long)o->checkpoint_every, d->n,
                     d->features, d->classes, r->dev.n, r->test.n, n_params);
    uint32_t c = nb_crc32c(0, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
    size_t cells = (size_t)d->n * (size_t)d->features;
    c = d->pixels ? nb_crc32c(c, d->pixels, cells) : nb_crc32c(c, d->values, cells * sizeof(float));
    return nb_crc32c(c, d->labels, (size_t)d->n * sizeof *d->labels);
}

/* Under mpirun: the ranks go on together, all set up alike, or none does. Every rank ran the
 * same setup; a failure is usually the same everywhere (bad arguments), and rank 0 alone says
 * it, but one rank's own (its copy of the data missing on its machine) is told by that rank.
 * Then rank 0's fingerprint of the run goes to all, and each checks it has the same. Returns
 * 0 to go on, or -1 with *code set. */
static int start_together(train_run *r, int failed, int *code)
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
static void note_rank_change(const train_run *r)
{
    if (!r->opt.resume || !r->writer)
        return;
    const char *text = nb_st_meta_get(&r->resume.file, META_RANKS);
    int was = text ? atoi(text) : 1;
    if (was == job_size())
        return;
    if (r->opt.spec.batchnorm && !r->opt.sync_batchnorm)
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

/* Rank 0: the run directory and its first files. Returns 0, or -1 with *code set and the
 * message printed. */
static int create_run_files(train_run *r, int *code)
{
    if (make_dirs(r->out_dir, &r->err) != 0) {
        *code = runtime_error(&r->err);
        return -1;
    }
    remove_stale_temporaries(r->out_dir);
    if (write_config(r) != 0 || (r->opt.resume ? resume_metrics(r) : start_fresh(r)) != 0 ||
        train_trace_start(&r->trace, r->out_dir, &r->opt, &r->model,
                          r->have_state ? r->state.steps : 0, r->opt.resume != NULL,
                          &r->err) != 0) {
        *code = runtime_error(&r->err);
        return -1;
    }
    /* A restarted trial first reports the epochs its checkpoint holds. */
    if (trial_channel_report(&r->trial, r->log.text, r->log.len, r->opt.epochs) != 0) {
        *code = EXIT_RUNTIME;
        return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_run *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "nabla: out of memory\n");
        return EXIT_RUNTIME;
    }
    int code = EXIT_OK;
    r->last_train_accuracy = r->last_train_loss = NAN;
    r->comm = job_comm();
    r->writer = job_rank() == 0;
    snprintf(r->ranks_text, sizeof r->ranks_text, "%d", job_size());
    trial_channel_open(&r->trial);
    job_hold_stderr();
    int failed = set_up(r, argc, argv, &code) != 0;
    if (start_together(r, failed, &code) != 0)
        goto done;
    note_rank_change(r);

    /* Only now, with everything checked, does the run touch the file system. */
    if (r->opt.out)
        snprintf(r->out_dir, sizeof r->out_dir, "%s", r->opt.out);
    else
        default_run_dir(r->out_dir, sizeof r->out_dir);
    r->metrics_path = path_join(r->out_dir, "metrics.jsonl");
    if (!r->metrics_path) {
        nb_fail(&r->err, "out of memory");
        code = runtime_error(&r->err);
        goto done;
    }
    failed = r->writer && create_run_files(r, &code) != 0;
    if (r->comm) {
        /* The others wait for rank 0's files; if it could not write them, they stop too. */
        int v[1] = {failed};
        nb_error e;
        if (job_vote(v, 1, &e) != 0) {
            code = runtime_error(&e);
            goto done;
        }
        if (v[0]) {
            code = r->writer ? code : EXIT_RUNTIME;
            goto done;
        }
    } else if (failed) {
        goto done;
    }
    watch_for_lost_ranks(r, r->have_state ? r->resume.used : NULL,
                         r->have_state ? r->state.steps : 0);
    code = train_and_report(r);
done:
    run_free(r);
    free(r);
    return code;
}
