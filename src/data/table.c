/* The columns of a table data set (nb_table): what training read from a CSV file, kept with
 * the model so that new rows are read the same way. Freeing and copying. */
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

static void free_strings(char **s, int n)
{
    for (int i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

void nb_table_free(nb_table *t)
{
    if (!t)
        return;
    for (int i = 0; t->columns && i < t->n_columns; i++) {
        free(t->columns[i].name);
        free_strings(t->columns[i].categories, t->columns[i].n_categories);
    }
    free(t->columns);
    free_strings(t->class_names, t->n_classes);
    memset(t, 0, sizeof *t);
}

static char *copy_string(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

static char **copy_strings(char *const *s, int n, int *failed)
{
    if (!s || n <= 0)
        return NULL;
    char **c = calloc((size_t)n, sizeof *c);
    if (!c) {
        *failed = 1;
        return NULL;
    }
    for (int i = 0; i < n; i++)
        c[i] = copy_string(s[i], failed);
    return c;
}

int nb_table_copy(nb_table *dst, const nb_table *src, nb_error *err)
{
    memset(dst, 0, sizeof *dst);
    int failed = 0;
    *dst = *src;
    dst->columns = NULL;
    dst->class_names = copy_strings(src->class_names, src->n_classes, &failed);
    if (src->n_columns > 0) {
        dst->columns = calloc((size_t)src->n_columns, sizeof *dst->columns);
        failed |= !dst->columns;
    }
    for (int i = 0; dst->columns && i < src->n_columns; i++) {
        const nb_column *c = &src->columns[i];
        dst->columns[i] = *c;
        dst->columns[i].name = copy_string(c->name, &failed);
        dst->columns[i].categories = copy_strings(c->categories, c->n_categories, &failed);
    }
    if (failed) {
        if (!dst->columns)
            dst->n_columns = 0;
        nb_table_free(dst);
        return nb_fail(err, "out of memory");
    }
    return 0;
}
