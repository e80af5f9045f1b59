/* JSON written by the program: lines of JSON Lines, whole files, numbers that read back as
 * the values written (not part of the public API). */
#ifndef NABLA_JSON_WRITE_H
#define NABLA_JSON_WRITE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "nabla.h"

/* j (whose ownership it takes) as one line of JSON Lines: unformatted, a newline, a
 * terminator; *len counts the newline, not the terminator. NULL with err when out of memory. */
char *json_line(cJSON *j, size_t *len, nb_error *err);

/* Writes j (pretty-printed, with a final newline) to dir/name atomically. */
int write_json_file(const char *dir, const char *name, const cJSON *j, nb_error *err);

/* JSON values: a float as its shortest decimal form ((float)0.001 is 0.001, not
 * 0.0010000000474974513). */
cJSON *json_float(float v);
/* A double exactly: the fewest digits (15 to 17) that read back as the same double. */
cJSON *json_double(double v);

#endif /* NABLA_JSON_WRITE_H */
