/* nabla tune: hyperparameter search over `nabla train` runs (see usage_tune). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/common/options.h"
#include "cli/common/output.h"
#include "cli/common/stop_signals.h"
#include "cli/tune/tune_agent.h"
#include "cli/tune/tune_data.h"
#include "cli/tune/tune_models.h"
#include "cli/tune/tune_options.h"
#include "cli/tune/tune_report.h"
#include "cli/tune/tune_run.h"
#include "cli/tune/tune_study.h"

/* --dry-run: the configurations that depend on no result: the first round's (later rounds
 * and TPE's trials depend on the results before them). */
static int dry_run(tune_options *o)
{
    tune_rules rules = {o, NULL, NULL};
    nb_study_config cfg;
    tune_study_config(&rules, &cfg);
    nb_study *s;
    nb_error err;
    nb_search_point p;
    int i, asked = 0, shown = 0;
    int rc = nb_study_open(&s, NULL, &cfg, &err);
    while (rc == 0 && (asked = nb_study_ask(s, &i, &p, &err)) == 1) {
        printf("trial %d: ", i);
        print_params(stdout, &o->space, &p);
        printf("\n");
        shown++;
    }
    if (rc == 0 && asked == 0 && shown < o->trials && o->rounds > 1)
        printf("(rounds 2 to %d, trials %d to %d, are drawn from narrower ranges around the best "
               "trials of the rounds before them)\n", o->rounds, shown, o->trials - 1);
    else if (rc == 0 && asked == 0 && shown < o->trials)
        printf("(trials %d to %d are drawn by TPE from the results of the trials before them: "
               "trial i from those of trials 0 to i-%d)\n", shown, o->trials - 1,
               o->tpe_lag + 1);
    nb_study_close(s);
    if (rc != 0 || asked < 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static void print_start(const study *s)
{
    int threads_per_trial = tune_threads_per_trial(s->opt);
    const tune_options *o = s->opt;
    int finished = 0, running = 0;
    for (int i = 0; i < o->trials; i++) {
        const trial *t = &s->engine->trials[i];
        finished += trial_finished(t);
        running += t->state == NB_TRIAL_RUNNING || t->state == NB_TRIAL_INTERRUPTED;
    }
    char ranks[32] = "";
    if (job_size() > 1)
        snprintf(ranks, sizeof ranks, "%d ranks x ", job_size());
    char lag[32] = "";
    if (o->sampler == SAMPLER_TPE)
        snprintf(lag, sizeof lag, " (lag %d)", o->tpe_lag);
    printf("study %s: %d trials, %s sampler%s, %d round%s, prune %s, %s%d worker%s x %d "
           "thread%s\n",
           s->dir, o->trials, tune_sampler_name(o->sampler), lag, o->rounds,
           o->rounds == 1 ? "" : "s", nb_prune_name(o->prune), ranks, o->workers,
           o->workers == 1 ? "" : "s", threads_per_trial, threads_per_trial == 1 ? "" : "s");
    if (finished || running)
        printf("continuing: %d finished, %d to restart from their checkpoints\n", finished,
               running);
    if (output_flush() != 0)
        stop_for_output();   /* no trial starts: the study stops as on Ctrl-C */
}

/* What a second Ctrl-C says, after it stopped the running trials at once too. */
#define TUNE_AT_ONCE_NOTE                                                                      \
    "nabla: the running trials stopped at once too, each keeping its last checkpoint; the "     \
    "study directory is intact: the same command continues the study\n"

/* How a study that stopped part way ends: what stopped it, and how to go on. */
static int study_stopped(int code)
{
    if (code == EXIT_OUTPUT_LOST) {
        fprintf(stderr, "nabla: cannot write standard output: %s\n", output_error());
        output_failure_told();
    }
    fprintf(stderr, "nabla: study stopped; the running trials kept their checkpoints. "
                    "Run the same command again to continue.\n");
    return code;
}

static int tune(int argc, char **argv)
{
    tune_options o;
    int code = EXIT_OK;
    if (tune_options_parse(&o, argc, argv, &code) != 0) {
        tune_options_free(&o);
        return code;
    }
    if (o.dry_run) {
        code = dry_run(&o);
        tune_options_free(&o);
        return code;
    }
    /* A missing data set would fail every trial: say it once, before the study starts. */
    nb_error err;
    data_kind kind;
    const char *path, *data = "fashion-mnist";
    for (int i = 0; i < o.n_fixed; i++)
        if (strcmp(o.fixed[i].flag, "--data") == 0)
            data = o.fixed[i].value;
    if (data_classify(data, &kind, &path, &err) != 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        tune_options_free(&o);
        return EXIT_RUNTIME;
    }
    /* Nor is a model that does not fit the data left for every trial that draws it to find. */
    if (tune_check_models(&o, &code) != 0) {
        tune_options_free(&o);
        return code;
    }
    /* From here on a Ctrl-C stops the study with checkpoints (the first), or at once without
     * leaving temporary files behind (the second). */
    stop_note_set(TUNE_AT_ONCE_NOTE);
    stop_signals_install();
    study s;
    if (study_open(&s, &o, &code) != 0) {
        study_close(&s);
        tune_options_free(&o);
        return code;
    }
    if (tune_prepare_data(s.dir, data, &s.trial_data, &err) < 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        study_close(&s);
        tune_options_free(&o);
        return EXIT_RUNTIME;
    }
    if (!o.quiet)
        print_start(&s);
    int rc = study_run(&s, &err);
    if (rc < 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        if (job_lost())
            fputs(TUNE_CONTINUE_LINE, stderr);
        code = EXIT_RUNTIME;
    } else if (rc == STUDY_INTERRUPTED) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else if (rc > 0) {
        code = study_stopped(rc);
    } else if ((rc = study_report(&s, &err)) > 0) {
        /* What was under way, and how to go on, are study_report's to say. */
        fprintf(stderr, "nabla: stopped by %s during %s\n", stop_signal_name(rc), err.msg);
        code = stop_exit_code(rc);
    } else if (rc < 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        code = EXIT_RUNTIME;
    }
    study_close(&s);
    tune_options_free(&o);
    return code;
}

/* Under mpirun, rank 0 runs the study and the other ranks run its trials (tune_agent.h). */
int cmd_tune(int argc, char **argv)
{
    if (job_rank() != 0)
        return tune_agent_run();
    int code = tune(argc, argv);
    tune_agents_done(code);
    return code;
}
