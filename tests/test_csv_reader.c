/* The CSV reader as people's files need it (nb_read_csv / nb_parse_csv_with): delimiters,
 * quotes, headers, gzip, standard input and FIFOs, target columns, classes, missing values,
 * categorical features, reading like a training table; and the table's JSON form.
 * (The number parser, text checks and older rules: test_data.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <zlib.h>

#include "io/table_json.h"
#include "nabla.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nabla_test_csv_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* Reads text with options o (NULL: defaults); fails the test with the message if refused. */
static void read_ok(const char *text, const nb_csv_options *o, nb_dataset *d)
{
    nb_error err = {""};
    if (nb_parse_csv_with(text, strlen(text), "t.csv", o, d, &err) != 0)
        fail_msg("refused: %s", err.msg);
    assert_non_null(d->table);
}

/* Expects text to be refused with exactly "t.csv" + rest. */
static void read_refused(const char *text, const nb_csv_options *o, const char *rest)
{
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_csv_with(text, strlen(text), "t.csv", o, &d, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "t.csv%s", rest);
    assert_string_equal(err.msg, want);
    assert_true(d.n == 0 && !d.values && !d.labels && !d.target && !d.table);
}

static void expect_values(const nb_dataset *d, const float *want, int n)
{
    assert_int_equal(d->n * d->features, n);
    for (int i = 0; i < n; i++)
        if (d->values[i] != want[i])
            fail_msg("value %d: %g, want %g", i, (double)d->values[i], (double)want[i]);
}

static void expect_labels(const nb_dataset *d, const int32_t *want, int n)
{
    assert_int_equal(d->n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(d->labels[i], want[i]);
}

static void expect_classes(const nb_dataset *d, const char *const *names, int n)
{
    assert_int_equal(d->classes, n);
    assert_int_equal(d->table->n_classes, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(d->table->class_names[i], names[i]);
}

/* ---- delimiters, quotes, headers ------------------------------------------------------- */

static void test_delimiters(void **state)
{
    (void)state;
    static const char *const files[] = {
        "a,b,y\n1.5,2,0\n3,4.25,1\n",
        "a;b;y\n1,5;2;0\n3;4,25;1\n",        /* decimal commas: ';' must win over ',' */
        "a;b;y\n1.5;2;0\n3;4.25;1\n",
        "a\tb\ty\n1.5\t2\t0\n3\t4.25\t1\n",
        "a\t b\ty\n1.5 \t2\t0\n 3\t4.25\t1\r\n",  /* spaces around tab-separated fields */
        "a, b, y\n1.5, 2, 0\n3,\t4.25, 1\n",    /* a tab around a ','-separated field */
        "\"a\";\"b\";\"y\"\n\"1,5\";2;0\n3;\"4,25\";\"1\"\n",
    };
    static const char delimiters[] = {',', ';', ';', '\t', '\t', ',', ';'};
    const float want[] = {1.5f, 2, 3, 4.25f};
    for (int i = 0; i < 7; i++) {
        nb_dataset d;
        read_ok(files[i], NULL, &d);
        assert_int_equal(d.table->delimiter, delimiters[i]);
        assert_int_equal(d.header, 1);
        expect_values(&d, want, 4);
        expect_labels(&d, (const int32_t[]){0, 1}, 2);
        nb_dataset_free(&d);
    }
    /* Given rather than detected; and a delimiter that does not fit is named by its line. */
    nb_csv_options o = {.delimiter = ';'};
    nb_dataset d;
    read_ok("a;b,c;y\n1;2;0\n", &o, &d);
    assert_int_equal(d.features, 2);
    assert_string_equal(d.table->columns[1].name, "b,c");
    nb_dataset_free(&d);
    o.delimiter = ',';
    read_refused("a;b;y\n1;2;0\n", &o,
                 ":1:1: expected at least 2 fields (features, then a label), found 1");
    read_refused("a,b,y\n1,2,0\n1;2;0\n", NULL, ":3:6: expected 3 fields, found 1");
    o.delimiter = '|';
    read_refused("a|b\n", &o, ": the delimiter must be ',', ';' or a tab");
}

static void test_quotes(void **state)
{
    (void)state;
    nb_dataset d;
    /* a delimiter, doubled quotes and a line break inside quotes; a quoted number is a number */
    read_ok("name,\"size, cm\",class\n"
            "\"Smith, J\",\"1.5\",\"a \"\"b\"\"\"\n"
            "\"two\nlines\", 2 ,c\n"
            "x,\"3\",c\n", NULL, &d);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.table->columns[1].name, "size, cm");
    assert_int_equal(d.table->columns[0].kind, NB_COLUMN_CATEGORY);
    assert_int_equal(d.table->columns[0].n_categories, 3);
    assert_string_equal(d.table->columns[0].categories[0], "Smith, J");
    assert_string_equal(d.table->columns[0].categories[1], "two\nlines");
    assert_int_equal(d.table->columns[1].kind, NB_COLUMN_NUMBER);
    expect_classes(&d, (const char *const[]){"a \"b\"", "c"}, 2);
    expect_values(&d, (const float[]){1, 0, 0, 1.5f, 0, 1, 0, 2, 0, 0, 1, 3}, 12);
    nb_dataset_free(&d);
    /* errors after a quoted line break name the right line */
    read_refused("a,b\n\"x\ny\",1\n1,2,3\n", NULL, ":4:5: expected 2 fields, found 3");
    read_refused("a,b\n1,\"2\n", NULL, ":2:3: a quoted field without its closing quote");
    read_refused("a,b\n1,\"2\"x\n", NULL,
                 ":2:6: 'x' after the closing quote of a quoted field (a quote inside quotes "
                 "is written twice: \"\")");
}

static void test_headers(void **state)
{
    (void)state;
    nb_dataset d;
    /* an all-numeric header line, declared */
    nb_csv_options yes = {.header = 1}, no = {.header = 2};
    read_ok("1990,1991,2000\n1,2,0\n3,4,1\n", &yes, &d);
    assert_int_equal(d.header, 1);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.table->columns[2].name, "2000");
    nb_dataset_free(&d);
    /* the same detected: data */
    read_ok("1990,1991,2000\n1,2,0\n3,4,1\n", NULL, &d);
    assert_int_equal(d.header, 0);
    assert_int_equal(d.n, 3);
    assert_null(d.table->columns[0].name);
    nb_dataset_free(&d);
    /* a first line of words, declared data: its words are categories */
    read_ok("a,b\nc,d\n", &no, &d);
    assert_int_equal(d.header, 0);
    assert_int_equal(d.n, 2);
    expect_classes(&d, (const char *const[]){"b", "d"}, 2);
    nb_dataset_free(&d);
    /* declared data, but the words sit among numbers: refused at the word */
    read_refused("x,y,label\n1,2,0\n", &no,
                 ":1:1: field 1 'x' is not a number, but other fields of its column are (a "
                 "column is numbers, or words: categories)");
}

