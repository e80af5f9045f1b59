/* The cells of a CSV file into a data set: what each column is, and its encoding.
 *
 * Rules (README, "Your own data"):
 * - A feature column whose fields are all numbers is numeric. One with words is categorical:
 *   one input per category, 1 for the row's category and 0 for the others, the categories
 *   sorted bytewise (strcmp). A categorical column may hold integer codes among its words
 *   ("2", "3", "4", "5more"); their category is the integer ("02" and "2.0" are "2"). A column
 *   that mixes words with non-integer numbers, or with more than 20 distinct values, looks like
 *   a numeric column with a bad field, and is refused at its first word.
 * - Classification: the classes are the target's distinct values. When all are integers, in
 *   numeric order, named by the integer ("3.0" is class "3"); otherwise the texts as written,
 *   sorted bytewise. A target that looks like a regression target is refused, unless the
 *   options allow many classes: a non-integer number, or more than 20 distinct values and more
 *   than a tenth of the rows. (Allowed, non-integer numbers become classes in numeric order.)
 * - Missing values: refused (csv.c, at once), rows with one dropped, or filled: a numeric
 *   feature with its column's mean over the rows read, a category with no one-hot bit; a
 *   missing target cannot be filled.
 * - Read like a training table (o->like): its columns, categories, classes and fills, not new
 *   ones; a category or class it does not have is an error naming the field. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memcheck.h"
#include "data/csv_internal.h"

/* More distinct values than this (and, for a target, than a tenth of the rows) is not a set
 * of categories or classes. */
#define FEW_VALUES 20

static int quote_len(size_t len) { return (int)(len > CSV_QUOTE_MAX ? CSV_QUOTE_MAX : len); }

nb_task csv_task(const nb_csv_options *o)
{
    if (!o->like)
        return o->task;
    if (o->like->n_classes > 0)
        return NB_TASK_CLASSIFICATION;
    return o->task == NB_TASK_MULTILABEL ? NB_TASK_MULTILABEL : NB_TASK_REGRESSION;
}

/* ---- strings: comparison, sorted lookup ---- */

static int span_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static const csv_text *sort_texts;   /* for qsort's comparator (one sort at a time) */

static int cmp_text_index(const void *a, const void *b)
{
    const csv_text *x = &sort_texts[*(const uint32_t *)a], *y = &sort_texts[*(const uint32_t *)b];
    return span_cmp(x->s, x->len, y->s, y->len);
}

static char *const *sort_names;

