/* A `nabla train` run's config.json and summary.json (train_run.h). */
#include <stdio.h>

#include "cli/common/metrics_json.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/train/train_run.h"
#include "io/json_write.h"

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

int train_write_config(train_run *r)
{
    const train_options *o = &r->opt;
    const nb_model_spec *s = &r->model.spec;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(&r->err, "out of memory");
    cJSON_AddStringToObject(j, "command", "train");
    cJSON_AddStringToObject(j, "version", NABLA_VERSION);
    cJSON_AddStringToObject(j, "run", r->run_name);
    cJSON_AddStringToObject(j, "data", o->src.data);
    cJSON_AddStringToObject(j, "data_path", r->data_path);
    cJSON_AddStringToObject(j, "data_kind", data_kind_name(r->kind));
    cJSON_AddItemToObject(j, "test", json_string_or_null(o->src.test));
    /* Whether line 1 of a CSV file was a header (data_describe_csv says it too). */
    cJSON_AddItemToObject(j, "data_header", r->kind == DATA_CSV ? cJSON_CreateBool(r->train.header)
                                                                 : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "test_header", o->src.test ? cJSON_CreateBool(r->test.header)
                                                        : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "features", nb_model_features(s));
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
    cJSON_AddStringToObject(j, "normalize", o->normalize > 0 ? "standard" : "none");
    /* How CSV files were read (the flags; the table itself is in the model's metadata). */
    cJSON_AddItemToObject(j, "target", json_string_or_null(o->src.csv.target));
    cJSON_AddStringToObject(j, "header", data_header_name(o->src.csv.header));
    cJSON_AddStringToObject(j, "delimiter", data_delimiter_name(o->src.csv.delimiter));
    cJSON_AddStringToObject(j, "missing", data_missing_name(o->src.csv.missing));
    cJSON_AddBoolToObject(j, "allow_many_classes", o->src.csv.allow_many_classes != 0);
    cJSON_AddNumberToObject(j, "test_fraction", o->src.test_fraction);

    /* The model as its canonical text, and its input shape; the widths form's options too
     * when it was written that way. */
    char text[NB_LAYERS_TEXT_MAX], shape[48];
    if (nb_layers_format(&s->layers, text, sizeof text) < 0) {
        cJSON_Delete(j);
        return nb_fail(&r->err, "the model's layers cannot be written");
    }
    nb_shape_format(s->input, shape, sizeof shape);
    cJSON_AddStringToObject(j, "model", text);
    cJSON_AddStringToObject(j, "input_shape", shape);
    if (!o->layers_text) {
        cJSON_AddItemToObject(j, "layers", cJSON_CreateIntArray(o->mlp.hidden, o->mlp.n_hidden));
        cJSON_AddStringToObject(j, "activation", nb_activation_name(o->mlp.activation));
        cJSON_AddNumberToObject(j, "leaky_slope", o->leaky_slope);
        cJSON_AddBoolToObject(j, "batchnorm", o->mlp.batchnorm);
    }
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
    /* Only cosine decay has a horizon; a resumed run keeps the one it started with. */
    if (o->decay == NB_DECAY_COSINE)
        cJSON_AddNumberToObject(j, "decay_epochs", o->decay_epochs);
    else
        cJSON_AddNullToObject(j, "decay_epochs");

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
    cJSON_AddStringToObject(j, "task", nb_task_name(s->task));
    cJSON_AddStringToObject(j, "loss", nb_loss_name(s->loss));
    /* Early stopping: its patience, the dev metric it watches and min_delta; null when off. */
    if (o->early_stop > 0) {
        cJSON_AddNumberToObject(j, "early_stop", o->early_stop);
        cJSON_AddStringToObject(j, "monitor", nb_metric_name(o->monitor));
        cJSON_AddNumberToObject(j, "min_delta", o->min_delta);
    } else {
        cJSON_AddNullToObject(j, "early_stop");
        cJSON_AddNullToObject(j, "monitor");
        cJSON_AddNullToObject(j, "min_delta");
    }

    int rc = write_json_file(r->out_dir, "config.json", j, &r->err);
    cJSON_Delete(j);
    return rc;
}

int train_write_summary(train_run *r, const nb_train_result *res, const nb_eval_result *dev,
                        const nb_eval_result *test)
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
    cJSON_AddItemToObject(j, "train_accuracy",
                          res->epochs > 0 && r->model.spec.task != NB_TASK_REGRESSION
                              ? cJSON_CreateNumber(r->last_train_accuracy)
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
    /* With early stopping: the epoch whose weights model.safetensors holds (1-based, as in
     * metrics.jsonl), its value of the dev metric watched, and whether the run stopped before
     * its last epoch. The dev and test figures above are that epoch's. */
    int best = r->opt.early_stop > 0 && res->best_epoch >= 0;
    cJSON_AddItemToObject(j, "monitor", r->opt.early_stop > 0
                                            ? cJSON_CreateString(nb_metric_name(r->opt.monitor))
                                            : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "best_epoch", best ? cJSON_CreateNumber(res->best_epoch + 1)
                                                : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "best_value", best ? cJSON_CreateNumber(res->best_value)
                                                : cJSON_CreateNull());
    cJSON_AddBoolToObject(j, "stopped_early", res->stopped_early);
    cJSON_AddStringToObject(j, "model", "model.safetensors");
    int rc = write_json_file(r->out_dir, "summary.json", j, &r->err);
    cJSON_Delete(j);
    return rc;
}
