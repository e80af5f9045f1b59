/* nabla train: parse and check every option, load the data, build the model, and only then
 * create the run directory, train, and write the results.
 *
 * The order matters: any bad input (usage error, missing or malformed file, shape mismatch)
 * stops the program before a file or directory is created.
 *
 * Under mpirun (mpi_comm.h) every rank runs all of this with the same arguments and trains on
 * its shard of each mini-batch; only rank 0 writes files and prints. The ranks start together
 * (all set up, with the same configuration and data, or none goes on) and vote on every
 * decision one of them makes alone (train_lockstep.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common/dir_kind.h"
#include "cli/common/metrics_text.h"
#include "cli/common/output.h"
#include "cli/common/threads.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/train/train_run.h"
#include "core/clock.h"
#include "core/memcheck.h"
#include "io/fileio.h"
#include "io/model_io.h"
#include "io/paths.h"
#include "nn/layers.h"
#include "train/early_stop.h"

static const char *const CMD = "train";

/* Option combinations that depend on what kind of data --data names; and the default of
 * --normalize, which does: standard for float data, none for images (kept in [0,1]). */
static int check_data_options(train_options *o, data_kind kind, int *exit_code)
{
    if (kind != DATA_CSV && data_csv_options_given(&o->src)) {
        *exit_code = cli_usage_error(CMD, "--target, --header, --delimiter, --missing, "
                                          "--allow-many-classes and --test-fraction read CSV "
                                          "files, but --data %s is %s", o->src.data,
                                     kind == DATA_IDX ? "an IDX data set" : "a synthetic set");
        return -1;
    }
    if (o->src.test && kind != DATA_CSV) {
        *exit_code = cli_usage_error(CMD, "--test needs a CSV training set, but --data %s is %s",
                                     o->src.data, kind == DATA_IDX ? "an IDX data set"
                                                                   : "a synthetic set");
        return -1;
    }
    if (o->normalize > 0 && kind == DATA_IDX) {
        *exit_code = cli_usage_error(CMD, "--normalize standard works on CSV and synthetic "
                                          "data, not on the pixels of %s", o->src.data);
        return -1;
    }
    /* Features standardized, images (IDX, or a CSV row read as an image with --input-shape)
     * left in [0, 1]. */
    if (o->normalize < 0)
        o->normalize = kind != DATA_IDX && o->input_shape.ndim == 0;
    return 0;
}

static int memory_refused(train_run *r);

static void run_free(train_run *r)
{
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->dev);
    nb_dataset_free(&r->test);
    nb_model_free(&r->model);   /* safe on the zeroed model of a run that stopped early */
    free(r->metrics_path);
    if (r->metrics_fd >= 0)
        close(r->metrics_fd);
    metrics_log_free(&r->log);
    free(r->argv_json);
    if (r->have_state)
        nb_train_state_free(&r->state);
    resume_close(&r->resume);
    trial_channel_close(&r->trial);
    train_trace_free(&r->trace);
    dir_lock_release(&r->lock);   /* last: the run has written everything it will */
}