/* gzip'd bytes (any name), from memory and from a file */
static unsigned char *gzip_bytes(const char *text, size_t *n)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    size_t cap = deflateBound(&z, strlen(text)) + 32;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    z.next_in = (unsigned char *)text;
    z.avail_in = (unsigned)strlen(text);
    z.next_out = out;
    z.avail_out = (unsigned)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *n = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_gzip(void **state)
{
    (void)state;
    const char *text = "a;b;y\n1,5;2;x\n3;4;z\n";
    size_t n;
    unsigned char *gz = gzip_bytes(text, &n);
    nb_dataset d;
    nb_error err = {""};
    assert_int_equal(nb_parse_csv_with(gz, n, "t.csv.gz", NULL, &d, &err), 0);
    expect_values(&d, (const float[]){1.5f, 2, 3, 4}, 4);
    expect_classes(&d, (const char *const[]){"x", "z"}, 2);
    nb_dataset_free(&d);
    const char *path = tmp_path("data.bin");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(gz, 1, n, f), n);
    fclose(f);
    assert_int_equal(nb_read_csv(path, NULL, &d, &err), 0);
    assert_int_equal(d.n, 2);
    nb_dataset_free(&d);
    /* cut short: the gzip error, naming the source */
    assert_int_equal(nb_parse_csv_with(gz, n - 4, "t.csv.gz", NULL, &d, &err), -1);
    assert_string_equal(err.msg, "t.csv.gz: truncated: the gzip data ends before its end marker "
                                 "and checksum");
    free(gz);
}

/* Writes text into fd from a child process, then exits. */
static pid_t writer(int fd, const char *text)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t n = strlen(text), done = 0;
        while (done < n) {
            ssize_t w = write(fd, text + done, n - done);
            if (w <= 0)
                _exit(1);
            done += (size_t)w;
        }
        _exit(0);
    }
    return pid;
}