static int cmp_name_index(const void *a, const void *b)
{
    return strcmp(sort_names[*(const int *)a], sort_names[*(const int *)b]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_llong(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int lookup_init(lookup *l, char *const *names, int n)
{
    l->names = names;
    l->n = n;
    l->order = malloc((size_t)(n > 0 ? n : 1) * sizeof *l->order);
    if (!l->order)
        return -1;
    for (int i = 0; i < n; i++)
        l->order[i] = i;
    sort_names = names;
    qsort(l->order, (size_t)n, sizeof *l->order, cmp_name_index);
    return 0;
}

int lookup_exact(const lookup *l, const char *s, size_t len)
{
    int lo = 0, hi = l->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const char *name = l->names[l->order[mid]];
        int c = span_cmp(s, len, name, strlen(name));
        if (c == 0)
            return l->order[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

int lookup_find(const lookup *l, const char *s, size_t len)
{
    int i = lookup_exact(l, s, len);
    long long v;
    if (i < 0 && csv_parse_integer(s, len, &v) == 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", v);
        i = lookup_exact(l, buf, strlen(buf));
    }
    return i;
}

/* "a, b, c" of at most cap bytes. */
static void list_names(char *buf, size_t cap, char *const *names, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        if (len + 8 >= cap) {
            snprintf(buf + (len > cap - 5 ? cap - 5 : len), 5, "...");
            return;
        }
        snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
    }
}

/* ---- one encoding pass ---- */

typedef struct encoder {
    csv_rows *r;
    const nb_csv_options *o;
    nb_table *t;
    int *source;            /* [t->n_columns]: the file column of each table column, or -1 */
    unsigned char *keep;    /* [r->n_rows] */
    int n_keep;
    int target_column;      /* classification: the table's target column */
    lookup *lookups;        /* [t->n_columns]: categories */
    lookup classes;
} encoder;

static const char *column_label(const nb_table *t, int tc, char *buf, size_t cap)
{
    if (t->columns[tc].name)
        snprintf(buf, cap, "column '%.60s'", t->columns[tc].name);
    else
        snprintf(buf, cap, "its column");
    (void)tc;
    return buf;
}

static size_t cell_at(const encoder *e, int row, int j)
{
    return (size_t)row * (size_t)e->r->n_cols + (size_t)j;
}

/* Which rows stay: with --missing drop, not those with a missing field. A missing target is
 * never filled. */
static int choose_rows(encoder *e, nb_error *err)
{
    csv_rows *r = e->r;
    int first_row = -1, first_col = 0;
    e->n_keep = 0;
    for (int i = 0; i < r->n_rows; i++) {
        int keep = 1;
        for (int j = 0; j < r->n_cols; j++) {
            if (r->kind[cell_at(e, i, j)] != CELL_MISSING)
                continue;
            if (e->o->missing == NB_MISSING_DROP) {
                if (first_row < 0)
                    first_row = i, first_col = j;
                keep = 0;
            } else if (r->role[j] == ROLE_CLASS || r->role[j] == ROLE_VALUE ||
                       r->role[j] == ROLE_BINARY) {
                return csv_fail_at(r, i, j, err, "the target (field %d) is missing: a target is "
                                   "not filled in (drop such rows with --missing drop)", j + 1);
            }
        }
        e->keep[i] = (unsigned char)keep;
        e->n_keep += keep;
    }
    if (e->n_keep == 0)
        return csv_fail_at(r, first_row, first_col, err, "every row has a missing value (the "
                           "first one here): no row is left");
    return 0;
}

/* The distinct texts of file column j over the kept rows, sorted, as new strings. */
static int distinct_texts(encoder *e, int j, char ***out, int *n_out, nb_error *err)
{
    csv_rows *r = e->r;
    uint32_t *idx = malloc((size_t)(e->n_keep > 0 ? e->n_keep : 1) * sizeof *idx);
    if (!idx)
        return nb_fail(err, "%s: out of memory", r->path);
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        size_t k = cell_at(e, i, j);
        if (e->keep[i] && r->kind[k] == CELL_TEXT)
            idx[n++] = r->cell[k].text;
    }
    sort_texts = r->texts;
    qsort(idx, (size_t)n, sizeof *idx, cmp_text_index);
    int distinct = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || cmp_text_index(&idx[i - 1], &idx[i]) != 0)
            idx[distinct++] = idx[i];
    char **names = calloc((size_t)(distinct > 0 ? distinct : 1), sizeof *names);
    if (!names) {
        free(idx);
        return nb_fail(err, "%s: out of memory", r->path);
    }
    for (int i = 0; i < distinct; i++) {
        const csv_text *x = &r->texts[idx[i]];
        names[i] = malloc(x->len + 1);
        if (!names[i]) {
            for (int m = 0; m < i; m++)
                free(names[m]);
            free(names);
            free(idx);
            return nb_fail(err, "%s: out of memory", r->path);
        }
        memcpy(names[i], x->s, x->len);
        names[i][x->len] = '\0';
    }
    free(idx);
    *out = names;
    *n_out = distinct;
    return 0;
}

/* The first field of column j (kept rows) of the kind there are fewer of, numbers or words
 * (a tie: a word), and how many of each there are. */
static int odd_one_out(const encoder *e, int j, int *numbers, int *words)
{
    const csv_rows *r = e->r;
    int first_number = -1, first_word = -1;
    *numbers = *words = 0;
    for (int i = 0; i < r->n_rows; i++) {
        size_t k = cell_at(e, i, j);
        if (!e->keep[i] || r->kind[k] == CELL_MISSING)
            continue;
        int word = r->kind[k] == CELL_TEXT;
        if (word && first_word < 0)
            first_word = i;
        if (!word && first_number < 0)
            first_number = i;
        *words += word;
        *numbers += !word;
    }
    return *numbers < *words ? first_number : first_word;
}

/* The refusal of a column that mixes numbers and words, at the odd one out. */
static int mixed_column(encoder *e, int tc, int row, int is_word, nb_error *err)
{
    csv_rows *r = e->r;
    int j = e->source[tc];
    size_t k = cell_at(e, row, j);
    char label[96], field[CSV_QUOTE_MAX + 8];
    column_label(e->t, tc, label, sizeof label);
    if (is_word) {
        const csv_text *x = &r->texts[r->cell[k].text];
        snprintf(field, sizeof field, "'%.*s'", quote_len(x->len), x->s);
        return csv_fail_at(r, row, j, err, "field %d %s is not a number, but other fields of %s "
                           "are (a column is numbers, or words: categories)", j + 1, field,
                           label);
    }
    return csv_fail_at(r, row, j, err, "field %d is a number, but other fields of %s are words "
                       "(a column is numbers, or words: categories)", j + 1, label);
}

/* A feature column of a new table: numeric, or categorical (words) with its categories. */
static int type_feature(encoder *e, int tc, nb_error *err)
{
    nb_column *c = &e->t->columns[tc];
    int numbers, words;
    int odd = odd_one_out(e, e->source[tc], &numbers, &words);
    if (words == 0) {
        c->kind = NB_COLUMN_NUMBER;
        return 0;
    }
    if (numbers > 0)
        return mixed_column(e, tc, odd, numbers >= words, err);
    c->kind = NB_COLUMN_CATEGORY;
    return distinct_texts(e, e->source[tc], &c->categories, &c->n_categories, err);
}

/* The refusal of a target that looks like a regression target (row -1: the whole column). */
static int looks_like_regression(encoder *e, int row, const char *why, nb_error *err)
{
    return csv_fail_at(e->r, row, e->source[e->target_column], err,
                       "%s: that looks like a regression target, not classes; use --task "
                       "regression (or --allow-many-classes to take each value as a class)", why);
}

/* Formats a class that is a non-integer number: the shortest text that reads back as it. */
static void format_number(char *buf, size_t cap, double v)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, v);
        if ((float)strtod(buf, NULL) == (float)v)
            return;
    }
}

