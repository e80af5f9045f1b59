/* JSON written by the program (json_write.h). */
#include "io/json_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/paths.h"

char *json_line(cJSON *j, size_t *len, nb_error *err)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        nb_fail(err, "out of memory");
        return NULL;
    }
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (!line) {
        cJSON_free(text);
        nb_fail(err, "out of memory");
        return NULL;
    }
    memcpy(line, text, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    cJSON_free(text);
    *len = n + 1;
    return line;
}

int write_json_file(const char *dir, const char *name, const cJSON *j, nb_error *err)
{
    char *path = path_join(dir, name);
    char *text = cJSON_Print(j);
    int rc;
    if (!path || !text) {
        rc = nb_fail(err, "out of memory");
    } else {
        size_t n = strlen(text);
        /* cJSON_Print leaves room for nothing more, so the newline goes in a copy. */
        char *line = malloc(n + 2);
        if (!line) {
            rc = nb_fail(err, "out of memory");
        } else {
            memcpy(line, text, n);
            line[n] = '\n';
            line[n + 1] = '\0';
            rc = nb_write_file_atomic(path, line, n + 1, err);
            free(line);
        }
    }
    free(path);
    cJSON_free(text);
    return rc;
}

cJSON *json_float(float v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    /* The fewest significant digits that read back as the same float. */
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

cJSON *json_double(double v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    /* cJSON prints 15 digits when they read back within its tolerance, not exactly: a value
     * written and read back must be the value kept. */
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(buf);
}