static void test_stdin_and_fifo(void **state)
{
    (void)state;
    /* A pipe on standard input ("-"), larger than a pipe's buffer. */
    char *text = malloc(200000);
    assert_non_null(text);
    size_t len = (size_t)sprintf(text, "x,y\n");
    for (int i = 0; i < 20000; i++)
        len += (size_t)sprintf(text + len, "%d,%d\n", i % 100, i % 3);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(0);
    assert_true(saved >= 0);
    assert_true(dup2(p[0], 0) == 0);
    close(p[0]);
    pid_t pid = writer(p[1], text);
    close(p[1]);
    nb_dataset d;
    nb_error err = {""};
    alarm(30);
    int rc = nb_read_csv("-", NULL, &d, &err);
    assert_true(dup2(saved, 0) == 0);
    close(saved);
    waitpid(pid, NULL, 0);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(d.n, 20000);
    assert_int_equal(d.classes, 3);
    nb_dataset_free(&d);

    /* an error from standard input names it "stdin" */
    assert_int_equal(pipe(p), 0);
    saved = dup(0);
    assert_true(dup2(p[0], 0) == 0);
    close(p[0]);
    pid = writer(p[1], "x,y\n1,2\n1\n");
    close(p[1]);
    rc = nb_read_csv("-", NULL, &d, &err);
    assert_true(dup2(saved, 0) == 0);
    close(saved);
    waitpid(pid, NULL, 0);
    assert_int_equal(rc, -1);
    assert_string_equal(err.msg, "stdin:3:2: expected 2 fields, found 1");

    /* a FIFO: its writer comes after the reader opened it */
    const char *fifo = tmp_path("fifo.csv");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(fifo, O_WRONLY);
        if (fd < 0)
            _exit(1);
        const char *t = "a,b\n1,x\n2,y\n";
        _exit(write(fd, t, strlen(t)) == (ssize_t)strlen(t) ? 0 : 1);
    }
    rc = nb_read_csv(fifo, NULL, &d, &err);
    waitpid(pid, NULL, 0);
    alarm(0);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(d.n, 2);
    nb_dataset_free(&d);
    free(text);
    /* devices and directories are still refused */
    assert_int_equal(nb_read_csv("/dev/null", NULL, &d, &err), -1);
    assert_string_equal(err.msg, "/dev/null: a character device, not a file or a pipe");
}

/* ---- targets and classes --------------------------------------------------------------- */

