/* The JSON and JSON Lines files of runs and studies: read strictly (a damaged file is an error
 * that names the file, and for JSON Lines the line), and numbers written exactly. */
#ifndef NABLA_IO_JSON_FILES_H
#define NABLA_IO_JSON_FILES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "nabla.h"

/* Whether path exists (as anything). */
int report_file_exists(const char *path);

/* A malloc'd copy of a directory's name without trailing slashes ("runs/a/" -> "runs/a"; "/"
 * stays), as reports name runs and studies; NULL when out of memory. */
char *report_dir_name(const char *dir);

/* Reads path, which must hold one JSON object, into *out (cJSON_Delete it), and hands back
 * the file's text in *text when text is not NULL (free it; NULL with *out), for
 * json_member_line. With missing_ok, a file that does not exist gives *out = NULL and 0. A
 * name that appears twice in one object (json_check.h) is an error naming its line: nabla
 * never writes one, and a reader would silently take the first. */
int report_read_json_text(const char *path, int missing_ok, cJSON **out, char **text,
                          nb_error *err);

/* The line of text (a JSON object) on which its top-level member `name` starts; 0 when it
 * has none. json_member_where writes "path:line" for it, or "path" without the line. */
int json_member_line(const char *text, const char *name);
void json_member_where(const char *text, const char *path, const char *name, char *where,
                       size_t size);
/* Fails with err = "path:line: what" (what formatted as printf does) for member `name`. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int json_member_fail(const char *text, const char *path, const char *name, nb_error *err,
                     const char *fmt, ...);

/* Calls fn for every line of a JSON Lines file, each of which must be a JSON object without a
 * name twice in one object; fn's failure stops the reading. A last line without its newline is
 * left out when it may be a line being written right now, or one a crash cut short (the
 * writers append whole lines): while the file's writer may still be at work (finished_by
 * NULL), if it is the beginning of a JSON object that begins as the file's lines do (with one
 * of `starts`, such as "{\"epoch\":"). Anything else there is damage. finished_by names what
 * says the writer is done ("summary.json"): then the file has no line cut short. Messages say
 * "path:line: ...". */
typedef int (*jsonl_fn)(const cJSON *obj, int line, void *user, nb_error *err);
int report_read_jsonl(const char *path, jsonl_fn fn, void *user, const char *const *starts,
                      const char *finished_by, nb_error *err);

/* What a number in a run's or a study's files may be, beyond being a number: reading checks
 * sense, not only format. */
typedef enum value_rule {
    V_FINITE,     /* any finite number */
    V_NON_NEG,    /* finite, >= 0: losses, seconds, learning rates, rates */
    V_POSITIVE,   /* finite, > 0 */
    V_UNIT,       /* in [0, 1]: accuracies */
    V_FRACTION,   /* in [0, 1): fractions, betas */
    V_COUNT,      /* a whole number from 0 to 2^53: counts, steps */
    V_COUNT_1,    /* a whole number from 1 to 2^53 */
    V_INT,        /* a whole number from 0 to INT_MAX: indices */
    V_INT_1,      /* a whole number from 1 to INT_MAX: epochs, layers, sizes */
} value_rule;

/* Checks x against rule: 0, or -1 with "WHERE: "NAME" is X, expected ..." (where is "path" or
 * "path:line"). NaN (null or absent) passes only when nullable. */
int value_check(double x, value_rule rule, int nullable, const char *where, const char *name,
                nb_error *err);

/* Numeric columns of a JSON Lines file: col[c][i] is column c of line i + 1 (every line is
 * a row, or an error). A required column must be a number on every line; the others may be
 * null or absent (NaN). Any other value, or a number its rule refuses, is an error naming the
 * file, the line and the field. check_row (may be NULL) then checks the row just read,
 * t->n - 1, against the rows before it and ctx: the file's own rules across lines. */
#define TABLE_MAX_COLS 16
typedef struct table {
    int n, cap;
    int n_cols;
    double *col[TABLE_MAX_COLS];
} table;
typedef struct table_column {
    const char *name;
    value_rule rule;
    int required;
} table_column;
typedef struct table_spec {
    const table_column *cols;   /* the writer's first member first: lines begin with it */
    int n_cols;
    int (*check_row)(const table *t, const char *where, const void *ctx, nb_error *err);
} table_spec;
/* finished_by as for report_read_jsonl. */
int report_read_table(const char *path, const table_spec *spec, const void *ctx,
                      const char *finished_by, table *t, nb_error *err);
void table_free(table *t);

/* The members of a JSON object and what each may be: a number under its rule, true or false,
 * a string, an array of numbers or of strings, or an object; `also` names a string accepted
 * instead of a number ("full" for a batch size); nullable lets it be null; a required member
 * must be there (nabla has always written it); `valid` (may be NULL) says which strings a
 * string may be (those nabla writes there). Members no rule names are left alone. */
typedef enum member_type {
    MT_NUMBER, MT_BOOL, MT_STRING, MT_NUMBERS, MT_STRINGS, MT_OBJECT
} member_type;
typedef struct member_rule {
    const char *name;
    member_type type;
    value_rule rule;   /* MT_NUMBER and MT_NUMBERS */
    int nullable;
    const char *also;
    int required;
    int (*valid)(const char *s);
} member_rule;
/* Checks obj's members against rules; messages say "path:line: ..." with the member's line in
 * text (NULL: "path: ..."). */
int json_members_check(const cJSON *obj, const char *text, const char *path,
                       const member_rule *rules, int n_rules, nb_error *err);

/* x as briefly as it reads back exactly (0.1 as "0.1", not "0.10000000000000001"), or "null"
 * for NaN (a null member). */
void json_number_text(double x, char *buf, size_t size);

/* A member of an object as a number: its value, or NaN when absent, null or not a number. */
double json_number(const cJSON *obj, const char *name);
/* A member as a string, or NULL. */
const char *json_string(const cJSON *obj, const char *name);

#endif /* NABLA_IO_JSON_FILES_H */