/* The classes of a new table: the target's distinct values (csv_columns.c's rules). */
static int find_classes(encoder *e, nb_error *err)
{
    csv_rows *r = e->r;
    nb_table *t = e->t;
    int j = e->source[e->target_column];
    int numbers = 0, words = 0, first_number = -1, first_word = -1, first_fraction = -1;
    for (int i = 0; i < r->n_rows; i++) {
        if (!e->keep[i])
            continue;
        const csv_text *x = &r->texts[r->cell[cell_at(e, i, j)].text];
        long long v;
        float f;
        if (csv_parse_integer(x->s, x->len, &v) != 0 &&
            csv_parse_number(x->s, x->len, 0, &f) != CSV_NUMBER) {
            if (words++ == 0)
                first_word = i;
            continue;
        }
        if (numbers++ == 0)
            first_number = i;
        if (csv_parse_integer(x->s, x->len, &v) != 0 && first_fraction < 0)
            first_fraction = i;
    }
    int all_numbers = words == 0, all_integers = all_numbers && first_fraction < 0;
    if (numbers > 0 && words > 0) {
        /* Classes are all numbers or all words: the odd one out is a damaged field, or a
         * header taken for data. */
        int row = numbers < words ? first_number : first_word;
        const csv_text *x = &r->texts[r->cell[cell_at(e, row, j)].text];
        return csv_fail_at(r, row, j, err, "the target '%.*s' is %s, but other targets are %s "
                           "(classes are all numbers or all words)", quote_len(x->len), x->s,
                           numbers < words ? "a number" : "not a number",
                           numbers < words ? "words" : "numbers");
    }
    if (all_numbers && !all_integers && !e->o->allow_many_classes) {
        const csv_text *x = &r->texts[r->cell[cell_at(e, first_fraction, j)].text];
        char why[96];
        snprintf(why, sizeof why, "the target '%.*s' is not an integer", quote_len(x->len),
                 x->s);
        return looks_like_regression(e, first_fraction, why, err);
    }

    int n = 0;
    char **names = NULL;
    if (all_numbers) {
        /* Numbers in numeric order, named by their integer or shortest form. */
        size_t count = (size_t)e->n_keep;
        long long *ints = all_integers ? malloc(count * sizeof *ints) : NULL;
        double *reals = all_integers ? NULL : malloc(count * sizeof *reals);
        if (!ints && !reals)
            return nb_fail(err, "%s: out of memory", r->path);
        size_t m = 0;
        for (int i = 0; i < r->n_rows; i++) {
            if (!e->keep[i])
                continue;
            const csv_text *x = &r->texts[r->cell[cell_at(e, i, j)].text];
            float f = 0;
            if (ints)
                csv_parse_integer(x->s, x->len, &ints[m++]);
            else
                csv_parse_number(x->s, x->len, 0, &f), reals[m++] = f;
        }
        if (ints)
            qsort(ints, m, sizeof *ints, cmp_llong);
        else
            qsort(reals, m, sizeof *reals, cmp_double);
        size_t distinct = 0;
        for (size_t i = 0; i < m; i++) {
            int same = i > 0 && (ints ? ints[i] == ints[i - 1] : reals[i] == reals[i - 1]);
            if (!same) {
                if (ints)
                    ints[distinct++] = ints[i];
                else
                    reals[distinct++] = reals[i];
            }
        }
        names = calloc(distinct, sizeof *names);
        int failed = !names;
        for (size_t i = 0; names && i < distinct; i++) {
            char buf[40];
            if (ints)
                snprintf(buf, sizeof buf, "%lld", ints[i]);
            else
                format_number(buf, sizeof buf, reals[i]);
            failed |= !(names[i] = strdup(buf));
        }
        free(ints);
        free(reals);
        n = (int)distinct;
        if (failed) {
            for (int i = 0; names && i < n; i++)
                free(names[i]);
            free(names);
            return nb_fail(err, "%s: out of memory", r->path);
        }
    } else if (distinct_texts(e, j, &names, &n, err) != 0) {
        return -1;
    }
    t->class_names = names;
    t->n_classes = n;
    if (n > FEW_VALUES && (long)n * 10 > e->n_keep && !e->o->allow_many_classes) {
        char why[96];
        snprintf(why, sizeof why, "the target has %d distinct values in %d rows", n, e->n_keep);
        return looks_like_regression(e, t->header ? -1 : 0, why, err);
    }
    return 0;
}

