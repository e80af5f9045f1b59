/* nabla: the command-line program. Dispatches to one file per subcommand.
 * Exit codes (options.h): 0 success, 1 runtime failure (bad file, diverged training, standard
 * output that could not be written), 2 bad usage; a run or study stopped with a checkpoint:
 * 130, 143 and 129 (SIGINT, SIGTERM, SIGHUP), 141 (its standard output could no longer be
 * written). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common/dir_kind.h"
#include "cli/common/options.h"
#include "cli/common/output.h"
#include "cli/common/self_exe.h"
#include "cli/mpi/mpi_comm.h"
#include "io/fileio.h"
#include "nabla.h"

static void usage_overview(FILE *out)
{
    fprintf(out,
"usage: nabla <command> [options]\n"
"\n"
"nabla %s: train and evaluate neural networks from the shell.\n"
"\n"
"Commands:\n"
"  train      train a classifier and write a run directory\n"
"  eval       evaluate a saved model on a test set\n"
"  predict    a saved model's predictions for new data (CSV, JSON Lines)\n"
"  tune       search hyperparameters: many train runs, scored on a dev split\n"
"  report     charts of runs or a study, in one HTML file that opens offline\n"
"  help [C]   this text, or the options of command C\n"
"\n"
"Options:\n"
"  -h, --help      this text\n"
"  --version       print the version\n"
"\n"
"Exit status: 0 on success, 1 on a runtime failure (a bad file, a diverged run, output that\n"
"could not be written), 2 on bad usage; a run or study stopped part way, with a checkpoint:\n"
"130 (Ctrl-C), 143 (SIGTERM), 129 (SIGHUP: the terminal went away), 141 (its output could\n"
"no longer be written: a closed pipe, a full disk). Every command takes --help.\n"
"\n"
"Examples:\n"
"  nabla train --epochs 5 --out runs/fashion\n"
"  nabla train --data moons --layers 16,16 --lr 0.01 --epochs 50 --out runs/moons\n"
"  nabla eval --model runs/fashion\n"
"  nabla predict --model runs/iris --data new_rows.csv --proba\n"
"  nabla tune --epochs 2 --trials 24 --workers 2 --prune asha --out runs/study\n"
"  mpirun -np 4 nabla train --batch-size 256 --out runs/four   # a nabla built with MPI\n"
"  nabla report runs/moons\n",
            NABLA_VERSION);
}

/* The whole manual: the overview and every command's options. */
static void usage_full(FILE *out)
{
    usage_overview(out);
    fputs("\n", out);
    usage_train(out);
    fputs("\n", out);
    usage_eval(out);
    fputs("\n", out);
    usage_predict(out);
    fputs("\n", out);
    usage_tune(out);
    fputs("\n", out);
    usage_report(out);
}

static int is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

static int help_command(int argc, char **argv)
{
    if (argc < 3) {
        usage_full(stdout);
        return EXIT_OK;
    }
    if (argc > 3)
        return cli_usage_error("help", "unexpected argument '%s'", argv[3]);
    if (strcmp(argv[2], "train") == 0)
        usage_train(stdout);
    else if (strcmp(argv[2], "eval") == 0)
        usage_eval(stdout);
    else if (strcmp(argv[2], "predict") == 0)
        usage_predict(stdout);
    else if (strcmp(argv[2], "tune") == 0)
        usage_tune(stdout);
    else if (strcmp(argv[2], "report") == 0)
        usage_report(stdout);
    else
        return cli_usage_error("help", "unknown command '%s' (train, eval, predict, tune, report)",
                               argv[2]);
    return EXIT_OK;
}

/* OpenBLAS starts its threads (one per core, which nabla never uses) in its constructor, when
 * it loads, before main. Under a tight address-space limit (ulimit -v 50000) creating them
 * fails, and OpenBLAS 0.3.21 then raises SIGINT, which would end the process as a Ctrl-C does
 * (exit 130) before nabla says a word. The program's .preinit_array runs before any shared
 * library's constructor (the environment cannot be changed there: libc has not set it up
 * yet), so SIGINT is ignored from then until main puts its disposition back: OpenBLAS goes on
 * without its threads, the restart below sets OPENBLAS_NUM_THREADS=1 (no threads at all), and
 * nabla's own memory checks say what does not fit. */
static struct sigaction sigint_before_load;

static void ignore_sigint_while_loading(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    (void)envp;
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ignore, &sigint_before_load);
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit)(
    int, char **, char **) = ignore_sigint_while_loading;

