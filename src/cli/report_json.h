/* nabla report: reading the JSON and JSON Lines files of runs and studies, strictly: a damaged
 * file is an error that names the file (and for JSON Lines the line). */
#ifndef NABLA_CLI_REPORT_JSON_H
#define NABLA_CLI_REPORT_JSON_H

#include <cjson/cJSON.h>

#include "nabla.h"

/* Whether path exists (as anything). */
int report_file_exists(const char *path);

/* A malloc'd copy of a directory's name without trailing slashes ("runs/a/" -> "runs/a"; "/"
 * stays), as reports name runs and studies; NULL when out of memory. */
char *report_dir_name(const char *dir);

/* Reads path, which must hold one JSON object, into *out (cJSON_Delete it). With missing_ok,
 * a file that does not exist gives *out = NULL and 0. */
int report_read_json(const char *path, int missing_ok, cJSON **out, nb_error *err);

/* Calls fn for every line of a JSON Lines file, each of which must be a JSON object; fn's
 * failure stops the reading. A last line without its newline is left out: it is being
 * written right now, or was cut short by a crash (the writers append whole lines, as `nabla
 * tune` reads its journal). Messages say "path:line: ...". */
typedef int (*jsonl_fn)(const cJSON *obj, int line, void *user, nb_error *err);
int report_read_jsonl(const char *path, jsonl_fn fn, void *user, nb_error *err);

/* Numeric columns of a JSON Lines file: col[c][i] is field names[c] of line i. The first
 * n_required fields must be numbers on every line; the others may be null or absent (NaN).
 * Any other value is an error naming the file, the line and the field. */
#define TABLE_MAX_COLS 16
typedef struct table {
    int n, cap;
    int n_cols;
    double *col[TABLE_MAX_COLS];
} table;
int report_read_table(const char *path, const char *const *names, int n_names, int n_required,
                      table *t, nb_error *err);
void table_free(table *t);

/* A member of an object as a number: its value, or NaN when absent, null or not a number. */
double json_number(const cJSON *obj, const char *name);
/* A member as a string, or NULL. */
const char *json_string(const cJSON *obj, const char *name);

#endif /* NABLA_CLI_REPORT_JSON_H */
