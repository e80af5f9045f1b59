/* --resume: the run's own arguments come back from its checkpoint and are parsed again, in the
 * working directory they were given in, so every relative path means what it meant; then the
 * few options a resumed run may change are laid over them. */
#include "resume.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static const char *const CMD = "train";

char *argv_json(int argc, char **argv)
{
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return NULL;
    for (int i = 1; i < argc; i++) {
        cJSON *s = cJSON_CreateString(argv[i]);
        if (!s) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, s);
    }
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return text;
}

/* The stored arguments, as an argv with "train" in front (strings and array malloc'd). */
typedef struct stored_args {
    int argc;
    char **argv;
} stored_args;

static void stored_args_free(stored_args *a)
{
    for (int i = 0; a->argv && i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}

static int parse_stored_args(const char *json, stored_args *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return nb_fail(err, "its '%s' is missing or not a JSON array", META_ARGV);
    }
    int n = cJSON_GetArraySize(a);
    out->argv = calloc((size_t)n + 2, sizeof *out->argv);
    if (!out->argv) {
        cJSON_Delete(a);
        return nb_fail(err, "out of memory");
    }
    out->argv[out->argc++] = strdup("train");
    int rc = 0;
    for (cJSON *s = a->child; s && rc == 0; s = s->next) {
        if (!cJSON_IsString(s))
            rc = nb_fail(err, "its '%s' holds something other than strings", META_ARGV);
        else if (!(out->argv[out->argc++] = strdup(s->valuestring)))
            rc = nb_fail(err, "out of memory");
    }
    if (rc == 0 && !out->argv[0])
        rc = nb_fail(err, "out of memory");
    cJSON_Delete(a);
    if (rc != 0)
        stored_args_free(out);
    return rc;
}

int resume_same_run(const nb_st_file *f, const train_options *expected, const char *cwd,
                    char *what, size_t size)
{
    const char *run_cwd = nb_st_meta_get(f, META_CWD);
    stored_args a;
    nb_error err;
    if (!run_cwd) {
        snprintf(what, size, "it has no working directory in its metadata");
        return 0;
    }
    if (parse_stored_args(nb_st_meta_get(f, META_ARGV), &a, &err) != 0) {
        snprintf(what, size, "%s", err.msg);
        return 0;
    }
    train_options stored;
    int code, same = 0;
    if (train_options_parse(&stored, a.argc, a.argv, &code) != 0)
        snprintf(what, size, "its arguments no longer parse");
    else
        same = train_options_same_run(&stored, run_cwd, expected, cwd, what, size);
    stored_args_free(&a);
    return same;
}

static stored_args kept_args; /* the strings the resumed options point into */

char *resume_argv_json(const train_options *o)
{
    char epochs[16], horizon[16], threads[16], every[24];
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(horizon, sizeof horizon, "%d", o->decay_epochs);
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(every, sizeof every, "%lld", (long long)o->checkpoint_every);
    /* A cosine schedule's horizon is stated, so that the longer --epochs does not move it. */
    char *extra[8] = {"--epochs", epochs, "--threads", threads};
    int n_extra = 4;
    if (o->decay == NB_DECAY_COSINE) {
        extra[n_extra++] = "--decay-epochs";
        extra[n_extra++] = horizon;
    }
    if (o->checkpoint_every > 0) {
        extra[n_extra++] = "--checkpoint-every";
        extra[n_extra++] = every;
    }
    int argc = kept_args.argc + n_extra;
    char **argv = malloc((size_t)argc * sizeof *argv);
    if (!argv)
        return NULL;
    memcpy(argv, kept_args.argv, (size_t)kept_args.argc * sizeof *argv);
    memcpy(argv + kept_args.argc, extra, (size_t)n_extra * sizeof *argv);
    char *json = argv_json(argc, argv);
    free(argv);
    return json;
}

/* The line a cosine run extended by --epochs prints: the horizon it keeps, and the fresh run
 * it equals (the run's own arguments with the new --epochs and the old horizon, in the
 * directory resumed, wherever the run was started). */