/* --missing mean: every feature column of a new table may be filled; numbers with their mean
 * over the rows kept. */
static void find_fills(encoder *e)
{
    csv_rows *r = e->r;
    for (int tc = 0; tc < e->t->n_columns; tc++) {
        nb_column *c = &e->t->columns[tc];
        if (c->kind == NB_COLUMN_TARGET)
            continue;
        c->imputed = 1;
        if (c->kind != NB_COLUMN_NUMBER)
            continue;
        int j = e->source[tc];
        double sum = 0;
        long count = 0;
        for (int i = 0; i < r->n_rows; i++) {
            size_t k = cell_at(e, i, j);
            if (e->keep[i] && r->kind[k] == CELL_NUMBER) {
                sum += r->cell[k].number;
                count++;
            }
        }
        c->fill = count ? (float)(sum / (double)count) : 0.0f;
    }
}

/* Writes the features of row i at x. */
static int encode_row(encoder *e, int i, float *x, nb_error *err)
{
    csv_rows *r = e->r;
    const nb_table *t = e->t;
    for (int tc = 0; tc < t->n_columns; tc++) {
        const nb_column *c = &t->columns[tc];
        if (c->kind == NB_COLUMN_TARGET)
            continue;
        int j = e->source[tc];
        size_t k = cell_at(e, i, j);
        int missing = r->kind[k] == CELL_MISSING;
        if (missing && !c->imputed) {
            char label[96];
            return csv_fail_at(r, i, j, err, "field %d is missing, and the training data has "
                               "no fill for %s (it was read without --missing mean)", j + 1,
                               column_label(t, tc, label, sizeof label));
        }
        if (c->kind == NB_COLUMN_NUMBER) {
            *x++ = missing ? c->fill : r->cell[k].number;
            continue;
        }
        memset(x, 0, (size_t)c->n_categories * sizeof *x);
        if (!missing) {
            const csv_text *s = &r->texts[r->cell[k].text];
            int at = lookup_find(&e->lookups[tc], s->s, s->len);
            if (at < 0) {
                char label[96];
                return csv_fail_at(r, i, j, err, "'%.*s' is not a category of %s in the "
                                   "training data (%d categories)", quote_len(s->len), s->s,
                                   column_label(t, tc, label, sizeof label), c->n_categories);
            }
            x[at] = 1.0f;
        }
        x += c->n_categories;
    }
    return 0;
}

static int encode_class(encoder *e, int i, int32_t *label, nb_error *err)
{
    csv_rows *r = e->r;
    int j = e->source[e->target_column];
    const csv_text *s = &r->texts[r->cell[cell_at(e, i, j)].text];
    int at = lookup_find(&e->classes, s->s, s->len);
    if (at < 0) {
        char names[200];
        list_names(names, sizeof names, e->t->class_names, e->t->n_classes);
        return csv_fail_at(r, i, j, err, "class '%.*s' is not one of the training data's %d "
                           "(%s)", quote_len(s->len), s->s, e->t->n_classes, names);
    }
    *label = at;
    return 0;
}

static void encoder_free(encoder *e)
{
    for (int tc = 0; e->lookups && tc < e->t->n_columns; tc++)
        free(e->lookups[tc].order);
    free(e->lookups);
    free(e->classes.order);
    free(e->source);
    free(e->keep);
}

