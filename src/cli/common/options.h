/* Shared by the subcommands: strict parsing of option values, and loading the data sets named
 * by --data / --test. Parsing functions print the one-line usage message themselves (the CLI
 * exits 2 on bad usage); loading functions fill an nb_error (the CLI exits 1 on those). */
#ifndef NABLA_CLI_OPTIONS_H
#define NABLA_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "nabla.h"

/* Prints "nabla <cmd>: <message>" on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "nabla: <message>" on stderr, notes the message (cli_last_error) and returns
 * EXIT_RUNTIME: how a command says why it fails. */
int cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Notes a message as the reason the command fails, without printing it (for a reason worded
 * otherwise than the lines printed). */
void cli_note_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The last message cli_usage_error, cli_error or cli_note_error noted ("" if none): what a
 * trial of `nabla tune` tells the tuner as the reason it stopped (trial_channel.h). */
const char *cli_last_error(void);

/* While quiet is set, cli_usage_error and cli_error note their message (cli_last_error)
 * without printing it: for values read from a file and checked with the command line's own
 * checks, whose reader gives the message itself, with the file and the line. Returns what it
 * was before, to be put back. */
int cli_errors_quiet(int quiet);
/* Whether they are (cli_errors_quiet). */
int cli_errors_quieted(void);

/* The message for what getopt_long returned as ':' (an option without its value) or anything
 * else it did not know ('?'), from argv and getopt's optind/optopt; returns EXIT_USAGE. */
int cli_option_error(const char *cmd, int c, char **argv);

/* Whole-string conversions: no empty string, no leading blanks, no trailing characters, no
 * overflow. Return 0, or -1 after printing "nabla <cmd>: <opt> expects ..., got '<s>'". */
int cli_parse_int(const char *cmd, const char *opt, const char *s, int *out);
int cli_parse_i64(const char *cmd, const char *opt, const char *s, int64_t *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
/* Accepts finite numbers only (no nan, no inf), and only those that stay finite as a 32-bit
 * float, the type the library computes in. */
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);

/* Appends the word w to the command line in buf (a space before it unless buf is empty),
 * single-quoted for a POSIX shell when it needs it; cut short rather than overflow cap. */
void append_shell_word(char *buf, size_t cap, const char *w);

/* The longest path accepted for --out (the run directory's buffer), with its terminator. */
#define CLI_MAX_PATH 4096

/* A file or directory name: refuses an empty one ("<opt> needs a file name, got ''"), which
 * would otherwise pass every check up front and fail only when the run writes its results. */
int cli_parse_path(const char *cmd, const char *opt, const char *s, const char **out);

/* The online cores (sysconf), at least 1. */
int cli_default_threads(void);

/* What --data names. */
typedef enum data_kind { DATA_IDX, DATA_CSV, DATA_SYNTHETIC } data_kind;

typedef struct data_source {
    const char *data;   /* as given: "fashion-mnist", a directory, a CSV file ("-": standard
                           input), a synthetic name */
    const char *test;   /* --test CSV, or NULL */
    int no_test;        /* --test none: no test set at all (IDX and synthetic sets have one) */
    int samples;        /* synthetic training samples */
    double noise;       /* synthetic noise */
    uint64_t seed;      /* synthetic training set; its test set uses seed + 1; the splits */
    /* How CSV files are read: --target, --header, --delimiter, --missing,
     * --allow-many-classes; csv.task is --task (classification unless set); csv.like, when set
     * (eval, predict: the model's table), reads the files the way training read its own. */
    nb_csv_options csv;
    double test_fraction;   /* --test-fraction: a seeded part of a CSV --data held out as the
                               test set (0: none) */
} data_source;

/* The seed of the --test-fraction split, apart from the dev split's (seed). */
#define DATA_TEST_SPLIT_SEED(seed) ((seed) ^ UINT64_C(0x7465737473706c74))