static void test_targets(void **state)
{
    (void)state;
    const char *text = "label,a,b\n3,1,2\n1,3,4\n2,5,6\n3,7,8\n";
    static const char *const specs[] = {"label", "0", " label "};
    for (int i = 0; i < 3; i++) {
        nb_csv_options o = {.target = specs[i]};
        nb_dataset d;
        read_ok(text, &o, &d);
        /* labels 1..3: three classes, not four */
        expect_classes(&d, (const char *const[]){"1", "2", "3"}, 3);
        expect_labels(&d, (const int32_t[]){2, 0, 1, 2}, 4);
        expect_values(&d, (const float[]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
        assert_int_equal(d.table->columns[0].kind, NB_COLUMN_TARGET);
        nb_dataset_free(&d);
    }
    /* a middle column by index, without a header */
    nb_csv_options mid = {.target = "1"};
    nb_dataset d;
    read_ok("0.5,-1,2\n0.25,1,3\n", &mid, &d);
    expect_classes(&d, (const char *const[]){"-1", "1"}, 2);
    expect_values(&d, (const float[]){0.5f, 2, 0.25f, 3}, 4);
    nb_dataset_free(&d);
    /* integers written as floats are the same class; classes sort as numbers */
    read_ok("x,y\n1,10\n2,9.0\n3,10.0\n4,-2\n", NULL, &d);
    expect_classes(&d, (const char *const[]){"-2", "9", "10"}, 3);
    expect_labels(&d, (const int32_t[]){2, 1, 2, 0}, 4);
    nb_dataset_free(&d);
    /* string labels, sorted bytewise */
    read_ok("x,species\n1,virginica\n2,setosa\n3,Versicolor\n4,setosa\n", NULL, &d);
    expect_classes(&d, (const char *const[]){"Versicolor", "setosa", "virginica"}, 3);
    expect_labels(&d, (const int32_t[]){2, 1, 0, 1}, 4);
    nb_dataset_free(&d);
    /* regression and multilabel: several target columns, by name and index */
    nb_csv_options reg = {.task = NB_TASK_REGRESSION, .target = "y1,3"};
    read_ok("x,y1,z,y2\n1,0.5,2,-3\n4,1.5,5,6e2\n", &reg, &d);
    assert_int_equal(d.targets, 2);
    assert_null(d.labels);
    assert_true(d.target[0] == 0.5f && d.target[1] == -3 && d.target[2] == 1.5f &&
                d.target[3] == 600);
    expect_values(&d, (const float[]){1, 2, 4, 5}, 4);
    nb_dataset_free(&d);
    nb_csv_options multi = {.task = NB_TASK_MULTILABEL, .target = "b,c"};
    read_ok("a,b,c\n1,true,0\n2,No,1.0\n3,YES,false\n", &multi, &d);
    assert_int_equal(d.targets, 2);
    static const float want[] = {1, 0, 0, 1, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_true(d.target[i] == want[i]);
    nb_dataset_free(&d);

    /* refusals name the columns there are */
    nb_csv_options bad = {.target = "lable"};
    read_refused(text, &bad, ":1: no column 'lable' for the target; the columns: 0 'label', "
                             "1 'a', 2 'b'");
    bad.target = "3";
    read_refused(text, &bad, ":1: no column number '3' for the target; the columns: 0 'label', "
                             "1 'a', 2 'b'");
    read_refused("1,2,3\n", &bad, ":1: no column number '3' for the target; the columns: 0 to 2 "
                                  "(no header line: columns are named by index)");
    bad.target = "a,b";
    read_refused(text, &bad, ": classification takes one target column, not 2 (several 0/1 "
                             "columns are a multilabel task)");
    bad.target = "a,a";
    read_refused(text, &bad, ": the target names column 1 twice");
    reg.target = "0,1,2";
    read_refused(text, &reg, ": every column is a target: no feature is left");
    reg.target = "a";
    read_refused("a,b\nx,1\n", &reg, ":2:1: target field 1 'x' is not a number (a regression "
                                     "target is numbers)");
    multi.target = "b";
    read_refused("a,b\n1,0\n2,2\n", &multi, ":3:3: target field 2 '2' is not 0 or 1 (a "
                                            "multilabel target is 0/1, false/true or no/yes)");
}

static void test_regression_looking_targets(void **state)
{
    (void)state;
    static const char why[] = ": that looks like a regression target, not classes; use --task "
                              "regression (or --allow-many-classes to take each value as a "
                              "class)";
    char want[400];
    /* a non-integer number, anywhere */
    snprintf(want, sizeof want, ":3:3: the target '151.5' is not an integer%s", why);
    read_refused("x,y\n1,150\n2,151.5\n", NULL, want);
    /* many distinct integers: 30 rows, 30 values */
    char text[1000] = "x,y\n";
    for (int i = 0; i < 30; i++)
        sprintf(text + strlen(text), "%d,%d\n", i, 25 + 7 * i);
    snprintf(want, sizeof want, ":1:3: the target has 30 distinct values in 30 rows%s", why);
    read_refused(text, NULL, want);
    /* the same without a header: the first row's field */
    snprintf(want, sizeof want, ":1:3: the target has 30 distinct values in 30 rows%s", why);
    read_refused(text + 4, NULL, want);
    /* the user insists */
    nb_csv_options allow = {.allow_many_classes = 1};
    nb_dataset d;
    read_ok(text, &allow, &d);
    assert_int_equal(d.classes, 30);
    nb_dataset_free(&d);
    read_ok("x,y\n1,0.5\n2,0.25\n3,0.5\n", &allow, &d);
    expect_classes(&d, (const char *const[]){"0.25", "0.5"}, 2);
    nb_dataset_free(&d);
    /* 20 classes in 30 rows are classes; 21 in 200 rows too (a tenth is 20) */
    text[4] = '\0';
    for (int i = 0; i < 30; i++)
        sprintf(text + strlen(text), "%d,%d\n", i, i % 20);
    read_ok(text, NULL, &d);
    assert_int_equal(d.classes, 20);
    nb_dataset_free(&d);
    char *big = malloc(4000);
    assert_non_null(big);
    strcpy(big, "x,y\n");
    for (int i = 0; i < 220; i++)
        sprintf(big + strlen(big), "%d,%d\n", i, i % 21);
    read_ok(big, NULL, &d);
    assert_int_equal(d.classes, 21);
    nb_dataset_free(&d);
    free(big);
    /* numbers and words mixed: a damaged label, or a header read as data */
    read_refused("x,y\n1,a\n2,b\n3,4\n", NULL,
                 ":4:3: the target '4' is a number, but other targets are words (classes are "
                 "all numbers or all words)");
}

/* ---- missing values and categories ------------------------------------------------------- */

static void test_missing(void **state)
{
    (void)state;
    const char *text = "a,b,c,y\n1,NA,x,0\n3,4,,1\n5,?,y,1\n,8,x,0\n";
    read_refused(text, NULL, ":2:3: field 2 is missing ('NA'; drop such rows or fill them with "
                             "--missing drop|mean)");
    read_refused("a,b\n1,0\n\"\",1\n", NULL, ":3:1: field 1 is empty (a missing value: drop "
                                            "such rows or fill them with --missing drop|mean)");
    static const char *const words[] = {"NA", "N/A", "n/a", "NaN", "nan", "NAN", "NULL",
                                        "null", "None", "?", ""};
    for (int i = 0; i < 11; i++) {
        char t[64];
        snprintf(t, sizeof t, "a,b\n1,0\n%s,1\n2,1\n", words[i]);
        nb_csv_options drop = {.missing = NB_MISSING_DROP};
        nb_dataset d;
        read_ok(t, &drop, &d);
        assert_int_equal(d.n, 2);
        nb_dataset_free(&d);
    }
    nb_csv_options drop = {.missing = NB_MISSING_DROP};
    nb_dataset d;
    read_refused(text, &drop, ":2:3: every row has a missing value (the first one here): no row "
                              "is left");
    read_ok("a,b,c,y\n1,NA,x,0\n3,4,x,1\n5,?,y,1\n7,8,y,0\n", &drop, &d);
    expect_values(&d, (const float[]){3, 4, 1, 0, 7, 8, 0, 1}, 8);
    expect_labels(&d, (const int32_t[]){1, 0}, 2);
    nb_dataset_free(&d);

    nb_csv_options mean = {.missing = NB_MISSING_MEAN};
    read_ok(text, &mean, &d);
    assert_int_equal(d.n, 4);
    /* a: mean of 1,3,5 = 3; b: mean of 4,8 = 6; c: categories x,y, the missing one all zero */
    expect_values(&d, (const float[]){1, 6, 1, 0, 3, 4, 0, 0, 5, 6, 0, 1, 3, 8, 1, 0}, 16);
    assert_true(d.table->columns[0].imputed && d.table->columns[0].fill == 3.0f);
    assert_true(d.table->columns[1].imputed && d.table->columns[1].fill == 6.0f);
    assert_true(d.table->columns[2].imputed);
    nb_dataset_free(&d);
    /* a missing target is never filled; dropped with its row */
    read_refused("a,y\n1,0\n2,NA\n", &mean, ":3:3: the target (field 2) is missing: a target is "
                                            "not filled in (drop such rows with --missing drop)");
    read_ok("a,y\n1,0\n2,NA\n3,1\n", &drop, &d);
    expect_labels(&d, (const int32_t[]){0, 1}, 2);
    nb_dataset_free(&d);
    read_refused("a,y\n1,NA\nNA,1\n", &drop, ":2:3: every row has a missing value (the first "
                                             "one here): no row is left");
}

static void test_categories(void **state)
{
    (void)state;
    nb_dataset d;
    read_ok("color,size,shape,y\nred,1,round,a\nblue,2,\"square\",b\ngreen,3,round,a\n"
            "red,4,round,b\n", NULL, &d);
    assert_int_equal(d.features, 3 + 1 + 2);
    assert_int_equal(d.table->columns[0].n_categories, 3);
    assert_string_equal(d.table->columns[0].categories[0], "blue");
    assert_string_equal(d.table->columns[0].categories[1], "green");
    assert_string_equal(d.table->columns[0].categories[2], "red");
    assert_int_equal(d.table->columns[2].n_categories, 2);
    expect_values(&d, (const float[]){0, 0, 1, 1, 1, 0, 1, 0, 0, 2, 0, 1, 0, 1, 0, 3, 1, 0,
                                      0, 0, 1, 4, 1, 0}, 24);
    nb_dataset_free(&d);
    /* a word among numbers is a damaged number, not a category */
    read_refused("a,b,y\n1,2.5,0\n1,2,0\n1,2.O,1\n", NULL,
                 ":4:3: field 2 '2.O' is not a number, but other fields of column 'b' are (a "
                 "column is numbers, or words: categories)");
    read_refused("a,b,y\nx,2.5,0\ny,2,0\n3,2,1\n", NULL,
                 ":4:1: field 1 is a number, but other fields of column 'a' are words (a column "
                 "is numbers, or words: categories)");
}

/* ---- reading like a training table ------------------------------------------------------- */

static void test_like(void **state)
{
    (void)state;
    nb_csv_options o = {.missing = NB_MISSING_MEAN};
    nb_dataset train, d;
    read_ok("name,color,size,label\nA,red,1.5,x\nB,blue,2,y\nA,red,NA,z\n", &o, &train);
    nb_csv_options like = {.like = train.table, .missing = NB_MISSING_MEAN};
    /* columns in another order, found by name */
    read_ok("size,label,color,name\n2,y,blue,B\n1,x,red,A\n", &like, &d);
    assert_int_equal(d.features, train.features);
    expect_values(&d, (const float[]){0, 1, 1, 0, 2, 1, 0, 0, 1, 1}, 10);
    expect_labels(&d, (const int32_t[]){1, 0}, 2);
    nb_dataset_free(&d);
    /* without the target: no labels; a missing size takes the training mean */
    read_ok("size,color,name\nNA,blue,B\n", &like, &d);
    assert_null(d.labels);
    assert_int_equal(d.classes, 3);
    expect_values(&d, (const float[]){0, 1, 1, 0, 1.75f}, 5);
    nb_dataset_free(&d);
    /* by position without a header, with or without the target */
    read_ok("B,blue,2,y\n", &like, &d);
    expect_labels(&d, (const int32_t[]){1}, 1);
    nb_dataset_free(&d);
    read_ok("B,blue,2\n", &like, &d);
    assert_null(d.labels);
    nb_dataset_free(&d);
    /* what training did not have is an error at its field */
    read_refused("size,label,color,name\n2,w,blue,B\n", &like,
                 ":2:3: class 'w' is not one of the training data's 3 (x, y, z)");
    read_refused("size,label,color,name\n2,y,green,B\n", &like,
                 ":2:5: 'green' is not a category of column 'color' in the training data (2 "
                 "categories)");
    read_refused("size,label,color,name,extra\n2,y,blue,B,1\n", &like,
                 ":1:1: column(s) not in the training data: 'extra' (its columns: 0 'name', "
                 "1 'color', 2 'size', 3 'label')");
    read_refused("size,label,name\n2,y,B\n", &like,
                 ":1:1: no column 'color' (a feature of the training data)");
    read_refused("size,label,color,name\nbig,y,blue,B\n", &like,
                 ":2:1: field 1 'big' is not a number (column 'size' holds numbers in the "
                 "training data)");
    read_refused("B,2\n", &like, ":1:1: 2 fields, but the training data had 4 columns (3 "
                                    "without the target)");
    nb_dataset_free(&train);
    /* integer classes: "2.0" is class "2" */
    read_ok("a,y\n1,1\n2,2\n3,3\n", NULL, &train);
    like = (nb_csv_options){.like = train.table};
    read_ok("a,y\n5,2.0\n", &like, &d);
    expect_labels(&d, (const int32_t[]){1}, 1);
    nb_dataset_free(&d);
    read_refused("a,y\n5,4\n", &like, ":2:3: class '4' is not one of the training data's 3 (1, "
                                      "2, 3)");
    nb_dataset_free(&train);
}

/* ---- the table as JSON ------------------------------------------------------------------- */

static void test_table_json_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "name,color,size,label\nA,red,1.5,x\nB,blue,2,y\nA,\"r\"\"ed\",NA,z\n",
        "1,2,0\n3,4,1\n",
    };
    for (int i = 0; i < 2; i++) {
        nb_csv_options o = {.missing = i == 0 ? NB_MISSING_MEAN : NB_MISSING_REFUSE};
        nb_dataset d;
        read_ok(texts[i], &o, &d);
        char *json = nb_table_to_json(d.table);
        assert_non_null(json);
        nb_table t;
        nb_error err = {""};
        if (nb_table_from_json(json, "meta", &t, &err) != 0)
            fail_msg("%s in %s", err.msg, json);
        char *again = nb_table_to_json(&t);
        assert_string_equal(json, again);
        assert_int_equal(t.n_columns, d.table->n_columns);
        assert_int_equal(t.header, d.table->header);
        assert_int_equal(t.n_classes, d.table->n_classes);
        for (int c = 0; c < t.n_columns; c++) {
            assert_int_equal(t.columns[c].kind, d.table->columns[c].kind);
            assert_int_equal(t.columns[c].imputed, d.table->columns[c].imputed);
            assert_true(t.columns[c].fill == d.table->columns[c].fill);
        }
        /* the table read back reads new rows as the original does */
        nb_csv_options like = {.like = &t, .missing = o.missing};
        nb_dataset a, b;
        read_ok(texts[i], &like, &a);
        like.like = d.table;
        read_ok(texts[i], &like, &b);
        assert_int_equal(a.n * a.features, b.n * b.features);
        assert_memory_equal(a.values, b.values, (size_t)a.n * (size_t)a.features * sizeof(float));
        nb_dataset_free(&a);
        nb_dataset_free(&b);
        nb_table_free(&t);
        free(json);
        free(again);
        nb_dataset_free(&d);
    }
}

static void json_refused(const char *json, const char *want)
{
    nb_table t;
    nb_error err = {""};
    assert_int_equal(nb_table_from_json(json, "m", &t, &err), -1);
    char full[400];
    snprintf(full, sizeof full, "m: %s", want);
    assert_string_equal(err.msg, full);
    assert_int_equal(t.n_columns, 0);
    assert_null(t.columns);
}

static void test_table_json_damaged(void **state)
{
    (void)state;
#define COLS "\"columns\":[{\"name\":\"a\",\"kind\":\"number\"},{\"name\":\"y\",\"kind\":\"target\"}]"
    json_refused("{\"header\":true,", "the table is not valid JSON");
    json_refused("[1]", "the table is not a JSON object");
    json_refused("{\"header\":1,\"delimiter\":\",\"," COLS "}", "header is not true or false");
    json_refused("{\"header\":true,\"delimiter\":\"|\"," COLS "}",
                 "delimiter is not \",\", \";\" or a tab");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":{}}",
                 "columns is not an array of at least 2 columns");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"numbr\"},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0].kind is not number, category or target");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"category\"},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0] is a category column without its categories");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"category\",\"categories\":[\"x\",\"x\"]},{\"name\":\"y\",\"kind\":\"target\"}"
                 "]}", "columns[0].categories holds 'x' twice");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"category\",\"categories\":[\"x\",7]},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0].categories[1] is not a string");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"number\",\"fill\":\"1\"},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0].fill is not a finite float");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"number\",\"fill\":1e39},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0].fill is not a finite float");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"a\",\"kind\":"
                 "\"number\"},{\"name\":\"y\",\"kind\":\"number\"}]}",
                 "the table needs a feature column and a target column");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":null,\"kind\":"
                 "\"number\"},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "columns[0] has no name, but the table has a header");
    json_refused("{\"header\":true,\"delimiter\":\",\",\"columns\":[{\"name\":\"y\",\"kind\":"
                 "\"number\"},{\"name\":\"y\",\"kind\":\"target\"}]}",
                 "two columns are named 'y'");
    json_refused("{\"header\":true,\"delimiter\":\",\"," COLS ",\"classes\":[]}",
                 "classes is empty");
    json_refused("{\"header\":true,\"delimiter\":\",\"," COLS ",\"classes\":[\"a\",\"a\"]}",
                 "classes holds 'a' twice");
    json_refused("{\"header\":true,\"delimiter\":\",\"," COLS ",\"header\":false}",
                 "the name 'header' appears twice in one object");
    json_refused("{\"header\":true,\"delimiter\":\",\"," COLS ",\"extra\":1}",
                 "unknown member 'extra'");
    nb_table t;
    nb_error err = {""};
    assert_int_equal(nb_table_from_json("{\"header\":true,\"delimiter\":\"\\t\"," COLS
                                        ",\"classes\":[\"0\",\"1\"]}", "m", &t, &err), 0);
    assert_int_equal(t.delimiter, '\t');
    assert_int_equal(t.n_classes, 2);
    nb_table_free(&t);
#undef COLS
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delimiters),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_stdin_and_fifo),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_regression_looking_targets),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_like),
        cmocka_unit_test(test_table_json_round_trip),
        cmocka_unit_test(test_table_json_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