int csv_encode(csv_rows *r, const nb_csv_options *o, nb_table *t, nb_dataset *out,
               nb_error *err)
{
    encoder e = {r, o, t, NULL, NULL, 0, -1, NULL, {NULL, NULL, 0}};
    int rc = -1;
    nb_task task = csv_task(o);
    e.source = malloc((size_t)t->n_columns * sizeof *e.source);
    e.keep = malloc((size_t)r->n_rows);
    e.lookups = calloc((size_t)t->n_columns, sizeof *e.lookups);
    if (!e.source || !e.keep || !e.lookups) {
        nb_fail(err, "%s: out of memory", r->path);
        goto done;
    }
    for (int tc = 0; tc < t->n_columns; tc++)
        e.source[tc] = -1;
    for (int j = 0; j < r->n_cols; j++)
        e.source[r->column[j]] = j;
    int targets = 0, has_targets = 1;
    for (int tc = 0; tc < t->n_columns; tc++) {
        if (t->columns[tc].kind != NB_COLUMN_TARGET)
            continue;
        targets++;
        e.target_column = tc;
        has_targets &= e.source[tc] >= 0;
    }
    if (choose_rows(&e, err) != 0)
        goto done;

    if (!o->like) {
        for (int tc = 0; tc < t->n_columns; tc++)
            if (t->columns[tc].kind != NB_COLUMN_TARGET && type_feature(&e, tc, err) != 0)
                goto done;
        if (task == NB_TASK_CLASSIFICATION && find_classes(&e, err) != 0)
            goto done;
        if (o->missing == NB_MISSING_MEAN)
            find_fills(&e);
    }
    int features = 0;
    for (int tc = 0; tc < t->n_columns; tc++) {
        const nb_column *c = &t->columns[tc];
        if (c->kind == NB_COLUMN_NUMBER)
            features++;
        else if (c->kind == NB_COLUMN_CATEGORY)
            features += c->n_categories;
        if (c->kind == NB_COLUMN_CATEGORY &&
            lookup_init(&e.lookups[tc], c->categories, c->n_categories) != 0) {
            nb_fail(err, "%s: out of memory", r->path);
            goto done;
        }
    }
    if (features == 0) {
        nb_fail(err, "%s: no feature: every feature column is categorical with no category",
                r->path);
        goto done;
    }
    if (task == NB_TASK_CLASSIFICATION &&
        lookup_init(&e.classes, t->class_names, t->n_classes) != 0) {
        nb_fail(err, "%s: out of memory", r->path);
        goto done;
    }

    size_t n = (size_t)e.n_keep;
    if ((uint64_t)n * (uint64_t)features > SIZE_MAX / sizeof(float) ||
        nb_check_memory((uint64_t)n * (uint64_t)(features + targets + 1) * sizeof(float),
                        r->path, err) != 0) {
        if ((uint64_t)n * (uint64_t)features > SIZE_MAX / sizeof(float))
            nb_fail(err, "%s: too many values", r->path);
        goto done;
    }
    out->values = malloc(n * (size_t)features * sizeof *out->values);
    if (has_targets && task == NB_TASK_CLASSIFICATION)
        out->labels = malloc(n * sizeof *out->labels);
    else if (has_targets)
        out->target = malloc(n * (size_t)targets * sizeof *out->target);
    if (!out->values || (has_targets && !out->labels && !out->target)) {
        nb_fail(err, "%s: out of memory", r->path);
        goto done;
    }
    size_t row = 0;
    for (int i = 0; i < r->n_rows; i++) {
        if (!e.keep[i])
            continue;
        if (encode_row(&e, i, out->values + row * (size_t)features, err) != 0)
            goto done;
        if (has_targets && task == NB_TASK_CLASSIFICATION) {
            if (encode_class(&e, i, &out->labels[row], err) != 0)
                goto done;
        } else if (has_targets) {
            float *y = out->target + row * (size_t)targets;
            for (int tc = 0; tc < t->n_columns; tc++)
                if (t->columns[tc].kind == NB_COLUMN_TARGET)
                    *y++ = r->cell[cell_at(&e, i, e.source[tc])].number;
        }
        row++;
    }
    out->n = e.n_keep;
    out->features = features;
    out->task = task;
    out->classes = task == NB_TASK_CLASSIFICATION ? t->n_classes : 0;
    out->targets = task == NB_TASK_CLASSIFICATION ? 0 : targets;
    out->table = t;
    rc = 0;

done:
    encoder_free(&e);
    return rc;
}