/* Parses one of the CSV flags (--target, --header, --delimiter, --missing,
 * --allow-many-classes, --test-fraction; flag with its dashes, arg NULL for the flag without a
 * value) into src. Returns 1 when flag is not one of them, 0 when parsed, -1 after printing
 * the usage error. */
int data_csv_option(const char *cmd, const char *flag, const char *arg, data_source *src);
/* Their entries in a getopt_long table, each returning `code`. */
#define DATA_CSV_LONG_OPTIONS(code)                                                         \
    {"target", required_argument, NULL, (code)}, {"header", required_argument, NULL, (code)},  \
        {"delimiter", required_argument, NULL, (code)},                                     \
        {"missing", required_argument, NULL, (code)},                                       \
        {"allow-many-classes", no_argument, NULL, (code)},                                  \
        {"test-fraction", required_argument, NULL, (code)}
/* Whether any of them was given (they need CSV data). */
int data_csv_options_given(const data_source *src);
/* Their help lines. */
const char *data_csv_usage(void);
/* Their values as text, for config.json and the messages: "auto"/"yes"/"no",
 * "auto"/","/";"/"tab", "error"/"drop"/"mean". */
const char *data_header_name(int header);
const char *data_delimiter_name(char delimiter);
const char *data_missing_name(nb_missing missing);

/* Where the data comes from, decided from the name and the file system without reading any
 * data: "fashion-mnist" and directories are IDX, synthetic names are synthetic, and a regular
 * file, a FIFO or pipe (/dev/stdin) and "-" (standard input) are CSV. *path is the directory or
 * file (or the synthetic name). Fails (runtime) when the path does not exist or is none of
 * those. */
int data_classify(const char *data, data_kind *kind, const char **path, nb_error *err);
const char *data_kind_name(data_kind kind);

/* --samples at most: the planar sets are for seeing an optimizer work, and ten million points
 * already take seconds to generate; a mistyped 2000000000 fails at once instead of running
 * for minutes through gigabytes. */
#define CLI_MAX_SAMPLES 10000000

/* Samples in the synthetic test set for a training set of `samples`: max(200, samples/4). */
int synthetic_test_samples(int samples);

/* dir/name.gz if it exists, else dir/name (whose absence the loader then reports). */
void data_idx_file(const char *dir, const char *name, char *out, size_t size);

/* Loads the training set and the test set (empty when there is none) for `nabla train`.
 * Checks that float data is finite. A CSV --test is read like the training set (its table:
 * columns by name, categories, classes); with --test-fraction the test set is a seeded part of
 * the CSV --data (DATA_TEST_SPLIT_SEED). */
int data_load_train(const data_source *src, nb_dataset *train, nb_dataset *test, nb_error *err);

/* Loads only the set `nabla eval` measures: the t10k pair of an IDX directory, the --test CSV
 * if given, else the CSV named by --data (with --test-fraction: its test part, as train split
 * it), or the synthetic test set (seed + 1). CSV files are read as src->csv says. */
int data_load_eval(const data_source *src, nb_dataset *test, nb_error *err);

/* The line that says what a CSV file gave ("data train.csv: 1000 samples, 2 features; line 1
 * is a header (no number in it), not a sample"), so that taking line 1 for a header or for a sample is never
 * silent. role is "data" or "test"; samples counts the file's samples (a dev split included), and
 * is left out when negative. */
void data_describe_csv(FILE *out, const char *role, const char *path, const nb_dataset *d,
                       int samples, const nb_csv_options *csv);

/* The data set d, read from `what`, against a model or a training set (`against`, for the
 * message: "the model"): it has `features` features and its labels are below `classes` (a set
 * of targets, regression or multilabel: `classes` target columns). The
 * first label that is not is named by its line when d is a CSV file as read (first_line > 0:
 * its sample i is on line first_line + i), else by its sample number. */
int data_check_fits(const nb_dataset *d, const char *what, int first_line, const char *against,
                    int features, int classes, nb_error *err);

#endif /* NABLA_CLI_OPTIONS_H */