/* OpenBLAS set itself up when it loaded, before main. Two of its choices are wrong for nabla,
 * and only its environment variables change them, so the program starts again, once, with them
 * set (an exec costs milliseconds):
 * - its kernels: on a CPU newer than itself it falls back to generic ones (src/core/blas_kernel.c
 *   tells); OPENBLAS_CORETYPE naming the better ones makes matrix products 3 to 5 times faster;
 * - its threads: it starts one per core, which nabla never uses (the library's own pool runs
 *   OpenBLAS on one thread), but which spin for about 0.1 s of CPU first; short runs, such as
 *   `nabla tune`'s trials, side by side, lose that much each. OPENBLAS_NUM_THREADS=1
 *   starts none.
 * Values the user set are left alone. If the restart fails, carry on as we are.
 *
 * Under a tool that runs nabla inside its own process (valgrind, the dynamic loader started by
 * hand: self_exe.h) there is no restart: an exec would start the tool's program rather than
 * nabla, or leave the tool and run nabla unchecked, which is not what its user wants. nabla then
 * runs with OpenBLAS's own choices (the kernel it picked, recorded in config.json; its idle
 * threads), which change its speed, not its results' validity. The environment is left as it
 * was, so the programs it starts (tune's trials) make their own choice. */
static void restart_with_better_blas(char **argv)
{
    if (!self_exe_is_program())
        return;
    int restart = 0;
    if (!getenv("OPENBLAS_NUM_THREADS") && setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        restart = 1;
    const char *better = getenv("OPENBLAS_CORETYPE") ? NULL : nb_blas_better_kernel();
    if (better && setenv("OPENBLAS_CORETYPE", better, 1) == 0)
        restart = 1;
    if (restart)
        execv(self_exe_path(), argv);
}

/* Why this program has no MPI (CMakeLists.txt says it): none found, or left out on purpose. */
static const char *without_mpi_why(void)
{
#ifdef NABLA_WITHOUT_MPI_WHY
    return NABLA_WITHOUT_MPI_WHY;
#else
    return "its build did not say why";   /* a build with MPI: not asked */
#endif
}

static int version(void)
{
    printf("nabla %s\n", NABLA_VERSION);
    const char *mpi = job_mpi_library();
    if (mpi)
        printf("with MPI: %s\n", mpi);
    else
        printf("without MPI (%s)\n", without_mpi_why());
    return EXIT_OK;
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        usage_overview(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd) || strcmp(cmd, "help") == 0)
        return help_command(argc, argv);
    if (strcmp(cmd, "--version") == 0)
        return version();
    /* Under mpirun with several processes, only train and tune divide their work among them;
     * the other commands would each run N times over. */
    if (job_size() > 1 && strcmp(cmd, "train") != 0 && strcmp(cmd, "tune") != 0) {
        if (job_rank() == 0) {
            nb_error e;
            nb_fail(&e, "'%s' runs on one process; of the commands, only train and tune run "
                        "under mpirun with several (-np %d)", cmd, job_size());
            fprintf(stderr, "nabla: %s\n", e.msg);
        }
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "predict") == 0)
        return cmd_predict(argc - 1, argv + 1);
    if (strcmp(cmd, "tune") == 0)
        return cmd_tune(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    nb_error e;   /* nb_fail keeps a command name with a line break in it on one line */
    nb_fail(&e, "unknown command '%s' (train, eval, predict, tune, report, help)", cmd);
    fprintf(stderr, "nabla: %s\n", e.msg);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* A file size limit (ulimit -f) kills a process that writes past it with SIGXFSZ: no
     * message, its temporary files left behind. Ignored, the write fails with EFBIG instead,
     * which every writer reports as it does a full disk ("File too large"). Before anything,
     * and kept across the restart's exec and into the trials nabla tune starts. */
    signal(SIGXFSZ, SIG_IGN);
    sigaction(SIGINT, &sigint_before_load, NULL);   /* as it was before OpenBLAS loaded */
    /* The restart is an exec, which must come before MPI starts (mpirun's environment goes
     * along with it). */
    self_exe_init();
    restart_with_better_blas(argv);
    output_start();
    /* No file is written through a link to one of nabla's own files (dir_kind.h). */
    nb_set_link_guard(dir_link_guard);
    int code = job_start(&argc, &argv);
    if (code == EXIT_OK)
        code = run_command(argc, argv);
    /* What every command printed must have got out, to the last flush. */
    code = output_finish(code);
    return job_end(code);
}
