/* A table data set's columns as JSON and back (table_json.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_check.h"
#include "io/table_json.h"

static const char *const kind_names[NB_COLUMN_KINDS] = {"number", "category", "target"};

static cJSON *string_array(char *const *s, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *item = cJSON_CreateString(s[i]);
        if (!item || !cJSON_AddItemToArray(a, item)) {
            cJSON_Delete(item);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Adds item to object under name; deletes it (and fails) when it is NULL or cannot be added. */
static int add(cJSON *object, const char *name, cJSON *item)
{
    if (item && cJSON_AddItemToObject(object, name, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

cJSON *nb_table_to_cjson(const nb_table *t)
{
    cJSON *j = cJSON_CreateObject(), *columns = cJSON_CreateArray();
    char delimiter[2] = {t->delimiter ? t->delimiter : ',', '\0'};
    int failed = !j || !columns;
    if (!failed) {
        failed |= add(j, "header", cJSON_CreateBool(t->header != 0));
        failed |= add(j, "delimiter", cJSON_CreateString(delimiter));
        failed |= add(j, "columns", columns);
        columns = NULL;
    }
    cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "columns");
    for (int i = 0; !failed && i < t->n_columns; i++) {
        const nb_column *c = &t->columns[i];
        cJSON *col = cJSON_CreateObject();
        failed |= !col || !cJSON_AddItemToArray(list, col);
        if (failed) {
            cJSON_Delete(col);
            break;
        }
        failed |= add(col, "name", c->name ? cJSON_CreateString(c->name) : cJSON_CreateNull());
        failed |= add(col, "kind", cJSON_CreateString(c->kind >= 0 && c->kind < NB_COLUMN_KINDS
                                                          ? kind_names[c->kind]
                                                          : "?"));
        if (c->kind == NB_COLUMN_CATEGORY)
            failed |= add(col, "categories", string_array(c->categories, c->n_categories));
        if (c->imputed && c->kind != NB_COLUMN_TARGET)
            failed |= add(col, "fill", cJSON_CreateNumber((double)c->fill));
    }
    if (!failed && t->n_classes > 0)
        failed |= add(j, "classes", string_array(t->class_names, t->n_classes));
    cJSON_Delete(columns);
    if (failed) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

char *nb_table_to_json(const nb_table *t)
{
    cJSON *j = nb_table_to_cjson(t);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return text;
}

/* ---- reading ---- */

/* The strings of a JSON array of unique strings, into *out (n of them). */
static int read_strings(const cJSON *a, const char *what, const char *field, char ***out, int *n,
                        nb_error *err)
{
    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return nb_fail(err, "%s: %s is not an array of strings", what, field);
    int count = cJSON_GetArraySize(a);
    char **s = calloc((size_t)(count > 0 ? count : 1), sizeof *s);
    if (!s)
        return nb_fail(err, "%s: out of memory", what);
    *out = s;
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, a) {
        if (!cJSON_IsString(item) || !item->valuestring)
            return nb_fail(err, "%s: %s[%d] is not a string", what, field, i);
        for (int k = 0; k < i; k++)
            if (strcmp(s[k], item->valuestring) == 0)
                return nb_fail(err, "%s: %s holds '%.60s' twice", what, field,
                               item->valuestring);
        if (!(s[i] = strdup(item->valuestring)))
            return nb_fail(err, "%s: out of memory", what);
        *n = ++i;
    }
    return 0;
}

/* The first member of obj whose name is not in known (NULL-terminated), or NULL. */
static const char *unknown_member(const cJSON *obj, const char *const *known)
{
    const cJSON *member;
    cJSON_ArrayForEach(member, obj) {
        int found = 0;
        for (int k = 0; known[k] && !found; k++)
            found = strcmp(member->string, known[k]) == 0;
        if (!found)
            return member->string;
    }
    return NULL;
}

static int read_column(const cJSON *col, int index, const char *what, nb_column *c,
                       nb_error *err)
{
    char field[64];
    if (!cJSON_IsObject(col))
        return nb_fail(err, "%s: columns[%d] is not an object", what, index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(col, "name");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(col, "kind");
    const cJSON *categories = cJSON_GetObjectItemCaseSensitive(col, "categories");
    const cJSON *fill = cJSON_GetObjectItemCaseSensitive(col, "fill");
    static const char *const known[] = {"name", "kind", "categories", "fill", NULL};
    const char *unknown = unknown_member(col, known);
    if (unknown)
        return nb_fail(err, "%s: columns[%d] has an unknown member '%.40s'", what, index,
                       unknown);
    if (cJSON_IsString(name) && name->valuestring) {
        if (!(c->name = strdup(name->valuestring)))
            return nb_fail(err, "%s: out of memory", what);
    } else if (!cJSON_IsNull(name)) {
        return nb_fail(err, "%s: columns[%d].name is not a string or null", what, index);
    }
    int k = 0;
    while (k < NB_COLUMN_KINDS && !(cJSON_IsString(kind) && kind->valuestring &&
                                    strcmp(kind->valuestring, kind_names[k]) == 0))
        k++;
    if (k == NB_COLUMN_KINDS)
        return nb_fail(err, "%s: columns[%d].kind is not number, category or target", what,
                       index);
    c->kind = (nb_column_kind)k;
    if ((c->kind == NB_COLUMN_CATEGORY) != (categories != NULL))
        return nb_fail(err, "%s: columns[%d] %s", what, index,
                       categories ? "has categories but is not a category column"
                                  : "is a category column without its categories");
    if (categories) {
        snprintf(field, sizeof field, "columns[%d].categories", index);
        if (read_strings(categories, what, field, &c->categories, &c->n_categories, err) != 0)
            return -1;
    }
    if (fill) {
        if (c->kind == NB_COLUMN_TARGET)
            return nb_fail(err, "%s: columns[%d] is a target with a fill", what, index);
        if (!cJSON_IsNumber(fill) || !isfinite(fill->valuedouble) ||
            fabs(fill->valuedouble) > 3.4028234663852886e38)
            return nb_fail(err, "%s: columns[%d].fill is not a finite float", what, index);
        c->imputed = 1;
        c->fill = (float)fill->valuedouble;
    }
    return 0;
}

static int read_table(const cJSON *j, const char *what, nb_table *t, nb_error *err)
{
    if (!cJSON_IsObject(j))
        return nb_fail(err, "%s: the table is not a JSON object", what);
    const char *twice = nb_json_duplicate_name(j, NULL);
    if (twice)
        return nb_fail(err, "%s: the name '%.40s' appears twice in one object", what, twice);
    const cJSON *header = cJSON_GetObjectItemCaseSensitive(j, "header");
    const cJSON *delimiter = cJSON_GetObjectItemCaseSensitive(j, "delimiter");
    const cJSON *columns = cJSON_GetObjectItemCaseSensitive(j, "columns");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(j, "classes");
    static const char *const known[] = {"header", "delimiter", "columns", "classes", NULL};
    const char *unknown = unknown_member(j, known);
    if (unknown)
        return nb_fail(err, "%s: unknown member '%.40s'", what, unknown);
    if (!cJSON_IsBool(header))
        return nb_fail(err, "%s: header is not true or false", what);
    t->header = cJSON_IsTrue(header);
    if (!cJSON_IsString(delimiter) || !delimiter->valuestring ||
        strlen(delimiter->valuestring) != 1 || !strchr(",;\t", delimiter->valuestring[0]))
        return nb_fail(err, "%s: delimiter is not \",\", \";\" or a tab", what);
    t->delimiter = delimiter->valuestring[0];
    if (!cJSON_IsArray(columns) || cJSON_GetArraySize(columns) < 2)
        return nb_fail(err, "%s: columns is not an array of at least 2 columns", what);
    int n = cJSON_GetArraySize(columns);
    t->columns = calloc((size_t)n, sizeof *t->columns);
    if (!t->columns)
        return nb_fail(err, "%s: out of memory", what);
    t->n_columns = n;
    int i = 0, features = 0, targets = 0;
    const cJSON *col;
    cJSON_ArrayForEach(col, columns) {
        nb_column *c = &t->columns[i];
        if (read_column(col, i, what, c, err) != 0)
            return -1;
        if (t->header != (c->name != NULL))
            return nb_fail(err, "%s: columns[%d] %s, but the table %s", what, i,
                           c->name ? "has a name" : "has no name",
                           t->header ? "has a header" : "has no header");
        for (int k = 0; c->name && k < i; k++)
            if (strcmp(t->columns[k].name, c->name) == 0)
                return nb_fail(err, "%s: two columns are named '%.60s'", what, c->name);
        targets += c->kind == NB_COLUMN_TARGET;
        features += c->kind == NB_COLUMN_NUMBER ||
                    (c->kind == NB_COLUMN_CATEGORY && c->n_categories > 0);
        i++;
    }
    if (features == 0 || targets == 0)
        return nb_fail(err, "%s: the table needs a feature column and a target column", what);
    if (classes) {
        if (targets != 1)
            return nb_fail(err, "%s: classes with %d target columns (classification has one)",
                           what, targets);
        if (read_strings(classes, what, "classes", &t->class_names, &t->n_classes, err) != 0)
            return -1;
        if (t->n_classes == 0)
            return nb_fail(err, "%s: classes is empty", what);
    }
    return 0;
}

int nb_table_from_cjson(const cJSON *item, const char *what, nb_table *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (read_table(item, what, out, err) != 0) {
        nb_table_free(out);
        return -1;
    }
    return 0;
}

int nb_table_from_json(const char *json, const char *what, nb_table *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    if (!j)
        return nb_fail(err, "%s: the table is not valid JSON", what);
    int rc = nb_table_from_cjson(j, what, out, err);
    cJSON_Delete(j);
    return rc;
}