static int runtime_error(const nb_error *err)
{
    return cli_error("%s", err->msg);
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

/* --init-weights: a file that cannot be read is an accident; weights that do not fit the model
 * are the configuration's doing (a tune trial with other --layers than the file's). */
static int init_weights(train_run *r)
{
    nb_st_file f;
    if (nb_st_read(r->opt.init_weights, &f, &r->err) != 0)
        return -1;
    int rc = nb_model_apply_weights(&r->model, &f, r->opt.init_weights, &r->err);
    nb_st_free(&f);
    r->own_fault = rc != 0;
    return rc;
}

/* After a check refused memory (nb_memory_verdict_take: memcheck.h), the message says what
 * helps when it is not a smaller configuration: when the run could fit the limit but other
 * processes hold the memory now, or when the limit is too small for any run. Either is not the
 * configuration's doing: a tune trial is then interrupted, not failed, and the same command
 * retries it (once memory is free, or under a larger limit). Returns whether it was the
 * configuration's doing (own_fault). */
static int memory_refused(train_run *r)
{
    nb_memory_verdict v = nb_memory_verdict_take();
    const char *trial = r->trial.fd >= 0 ? "the trial" : "the run";
    char why[sizeof r->err.msg];
    snprintf(why, sizeof why, "%s", r->err.msg);
    if (v == NB_MEMORY_SHORT_NOW)
        nb_fail(&r->err, "%s; %s would fit, but other processes%s hold the memory now: %s", why,
                trial, r->trial.fd >= 0 ? " (or trials beside it)" : "",
                r->trial.fd >= 0 ? "free memory, or run fewer trials at once (--workers)"
                                 : "free memory and run it again");
    else if (v == NB_MEMORY_NO_RUN_FITS)
        nb_fail(&r->err, "%s; no run fits under this limit, whatever its configuration: "
                         "raise it", why);
    return v == NB_MEMORY_NEVER_FITS;
}

/* The model's spec (train_model_spec). A model that does not fit the data, or a traced unit it
 * does not have, is a usage error (r->bad_model). */
static int model_spec(train_run *r, nb_model_spec *spec)
{
    const train_options *o = &r->opt;
    nb_shape shapes[NB_LAYERS_MAX + 1];
    if (train_model_spec(o, &r->train, spec, shapes, &r->err) != 0) {
        r->bad_model = 1;
        return -1;
    }
    /* Early stopping's metric must be one the model's task has (a usage error). */
    nb_train_config cfg;
    fill_train_config(r, &cfg);
    if (early_stop_check(&cfg, spec->task, &r->dev, &r->err) != 0) {
        r->bad_model = 1;
        return -1;
    }
    /* (train_options_parse made sure the traced layer exists.) */
    int traced = o->trace ? nb_layers_activation_at(&spec->layers, o->trace_layer) : -1;
    int64_t units = traced >= 0 ? nb_shape_numel(shapes[traced]) : 0;
    if (traced >= 0 && o->trace_unit >= units) {
        r->bad_model = 1;
        return nb_fail(&r->err, "--trace-unit %d: activation layer %d has units 0 to %lld",
                       o->trace_unit, o->trace_layer, (long long)units - 1);
    }
    return 0;
}

/* A regression model learns standardized targets: the training set's mean and standard
 * deviation of each target column, kept (and saved) with the model, which brings its outputs
 * back to the data's units. */
static int scale_targets(train_run *r)
{
    nb_model *m = &r->model;
    size_t k = (size_t)m->spec.classes;
    m->target_mean = malloc(k * sizeof *m->target_mean);
    m->target_std = malloc(k * sizeof *m->target_std);
    if (!m->target_mean || !m->target_std)
        return nb_fail(&r->err, "out of memory");
    nb_dataset_target_stats(&r->train, m->target_mean, m->target_std);
    return 0;
}

/* Loads the data, splits off dev, standardizes, builds the model, and loads --init-weights or,
 * for --resume, the checkpoint's weights and state. */
static int prepare(train_run *r)
{
    train_options *o = &r->opt;
    if (data_load_train(&o->src, &r->train, &r->test, &r->err) != 0)
        return -1;
    if (r->test.n > 0 &&
        data_check_fits(&r->test, "test set", 0, "the training set", r->train.features,
                        r->train.labels ? r->train.classes : r->train.targets, &r->err) != 0)
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

    nb_model_spec spec;
    if (model_spec(r, &spec) != 0) {
        free(mean);
        free(std);
        return -1;
    }
    /* A mini-batch larger than the set is the whole set; no need for a bigger graph. */
    int max_batch = o->batch_size > 0 && o->batch_size < r->train.n ? o->batch_size
                                                                    : r->train.n;
    /* All the memory the run will need, model and training state (a resumed run's too),
     * before the model is built: building a large one takes seconds. A model that cannot be
     * built is its configuration's doing, unless it is only the memory of the moment. */
    nb_train_config cfg;
    fill_train_config(r, &cfg);
    nb_memory_verdict_take();
    if (nb_train_check_model_memory(&spec, max_batch, &r->train, &cfg, &r->err) != 0 ||
        nb_model_build(&r->model, &spec, max_batch, o->src.seed, &r->err) != 0) {
        free(mean);
        free(std);
        r->own_fault = memory_refused(r);
        return -1;
    }
    r->model.norm_mean = mean;   /* owned by the model from here on, and saved with it */
    r->model.norm_std = std;
    if (spec.task == NB_TASK_REGRESSION && scale_targets(r) != 0)
        return -1;
    /* How the training CSV was read, saved with the model for new rows to be read alike. */
    if (r->train.table) {
        r->model.table = calloc(1, sizeof *r->model.table);
        if (!r->model.table || nb_table_copy(r->model.table, r->train.table, &r->err) != 0)
            return r->model.table ? -1 : nb_fail(&r->err, "out of memory");
    }

    if (o->init_weights && init_weights(r) != 0)
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
        /* The checkpoint's tensors are in the model and the state now; their bytes (three
         * times the model's with Adam) need not stay in memory while the run goes on. What the
         * run still reads, its options and metrics, is in the metadata. */
        nb_st_drop_tensors(&r->resume.file);
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

/* --resume DIR --epochs N on a run that --max-steps ends: a resumed run keeps its --max-steps,
 * so more epochs may add nothing. Refused (exit 2) when the run has reached them already: it
 * would train nothing; said in a note when they end it before epoch N. */
static int check_extension(train_run *r, int *exit_code)
{
    const train_options *o = &r->opt;
    if (!o->resume || !r->resume.extended_from || o->max_steps <= 0 || !r->have_state)
        return 0;
    int64_t batch = o->batch_size > 0 && o->batch_size < r->train.n ? o->batch_size
                                                                    : r->train.n;
    int64_t batches = (r->train.n + batch - 1) / batch;
    int64_t wanted = (int64_t)o->epochs * batches;
    if (o->max_steps >= wanted)
        return 0;
    if (r->state.steps >= o->max_steps) {
        *exit_code = cli_usage_error(CMD, "--epochs %d cannot extend %s: the run ends at "
                                          "--max-steps %lld, which it has reached, and a "
                                          "resumed run keeps its --max-steps (to train on, "
                                          "start a run from its weights: --init-weights "
                                          "%s/model.safetensors)",
                                     o->epochs, r->resume.dir, (long long)o->max_steps,
                                     r->resume.dir);
        return -1;
    }
    if (r->writer)
        fprintf(stderr, "nabla train: note: --max-steps %lld still ends this run, at step %lld "
                        "of the %lld that --epochs %d would take (a resumed run keeps its "
                        "--max-steps)\n",
                (long long)o->max_steps, (long long)o->max_steps, (long long)wanted,
                o->epochs);
    return 0;
}

/* Fails early (before training, before the run directory exists) when --save-weights could
 * not be written at the end: it is one of nabla's own files or inside the run directory
 * (out_dir; dir_kind.h), the output rule refuses it (a directory, a socket, ...), or its
 * directory is missing or not writable. */
static int check_save_path(const char *path, const char *out_dir, nb_error *err)
{
    if (!*path)
        return nb_fail(err, "--save-weights needs a file name");
    if (dir_check_output(path, "--save-weights", out_dir, NULL, err) != 0)
        return -1;
    if (nb_output_check(path, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return nb_fail(err, "--save-weights %s", why);
    }
    return 0;
}

/* A stop found a file of the run not being read (a FIFO whose reader does not read): the run
 * goes on to its stop, and says so at its end (the first such file). */
static void note_cut(train_run *r, const nb_error *e)
{
    if (!r->cut_short)
        r->cut = *e;
    r->cut_short = 1;
}

/* ---- callbacks from nb_train ----
 * In a single process a failure stops training at once; under mpirun it is voted on first. */

static int on_batch(const nb_progress *p, void *user)
{
    train_run *r = user;
    r->stepped = 1;
    if (r->writer) {
        if (progress_batch(&r->prog, p) != 0)
            stop_for_output();   /* stops at the next step, with a checkpoint, as a signal does */
        nb_error e;
        int rc = r->comm && r->callback_failed
                     ? 0
                     : train_trace_step(&r->trace, &r->model, p, r->dev.n > 0 ? &r->dev : NULL,
                                        r->test.n > 0 ? &r->test : NULL, &e);
        if (rc == APPEND_CUT)
            note_cut(r, &e);
        if (rc < 0) {
            r->err = e;
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
        if (progress_epoch(&r->prog, m) != 0)
            stop_for_output();
        nb_error e;
        int rc = r->comm && r->callback_failed
                     ? 0
                     : metrics_append(r->metrics_fd, r->metrics_path, m, &r->log, &e);
        if (rc == APPEND_CUT) {
            note_cut(r, &e);
            close(r->metrics_fd);   /* no line after the gap; the log goes on */
            r->metrics_fd = -1;
        }
        if (rc < 0) {
            r->err = e;
            r->callback_failed = 1;
            if (!r->comm)
                return 1;   /* stop: a run whose log cannot be written is not worth continuing */
        }
    }
    /* Under mpirun the failure goes to the vote of the checkpoint that follows. */
    return 0;
}

/* Epoch ends can come faster than checkpoints can be written (the course's moons run has 5000
 * epochs of 5 steps, a fraction of a millisecond each, and a checkpoint costs fsyncs and grows
 * with metrics.jsonl). So at an epoch's end a checkpoint is written only when the training
 * since the last one took at least CHECKPOINT_SHARE times as long as writing that one did:
 * checkpoints then take at most about 1/CHECKPOINT_SHARE of the run, and any epoch longer than
 * that gets its checkpoint. Always written: the first, the last (end of the run, --max-steps,
 * a signal) and those asked for with --checkpoint-every. */
#define CHECKPOINT_SHARE 10.0

/* The state is the run's end: its last epoch done, --max-steps reached, or early stopping's
 * patience run out. */
static int run_ends_at(const train_run *r, const nb_train_state *s)
{
    nb_train_config cfg = {.early_stop = r->opt.early_stop};
    return s->epoch >= r->opt.epochs || (r->opt.max_steps > 0 && s->steps >= r->opt.max_steps) ||
           (s->batch == 0 && early_stop_due(s, &cfg));
}

static int checkpoint_due(const train_run *r, const nb_train_state *s)
{
    int epoch_end = s->batch == 0;
    return !epoch_end || run_ends_at(r, s) || stop_signal(r) ||
           nb_monotonic_seconds() - r->last_checkpoint >= CHECKPOINT_SHARE * r->checkpoint_cost;
}

/* The checkpoint of `steps` steps is on disk: the one to name should the run stop without
 * another (a second Ctrl-C, a lost rank). */
static void watch_checkpoint(train_run *r, int64_t steps)
{
    char *path = path_join(r->out_dir, "checkpoint.safetensors");
    if (path)
        note_last_checkpoint(r, path, steps);
    free(path);
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
        {META_RUN, r->run_name},
    };
    /* Another writer may be in the directory if the lock was removed or replaced (nothing of
     * nabla's does that, but a user can): the run stops rather than write over it. */
    if (dir_lock_check(&r->lock, err) != 0)
        return 1;
    /* The metrics, trace and evaluation lines up to this step reach the disk before the
     * checkpoint that a resumed run would keep them for. */
    if (checkpoint_due(r, s)) {
        double start = nb_monotonic_seconds();
        if (metrics_sync(r->metrics_fd, r->metrics_path, err) != 0 ||
            train_trace_sync(&r->trace, err) != 0)
            return 1;
        if (nb_checkpoint_save(r->out_dir, &r->model, s, meta, sizeof meta / sizeof meta[0], err) != 0) {
            /* A checkpoint is what a run continues from; one that fails stops the run. But at
             * the run's end the run is done: its model and summary are written all the same
             * (train_and_report says what happened), and only continuing from its very end is
             * lost (the checkpoint before stays, and --resume retrains the steps since then to
             * the same weights). An interrupted run's checkpoint is all it leaves: it fails. */
            if (!run_ends_at(r, s) || stop_signal(r))
                return 1;
            r->final_checkpoint_failed = 1;
            r->final_checkpoint = *err;
        } else {
            r->last_checkpoint = nb_monotonic_seconds();
            r->checkpoint_cost = r->last_checkpoint - start;
            r->checkpoint_steps = s->steps;
            r->wrote_checkpoint = 1;
            watch_checkpoint(r, s->steps);
        }
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
    if (!r->comm) {
        if (write_checkpoint(r, s, err) != 0) {
            r->callback_failed = 1;
            return 1;
        }
        if (stop_signal(r))
            stop_signals_finishing();   /* the stop's checkpoint is on disk */
        return 0;
    }
    /* First the ranks agree on a stop signal, which decides whether this checkpoint is written
     * and whether the run ends after it; then on whether rank 0 managed to write it. nb_train's
     * err is r->err, where the votes put their messages. */
    if (vote_now(r))
        return 1;
    if (r->writer && !r->callback_failed && write_checkpoint(r, s, err) != 0)
        r->callback_failed = 1;
    int failed = vote_now(r);
    r->wrote_checkpoint = 0;   /* told: the next votes are about the next call */
    if (failed)
        return 1;
    if (stop_signal(r))
        stop_signals_finishing();   /* the stop's checkpoint is on disk */
    /* The vote told the other ranks whether rank 0 wrote a checkpoint just now. */
    if (!r->writer && r->checkpoint_written)
        watch_checkpoint(r, s->steps);
    return 0;
}

void fill_train_config(train_run *r, nb_train_config *c)
{
    const train_options *o = &r->opt;
    memset(c, 0, sizeof *c);
    optim_config_of(o, &c->optim);
    c->schedule = train_schedule(o);
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
    c->early_stop = o->early_stop;
    c->monitor = o->monitor;
    c->min_delta = o->min_delta;
}

static void print_result(const train_run *r, const nb_eval_result *dev,
                         const nb_eval_result *test, const nb_train_result *res)
{
    char text[256];
    if (test->n > 0 || dev->n > 0) {
        const nb_eval_result *e = test->n > 0 ? test : dev;
        metrics_text(e, 0, text, sizeof text);
        printf("%s %s (loss %.4f)%s\n", test->n > 0 ? "test" : "dev", text, e->loss,
               test->n > 0 ? "" : ", no test set");
    } else if (r->model.spec.task == NB_TASK_REGRESSION) {
        printf("train loss %.4f, no dev or test set\n", r->last_train_loss);
    } else {
        printf("train accuracy %.4f (loss %.4f), no test set\n", r->last_train_accuracy,
               r->last_train_loss);
    }
    if (!r->opt.quiet && r->opt.early_stop && res->best_epoch >= 0)
        printf("model.safetensors holds epoch %d's weights, the best of %d by dev %s (%.6g)%s\n",
               res->best_epoch + 1, res->epochs, nb_metric_name(r->opt.monitor),
               res->best_value, res->stopped_early ? ", where training stopped early" : "");
    if (!r->opt.quiet) {
        printf("wrote %s/ (config.json, metrics.jsonl, %s%smodel.safetensors, summary.json%s)\n",
               r->out_dir, r->opt.trace ? TRACE_FILE ", " : "",
               r->opt.eval_every > 0 ? STEPS_FILE ", " : "",
               r->final_checkpoint_failed ? "" : ", checkpoint.safetensors");
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
    r->metrics_fd = metrics_start(r->metrics_path, &r->err);
    return r->metrics_fd < 0 ? -1 : 0;
}

/* A resumed run's metrics.jsonl is what it was at the checkpoint: the epochs finished after
 * it (if a crash came between the two) will be trained and written again. */
static int resume_metrics(train_run *r)
{
    r->metrics_fd = metrics_restore(r->metrics_path, r->resume.metrics, &r->log, &r->err);
    if (r->metrics_fd < 0)
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

/* Whether line 1 of a CSV training or test set was a header: said before the first epoch. */
static void describe_csv_data(const train_run *r)
{
    if (r->kind == DATA_CSV)
        data_describe_csv(stdout, "data", r->data_path, &r->train,
                          r->train.n + r->dev.n + (r->opt.src.test_fraction > 0 ? r->test.n : 0),
                          &r->opt.src.csv);
    if (r->opt.src.test && r->test.n > 0)
        data_describe_csv(stdout, "test", r->opt.src.test, &r->test, r->test.n,
                          &r->opt.src.csv);
}

/* The run trained to its end, but its model.safetensors (and so its summary.json) or its
 * summary.json alone could not be written: said with what is written, and how to write the
 * rest (a resumed run that is complete writes them again from its final checkpoint). */
static int results_failed(train_run *r, int model_written)
{
    char command[CLI_MAX_PATH + 64];
    continue_command(r, command, sizeof command);
    const char *why = r->err.msg;
    if (r->final_checkpoint_failed && model_written)
        return cli_error("%s; the run trained to its end: %s/model.safetensors is written, but "
                         "not its final checkpoint", why, r->out_dir);
    if (r->final_checkpoint_failed)
        return cli_error("%s; the run trained to its end, but none of its results is written",
                         why);
    if (model_written)
        return cli_error("%s; the run trained to its end: %s/model.safetensors and its final "
                         "checkpoint are written; once that is fixed, %s writes summary.json",
                         why, r->out_dir, command);
    return cli_error("%s; the run trained to its end and its final checkpoint is written; once "
                     "that is fixed, %s writes model.safetensors and summary.json",
                     why, command);
}

/* Trains, evaluates the final weights and writes the results (rank 0). */
static int train_and_report(train_run *r)
{
    nb_train_config cfg;
    nb_train_result res;
    memset(&res, 0, sizeof res);
    fill_train_config(r, &cfg);
    cfg.user = r;

    if (r->writer && !r->opt.quiet)
        describe_csv_data(r);
    progress_init(&r->prog, r->opt.quiet || !r->writer, r->opt.epochs);
    r->prog.early_stop = r->opt.early_stop;
    r->prog.monitor = nb_metric_name(r->opt.monitor);
    /* Open MPI gives the ranks a pseudo-terminal for stdout even when mpirun's own goes to a
     * file (a batch job's log): a line per epoch there, no bar redrawn ten times a second. */
    if (r->comm)
        r->prog.live = 0;
    r->last_checkpoint = nb_monotonic_seconds();
    int rc = nb_train(&r->model, &r->train, r->dev.n > 0 ? &r->dev : NULL,
                      r->test.n > 0 ? &r->test : NULL, &cfg, &res, &r->err);
    if (r->comm)
        vote_settle(r, rc == 0);
    progress_clear(&r->prog);
    if (train_trace_close(&r->trace, rc == 0 && !r->callback_failed ? &r->err
                                                                    : &(nb_error){{0}}) != 0)
        rc = -1;
    if (r->tuner_gone)
        return EXIT_RUNTIME; /* the tuner's next run continues from the checkpoint */
    /* nb_train refusing to start (its checks of the model and the memory its state needs) is
     * the configuration's doing, unless only the memory of the moment was short; a failure
     * once it trains is the files' or the machine's. */
    if (rc != 0 && !r->callback_failed && !r->stepped)
        r->own_fault = memory_refused(r);
    if (rc != 0 || r->callback_failed)
        return training_failed(r);
    if (res.interrupted) {
        int reason = stop_signal(r);
        char command[CLI_MAX_PATH + 64];
        continue_command(r, command, sizeof command);
        if (r->writer && reason == STOP_OUTPUT_LOST) {
            fprintf(stderr, "nabla: cannot write standard output: %s; stopped", output_error());
            output_failure_told();
        } else if (r->writer) {
            fprintf(stderr, "nabla: stopped by %s", stop_signal_name(reason));
        }
        if (r->writer)
            fprintf(stderr, " after %lld steps; checkpoint written to "
                            "%s/checkpoint.safetensors\nnabla: continue with: %s\n",
                    (long long)res.steps, r->out_dir, command);
        if (r->cut_short)
            fprintf(stderr, "nabla: %s\n", r->cut.msg);
        cli_note_error("stopped by %s after %lld steps, its checkpoint written",
                       stop_signal_name(reason), (long long)res.steps);
        return stop_exit_code(reason);
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

    /* The results are the run's own files: checked again by the rule of the run's start (a
     * link put at their names while it ran is not followed). */
    char *model_path = path_join(r->out_dir, "model.safetensors");
    if (!model_path) {
        nb_fail(&r->err, "out of memory");
        return runtime_error(&r->err);
    }
    int model_written = 0;
    rc = results_writable(r->out_dir, &r->err);
    if (rc == 0 && (rc = nb_model_save(&r->model, model_path, &r->err)) == 0)
        model_written = 1;
    free(model_path);
    if (rc == 0)
        rc = train_write_summary(r, &res, &dev, &test);
    if (rc != 0)
        return results_failed(r, model_written);
    /* The copy last: the run is complete without it, and says so if it cannot be written. The
     * rule is checked again (the path may have changed since the run started). */
    if (r->opt.save_weights &&
        (check_save_path(r->opt.save_weights, r->out_dir, &r->err) != 0 ||
         nb_model_save(&r->model, r->opt.save_weights, &r->err) != 0))
        return cli_error("%s; the run itself is complete (%s/model.safetensors, summary.json)",
                         r->err.msg, r->out_dir);

    if (res.diverged) {
        fprintf(stderr, "nabla: loss became NaN/inf at epoch %d step %lld; keeping the last good "
                        "weights. Try a lower learning rate (--lr is %g).\n",
                res.diverged_epoch + 1, (long long)res.diverged_step + 1, r->opt.lr);
        cli_note_error("the loss diverged (NaN/inf) at epoch %d step %lld",
                       res.diverged_epoch + 1, (long long)res.diverged_step + 1);
        r->own_fault = 1;
    }
    print_result(r, &dev, &test, &res);
    if (r->cut_short)   /* the stop came as the run ended: complete, but for that file */
        return cli_error("%s", r->cut.msg);
    if (r->final_checkpoint_failed) {
        /* The run is complete; what it lacks is a way to continue from its very end. Said, but
         * not a failure: its results are all written (write_checkpoint). */
        char older[64] = "there is no checkpoint to continue from";
        if (r->checkpoint_steps >= 0)
            snprintf(older, sizeof older, "--resume would continue from step %lld",
                     (long long)r->checkpoint_steps);
        fprintf(stderr, "nabla: warning: the run is complete (model.safetensors, summary.json) "
                        "but its final checkpoint was not written: %s; %s\n",
                r->final_checkpoint.msg, older);
    }
    return res.diverged ? EXIT_RUNTIME : EXIT_OK;
}

/* Ranks on one machine share its cores: unless --threads says otherwise, each rank gets its
 * part of them (the results do not depend on the thread count). Then no more threads than the
 * cores this rank or process may run on (mpirun may bind a rank to one; threads.h), said when
 * --threads asked for more. */
static void share_cores(train_options *o)
{
    int local = job_local_size();
    if (!o->given_threads && local > 1)
        o->threads = cli_default_threads() / local > 0 ? cli_default_threads() / local : 1;
    o->threads = cli_cap_threads(CMD, o->threads, cli_usable_cores(), "this process",
                                 o->given_threads && job_rank() == 0);
}

/* Parses and checks every option, reads the data and builds the model (from the checkpoint
 * with --resume): all that comes before the run touches the file system. Returns 0, or -1 with
 * *code set and the message printed. */
static int set_up(train_run *r, int argc, char **argv, int *code)
{
    if (train_options_parse(&r->opt, argc, argv, code) != 0)
        return -1;
    /* A run directory is locked before its checkpoint is read: a resume while the run still
     * writes there is refused before anything else. (Only rank 0 writes, so only it locks.) */
    if (r->opt.resume && r->writer && train_dir_lock(r, r->opt.resume, code) != 0)
        return -1;
    if (r->opt.resume && resume_open(&r->opt, &r->resume, code) != 0)
        return -1;
    if (r->opt.resume)
        snprintf(r->run_name, sizeof r->run_name, "%s", r->resume.run);
    else
        run_name_new(r->run_name);
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
    /* Only rank 0 writes --out and --save-weights, so only its file system matters. */
    if (prepare(r) != 0 ||
        (r->writer && r->opt.save_weights &&
         check_save_path(r->opt.save_weights, r->opt.out, &r->err) != 0) ||
        (r->writer && r->opt.out && train_dir_check(r, r->opt.out) != 0)) {
        *code = r->bad_model ? cli_usage_error(CMD, "%s", r->err.msg) : runtime_error(&r->err);
        return -1;
    }
    /* The memory training will add, before the run directory exists (nb_train checks it
     * again, as it would for any caller). */
    nb_train_config cfg;
    fill_train_config(r, &cfg);
    if (nb_train_check_memory(&r->model, &r->train, &cfg, &r->err) != 0) {
        r->own_fault = memory_refused(r);
        *code = runtime_error(&r->err);
        return -1;
    }
    cli_say_threads_lowered(CMD, &r->opt.threads);
    /* The notes about an extended run come after every refusal: none for a refused resume. */
    if (check_watch_options(r, code) != 0 || check_extension(r, code) != 0)
        return -1;
    if (r->writer)
        resume_say_extension(&r->opt, &r->resume);
    return 0;
}

/* Rank 0: the run directory and its first files. Returns 0, or -1 with *code set and the
 * message printed. */
static int create_run_files(train_run *r, int *code)
{
    if (make_dirs(r->out_dir, &r->err) != 0) {
        *code = runtime_error(&r->err);
        return -1;
    }
    /* Locked (a resumed run is already), then checked again: the directory may have changed
     * while the data loaded. */
    if (train_dir_lock(r, r->out_dir, code) != 0)
        return -1;
    if (train_dir_check(r, r->out_dir) != 0) {
        *code = runtime_error(&r->err);
        return -1;
    }
    remove_stale_temporaries(r->out_dir);
    if (train_write_config(r) != 0 || results_remove(r->out_dir, &r->err) != 0 ||
        (r->opt.resume ? resume_metrics(r) : start_fresh(r)) != 0 ||
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
    if (!r)
        return cli_error("out of memory");
    int code = EXIT_OK;
    r->last_train_accuracy = r->last_train_loss = NAN;
    r->lock.fd = r->metrics_fd = -1;
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
    /* "runs/x/" is "runs/x" (its files are named "runs/x/config.json"); "/" stays "/". */
    for (size_t n = strlen(r->out_dir); n > 1 && r->out_dir[n - 1] == '/'; n--)
        r->out_dir[n - 1] = '\0';
    r->metrics_path = path_join(r->out_dir, "metrics.jsonl");
    if (!r->metrics_path) {
        nb_fail(&r->err, "out of memory");
        code = runtime_error(&r->err);
        goto done;
    }
    /* From here on a stop signal stops the run with a checkpoint (the first), or at once
     * without leaving temporary files behind (the second): it names the last checkpoint. */
    note_last_checkpoint(r, r->have_state ? r->resume.used : NULL,
                         r->have_state ? r->state.steps : 0);
    note_checkpoints_to_come(r);
    stop_signals_install();
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
    r->checkpoint_steps = r->have_state ? r->state.steps : -1;
    code = train_and_report(r);
done:
    /* A trial's last word: how and why it ends, which tells the tuner whether it failed or
     * was interrupted. */
    trial_channel_end(&r->trial, code, r->own_fault, cli_last_error());
    run_free(r);
    free(r);
    return code;
}
