/* --resume: the run's own arguments come back from its checkpoint and are parsed again, in the
 * working directory they were given in, so every relative path means what it meant; then the
 * few options a resumed run may change are laid over them. */
#include "cli/train/resume.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/common/options.h"
#include "io/fileio.h"
#include "io/paths.h"

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

void run_name_new(char name[RUN_NAME_SIZE])
{
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        /* No random source: the time and the process, unlikely to recur in one directory. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
        uint64_t b = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts;
        memcpy(bytes, &a, 8);
        memcpy(bytes + 8, &b, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(name + 2 * i, 3, "%02x", bytes[i]);
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

int resume_checkpoint_is_of(const nb_st_file *f, char **args, int argc, char *what,
                            size_t size, nb_error *err)
{
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return nb_fail(err, "cannot tell the working directory: %s", strerror(errno));
    train_options want;
    int code;
    if (train_options_parse(&want, argc, args, &code) != 0)
        return nb_fail(err, "its arguments no longer parse (a bug: please report it)");
    return resume_same_run(f, &want, cwd, what, size);
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

void resume_say_extension(const train_options *o, const resume_point *p)
{
    if (p->extended_from && o->decay == NB_DECAY_COSINE)
        say_kept_horizon(o, p->dir);
}

void resume_close(resume_point *p)
{
    if (p->open)
        nb_st_free(&p->file);
    p->open = 0;
    stored_args_free(&kept_args);
}

/* ---- whose run a checkpoint is ---- */

/* nb_checkpoint_open's files (nabla.h), newest first. */
static const char *const checkpoint_files[] = {
    "checkpoint.next.safetensors", "checkpoint.safetensors", "checkpoint.prev.safetensors"};
#define N_CHECKPOINT_FILES (sizeof checkpoint_files / sizeof checkpoint_files[0])

/* The run DIR/config.json names, or "" (no config.json, not readable, or of a version before
 * runs had names). */
static void config_run(const char *dir, char name[RUN_NAME_SIZE])
{
    name[0] = '\0';
    char *path = path_join(dir, "config.json");
    unsigned char *text = NULL;
    size_t n = 0;
    nb_error err;
    cJSON *j = path && nb_read_file(path, &text, &n, &err) == 0
                   ? cJSON_ParseWithLength((const char *)text, n)
                   : NULL;
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "run");
    if (cJSON_IsString(run) && strlen(run->valuestring) < RUN_NAME_SIZE)
        snprintf(name, RUN_NAME_SIZE, "%s", run->valuestring);
    cJSON_Delete(j);
    free(text);
    free(path);
}

/* Whether checkpoint f is of another run than `run`: both named, and not alike (a checkpoint
 * of a version before runs had names is taken as the run's). */
static int other_run(const nb_st_file *f, const char *run)
{
    const char *own = nb_st_meta_get(f, META_RUN);
    return own && run[0] && strcmp(own, run) != 0;
}

/* "run 0123abcd: nabla train --data moons ...", for messages (the name's first 8 digits,
 * the command cut short if long). */
static void describe_run(const nb_st_file *f, char *out, size_t cap)
{
    const char *run = nb_st_meta_get(f, META_RUN);
    stored_args a;
    nb_error err;
    char command[2048] = "";
    append_shell_word(command, sizeof command, "nabla");
    if (parse_stored_args(nb_st_meta_get(f, META_ARGV), &a, &err) == 0) {
        for (int i = 0; i < a.argc; i++)
            append_shell_word(command, sizeof command, a.argv[i]);
        stored_args_free(&a);
    }
    snprintf(out, cap, "run %.8s: %.160s%s", run ? run : "without a name", command,
             strlen(command) > 160 ? "..." : "");
}

/* The first checkpoint older than p->used that verifies and is of `run`, into *f; its path
 * into path. Returns 1 if found. */
static int older_of_run(const resume_point *p, const char *run, nb_st_file *f, char *path,
                        size_t cap)
{
    int older = 0;
    for (size_t k = 0; k < N_CHECKPOINT_FILES; k++) {
        char here[sizeof p->used];
        snprintf(here, sizeof here, "%.4000s/%s", p->dir, checkpoint_files[k]);
        if (!older) {
            older = strcmp(here, p->used) == 0;
            continue;
        }
        nb_error err;
        if (nb_checkpoint_read(here, f, &err) != 0)
            continue;
        if (!other_run(f, run)) {
            snprintf(path, cap, "%s", here);
            return 1;
        }
        nb_st_free(f);
    }
    return 0;
}

/* The checkpoint p->file is the directory's run's: the run its config.json names. When it is
 * another's, the newest older checkpoint of that run replaces it (said on stderr); when none
 * is, the resume is refused. Without a name in config.json, every older checkpoint must be of
 * the same run as p->file, or there is no telling which one is the directory's. Returns 0, or
 * -1 with the message printed. */
static int check_directory_run(resume_point *p)
{
    char run[RUN_NAME_SIZE], have[256], want[256], path[sizeof p->used];
    nb_st_file f;
    config_run(p->dir, run);
    if (!run[0]) {
        for (size_t k = 0; k < N_CHECKPOINT_FILES; k++) {
            char here[sizeof p->used];
            nb_error err;
            snprintf(here, sizeof here, "%.4000s/%s", p->dir, checkpoint_files[k]);
            if (strcmp(here, p->used) == 0 || nb_checkpoint_read(here, &f, &err) != 0)
                continue;
            const char *mine = nb_st_meta_get(&p->file, META_RUN);
            int other = mine && other_run(&f, mine);
            if (other) {
                describe_run(&p->file, have, sizeof have);
                describe_run(&f, want, sizeof want);
            }
            nb_st_free(&f);
            if (other) {
                cli_error("cannot resume: %s (%s) and %s (%s) are checkpoints of two runs, and "
                          "%s/config.json, which tells the directory's, is missing or names "
                          "none: put it back, or remove the checkpoint that is not the run's",
                          p->used, have, here, want, p->dir);
                return -1;
            }
        }
        return 0;
    }
    if (!other_run(&p->file, run))
        return 0;
    describe_run(&p->file, have, sizeof have);
    if (older_of_run(p, run, &f, path, sizeof path)) {
        fprintf(stderr, "nabla: %s is another run's checkpoint (%s), not the run of %s/"
                        "config.json (run %.8s)\nnabla: resuming from the older checkpoint %s "
                        "instead\n", p->used, have, p->dir, run, path);
        nb_st_free(&p->file);
        p->file = f;
        snprintf(p->used, sizeof p->used, "%s", path);
        return 0;
    }
    cli_error("cannot resume: %s is another run's checkpoint (%s), not the run of %s/"
              "config.json (run %.8s), and no older checkpoint there is that run's: put the "
              "run's own checkpoint back, or resume the other run in its own directory",
              p->used, have, p->dir, run);
    return -1;
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
    if (check_directory_run(p) != 0)
        return -1;
    const char *run = nb_st_meta_get(&p->file, META_RUN);
    if (run && strlen(run) < RUN_NAME_SIZE)
        snprintf(p->run, sizeof p->run, "%s", run);
    else
        run_name_new(p->run);   /* a run of an older version gets its name now */

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
