/* nabla report: one HTML file with the charts of a run, of several runs overlaid, or of a
 * study. The page is built whole in memory and written atomically: a failure leaves no half
 * report (and an earlier report as it was). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common/dir_kind.h"
#include "cli/common/options.h"
#include "cli/report/report_pages.h"
#include "io/fileio.h"
#include "io/paths.h"

static const char *const CMD = "report";

void usage_report(FILE *out)
{
    fprintf(out,
"usage: nabla report [options] DIR...\n"
"\n"
"Writes one self-contained HTML file of charts (inline SVG: it opens offline, in any\n"
"browser) and prints its path.\n"
"\n"
"  a run directory (nabla train --out DIR): the summary; loss and accuracy per epoch (train,\n"
"      dev, test) and the learning rate; the curves every N steps (steps.jsonl) and the\n"
"      15th/50th/85th percentiles of a hidden layer's inputs (trace.jsonl) when the run\n"
"      recorded them; for two-feature data (moons, circles, spirals, a two-column CSV) the\n"
"      decision regions of model.safetensors with the training points; the configuration\n"
"  several run directories: their curves overlaid, a colour per run, and their\n"
"      configurations side by side with the differences marked\n"
"  a study directory (nabla tune --out DIR): dev accuracy against each hyperparameter\n"
"      (log axes for log and 1-log ranges), the best so far, every trial's learning curve,\n"
"      parallel coordinates, the importance ranking, the leaderboard and the settings\n"
"\n"
"A study is reported on its own: give one study, or run directories only (a study's trials\n"
"are run directories: nabla report STUDY/trials/3 STUDY/trials/8 compares two of them).\n"
"\n"
"  --out FILE            where to write [DIR/report.html for one DIR, else ./report.html]\n"
"  --title T             the page's title [from the directory names]\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 written, 1 a directory or one of its files is missing or damaged (the message\n"
"names the file, and the line of a .jsonl file), 2 bad usage.\n"
"\n"
"Examples:\n"
"  nabla report runs/moons                   # writes runs/moons/report.html\n"
"  nabla report runs/sgd runs/momentum runs/adam --out optimizers.html\n"
"  nabla report runs/study --title \"lr and beta on moons\"\n");
}

enum { OPT_OUT = 256, OPT_TITLE };

static const struct option long_options[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"title", required_argument, NULL, OPT_TITLE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct report_options {
    const char *out;
    const char *title;
    char **dirs;
    int n_dirs;
} report_options;

/* Returns 0 to go on, or -1 with *exit_code set (0 after --help, 2 on bad usage). */
static int parse_options(report_options *o, int argc, char **argv, int *exit_code)
{
    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    int c;
    *exit_code = EXIT_USAGE;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_OUT:
            if (cli_parse_path(CMD, "--out", optarg, &o->out) != 0)
                return -1;
            break;
        case OPT_TITLE:
            if (optarg[0] == '\0') {
                cli_usage_error(CMD, "--title needs a text, got ''");
                return -1;
            }
            o->title = optarg;
            break;
        case 'h':
            usage_report(stdout);
            *exit_code = EXIT_OK;
            return -1;
        default: /* ':' or '?' */
            cli_option_error(CMD, c, argv);
            return -1;
        }
    }
    if (optind >= argc) {
        cli_usage_error(CMD, "give a run or study directory (nabla report DIR...)");
        return -1;
    }
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '\0') {
            cli_usage_error(CMD, "a directory name is empty");
            return -1;
        }
    o->dirs = argv + optind;
    o->n_dirs = argc - optind;
    return 0;
}

static int runtime_error(const nb_error *err)
{
    fprintf(stderr, "nabla: %s\n", err->msg);
    return EXIT_RUNTIME;
}

typedef enum report_kind { REPORT_RUN, REPORT_STUDY } report_kind;

/* What each directory is (dir_kind.h); a path that is no directory, or a directory that is
 * neither, is a runtime failure (the file system, not the command line, is at fault). */
static int classify(const report_options *o, report_kind *kinds, int *n_studies, nb_error *err)
{
    *n_studies = 0;
    for (int i = 0; i < o->n_dirs; i++) {
        const char *d = o->dirs[i];
        dir_contents c;
        if (dir_contents_read(d, &c, err) != 0)
            return -1;
        if (!c.exists)
            return nb_fail(err, "%s: no such directory", d);
        if (!c.is_dir)
            return nb_fail(err, "%s: not a directory (give a run or study directory)", d);
        if (c.study_file[0]) {
            kinds[i] = REPORT_STUDY;
            (*n_studies)++;
        } else if (c.run_file[0]) {
            kinds[i] = REPORT_RUN;
        } else {
            return nb_fail(err, "%s: neither a run directory (no config.json, metrics.jsonl, "
                                "...) nor a study (no study.json, journal.jsonl, ...)", d);
        }
    }
    return 0;
}

static int write_runs(const report_options *o, nb_strbuf *b, nb_error *err)
{
    run_data *runs = calloc((size_t)o->n_dirs, sizeof *runs);
    if (!runs)
        return nb_fail(err, "out of memory");
    int loaded = 0, rc = 0;
    for (; loaded < o->n_dirs && rc == 0; loaded++)
        if (run_load(&runs[loaded], o->dirs[loaded], err) != 0)
            rc = -1;
    if (rc == 0)
        rc = report_runs_page(b, runs, o->n_dirs, o->title, err);
    for (int i = 0; i < loaded; i++)
        run_free(&runs[i]);
    free(runs);
    return rc;
}

static int write_study(const report_options *o, nb_strbuf *b, nb_error *err)
{
    study_data s;
    if (study_load(&s, o->dirs[0], err) != 0)
        return -1;
    int rc = report_study_page(b, &s, o->title, err);
    study_free(&s);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    report_options o;
    int code;
    if (parse_options(&o, argc, argv, &code) != 0)
        return code;
    nb_error err = {{0}};
    report_kind *kinds = malloc((size_t)o.n_dirs * sizeof *kinds);
    if (!kinds) {
        fprintf(stderr, "nabla: out of memory\n");
        return EXIT_RUNTIME;
    }
    int n_studies;
    if (classify(&o, kinds, &n_studies, &err) != 0) {
        free(kinds);
        return runtime_error(&err);
    }
    free(kinds);
    if (n_studies > 0 && o.n_dirs > 1)
        return cli_usage_error(CMD, "a study is reported on its own: give one study, or run "
                                    "directories only (a study's trials/N are run directories)");

    char *out = o.out ? strdup(o.out)
                      : o.n_dirs == 1 ? path_join(o.dirs[0], "report.html") : strdup("report.html");
    nb_strbuf b = {0};
    int rc = out ? 0 : nb_fail(&err, "out of memory");
    /* Not over one of nabla's own files (a run's metrics.jsonl, a lock: dir_kind.h); a
     * report.html anywhere is a report's. */
    if (rc == 0)
        rc = dir_check_output(out, "--out", NULL, "report.html", &err);
    if (rc == 0)
        rc = n_studies ? write_study(&o, &b, &err) : write_runs(&o, &b, &err);
    if (rc == 0 && b.failed)
        rc = nb_fail(&err, "out of memory");
    if (rc == 0)
        rc = nb_write_file_atomic(out, b.data, b.len, &err);
    if (rc == 0)
        printf("wrote %s\n", out);
    nb_sb_free(&b);
    free(out);
    return rc == 0 ? EXIT_OK : runtime_error(&err);
}