static void say_kept_horizon(const train_options *o, const char *dir)
{
    char **kept = malloc((size_t)kept_args.argc * sizeof *kept);
    int n = kept ? train_args_without_length(kept_args.argc, kept_args.argv, kept) : 0;
    char epochs[16], horizon[16];
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(horizon, sizeof horizon, "%d", o->decay_epochs);
    size_t cap = 64 + 4 * strlen(dir) + 3;   /* "nabla", the six words at the end, quoted */
    for (int i = 0; i < n; i++)
        cap += 4 * strlen(kept[i]) + 3;
    char *command = malloc(cap);
    if (command) {
        command[0] = '\0';
        append_shell_word(command, cap, "nabla");
        for (int i = 0; i < n; i++)
            append_shell_word(command, cap, kept[i]);
        append_shell_word(command, cap, "--epochs");
        append_shell_word(command, cap, epochs);
        append_shell_word(command, cap, "--decay-epochs");
        append_shell_word(command, cap, horizon);
        append_shell_word(command, cap, "--out");
        append_shell_word(command, cap, dir);
    }
    char held[128] = "";
    if (o->epochs > o->decay_epochs) {
        nb_schedule s = train_schedule(o);
        snprintf(held, sizeof held, ": epochs %d to %d keep epoch %d's rate, %g",
                 o->decay_epochs + 1, o->epochs, o->decay_epochs,
                 (double)nb_lr_at(&s, o->decay_epochs - 1));
    }
    fprintf(stderr, "nabla: the cosine schedule keeps its %d-epoch horizon%s; this run equals "
                    "%s\n", o->decay_epochs, held,
            command ? command : "the run started with these --epochs and --decay-epochs");
    free(command);
    free(kept);
}

void resume_close(resume_point *p)
{
    if (p->open)
        nb_st_free(&p->file);
    p->open = 0;
    stored_args_free(&kept_args);
}

int resume_open(train_options *o, resume_point *p, int *exit_code)
{
    memset(p, 0, sizeof *p);
    *exit_code = EXIT_RUNTIME;
    const train_options given = *o;
    if (!realpath(given.resume, p->dir)) {
        cli_error("--resume %s: %s", given.resume, strerror(errno));
        return -1;
    }
    nb_error err;
    char note[1024];
    if (nb_checkpoint_open(p->dir, &p->file, p->used, sizeof p->used, note, sizeof note,
                           &err) != 0) {
        cli_error("cannot resume: %s", err.msg);
        return -1;
    }
    p->open = 1;
    if (note[0])
        fprintf(stderr, "nabla: %s\nnabla: resuming from the older checkpoint %s instead\n",
                note, p->used);

    const char *cwd = nb_st_meta_get(&p->file, META_CWD);
    p->metrics = nb_st_meta_get(&p->file, META_METRICS);
    if (!cwd || !p->metrics) {
        cli_error("cannot resume: %s was not written by nabla train (no '%s' or '%s' in its "
                  "metadata)", p->used, META_CWD, META_METRICS);
        return -1;
    }
    if (parse_stored_args(nb_st_meta_get(&p->file, META_ARGV), &kept_args, &err) != 0) {
        cli_error("cannot resume from %s: %s", p->used, err.msg);
        return -1;
    }
    if (chdir(cwd) != 0) {
        cli_error("cannot resume: the run was started in %s, which cannot be entered now: %s",
                  cwd, strerror(errno));
        return -1;
    }
    int code;
    if (train_options_parse(o, kept_args.argc, kept_args.argv, &code) != 0) {
        cli_error("cannot resume: the arguments stored in %s no longer parse", p->used);
        return -1;
    }
    if (given.given_epochs) {
        if (given.epochs < o->epochs) {
            *exit_code = cli_usage_error(CMD, "--epochs %d is fewer than the run's %d; --resume "
                                              "can extend a run, not shorten it",
                                         given.epochs, o->epochs);
            return -1;
        }
        int extended = given.epochs > o->epochs;
        if (extended)
            p->extended_from = o->epochs;
        /* o->decay_epochs stays: the horizon is the run's, and the epochs trained so far
         * followed it. */
        o->epochs = given.epochs;
        if (extended && o->decay == NB_DECAY_COSINE)
            say_kept_horizon(o, p->dir);
    }
    if (given.given_threads) {
        o->threads = given.threads;
        o->given_threads = 1;   /* chosen, not the default (cmd_train shares that among ranks) */
    }
    if (given.quiet)
        o->quiet = 1;
    if (given.given_checkpoint_every)
        o->checkpoint_every = given.checkpoint_every;
    o->out = p->dir;
    o->resume = p->dir;
    /* The weights come from the checkpoint, not from the file the run started from. */
    o->init_weights = NULL;
    return 0;
}
