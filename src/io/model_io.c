/*
 * A model in a safetensors file: every named tensor of its graph under the names of the
 * equivalent torch.nn.Sequential ("0.weight", "1.running_mean", "1.num_batches_tracked", ...),
 * so the file loads into PyTorch with load_state_dict(strict=True) and a state_dict saved by
 * PyTorch loads here; the architecture travels as strings in __metadata__.
 *
 * Loading is all or nothing: the whole file is checked against the model (names, dtypes,
 * shapes, finite values) before the first weight is copied.
 *
 * Values are converted to and from little-endian bytes explicitly rather than by pointer
 * casts, so this is right on any host and never reads unaligned floats from the file buffer.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/json_check.h"
#include "core/little_endian.h"
#include "core/memcheck.h"
#include "core/strbuf.h"
#include "io/model_io.h"
#include "nabla.h"
#include "io/table_json.h"
#include "nn/layers.h"
#include "io/safetensors_internal.h"

#define FORMAT_NAME "nabla"

/* ---------------------------------------------------------------------------------------- */
/* Small string helpers                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* "'a', 'b' and 3 more": names for one error line. */
typedef struct name_list {
    char text[320];
    int count, shown;
} name_list;

static void names_add(name_list *l, const char *name)
{
    size_t used = strlen(l->text);
    size_t need = strlen(name) + 4;
    if (l->count == l->shown && used + need < sizeof l->text - 24) {
        snprintf(l->text + used, sizeof l->text - used, "%s'%s'", l->shown ? ", " : "", name);
        l->shown++;
    }
    l->count++;
}

static const char *names_text(name_list *l)
{
    if (l->count > l->shown) {
        size_t used = strlen(l->text);
        snprintf(l->text + used, sizeof l->text - used, " and %d more", l->count - l->shown);
        l->shown = l->count;
    }
    return l->text;
}

/* ---------------------------------------------------------------------------------------- */
/* Saving                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* "[0.5,1.25]": floats printed with 9 significant digits, enough to read back the same float. */
static int format_floats(nb_strbuf *b, const float *v, int n)
{
    nb_sb_printf(b, "[");
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return -1;
        nb_sb_printf(b, "%s%.9g", i ? "," : "", (double)v[i]);
    }
    nb_sb_printf(b, "]");
    return 0;
}

static int compare_meta_keys(const void *a, const void *b)
{
    const nb_st_meta *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

int nb_checksum_meta(uint32_t *crc, const nb_st_meta *meta, int n, nb_error *err)
{
    const nb_st_meta **sorted = malloc((n > 0 ? (size_t)n : 1) * sizeof *sorted);
    if (!sorted)
        return nb_fail(err, "out of memory");
    for (int i = 0; i < n; i++)
        sorted[i] = &meta[i];
    qsort(sorted, (size_t)n, sizeof *sorted, compare_meta_keys);
    for (int i = 0; i < n; i++) {
        if (strcmp(sorted[i]->key, NB_CRC_KEY) == 0)
            continue;
        *crc = nb_crc32c(*crc, sorted[i]->key, strlen(sorted[i]->key) + 1);
        *crc = nb_crc32c(*crc, sorted[i]->value, strlen(sorted[i]->value) + 1);
    }
    free(sorted);
    return 0;
}

int nb_model_save(const nb_model *m, const char *path, nb_error *err)
{
    return nb_model_save_ex(m, path, NULL, 0, NULL, 0, 0, err);
}

int nb_model_save_ex(const nb_model *m, const char *path, const nb_st_tensor *extra,
                     int n_extra, const nb_st_meta *extra_meta, int n_extra_meta, int checksum,
                     nb_error *err)
{
    if (!m || !m->graph)
        return nb_fail(err, "%s: no model to save", path ? path : "(null)");
    const nb_graph *g = m->graph;
    const nb_model_spec *spec = &m->spec;
    int n = nb_graph_named_count(g);

    /* The tensors are written from where they are (nb_le_view): saving a model, or a
     * checkpoint at the end of a run that has only just enough memory, needs no second copy of
     * the weights. owned[i] is tensor i's converted copy on a big-endian host. */
    nb_st_tensor *tensors = calloc((size_t)n + (size_t)n_extra + 1, sizeof *tensors);
    unsigned char **owned = calloc((size_t)n + 1, sizeof *owned);
    nb_st_meta *meta = calloc(16 + (size_t)n_extra_meta, sizeof *meta);
    int rc = tensors && owned && meta ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        nb_named t = nb_graph_named(g, i);
        nb_st_tensor *st = &tensors[i];
        st->name = (char *)t.name;
        if (t.kind == NB_KIND_COUNTER) {
            /* A 0-dim int64, as PyTorch stores num_batches_tracked. */
            st->dtype = NB_I64;
            st->ndim = 0;
            st->nbytes = 8;
            st->data = nb_le_view(t.counter, 1, 8, &owned[i]);
        } else {
            nb_tensor v = nb_node_value(t.node);
            size_t count = nb_tensor_numel(&v);
            st->dtype = NB_F32;
            st->ndim = v.ndim;
            for (int d = 0; d < v.ndim; d++)
                st->shape[d] = v.shape[d];
            st->nbytes = count * 4;
            st->data = nb_le_view(v.data, count, 4, &owned[i]);
        }
        if (!st->data && st->nbytes)
            rc = -1;
    }
    if (rc != 0) {
        for (int i = 0; owned && i < n; i++)
            free(owned[i]);
        free(owned);
        free(tensors);
        free(meta);
        return nb_fail(err, "%s: out of memory", path);
    }

    /* The architecture: the model's text form, its input shape and its classes. */
    char input[48], classes[16], text[NB_LAYERS_TEXT_MAX];
    nb_shape_format(spec->input, input, sizeof input);
    snprintf(classes, sizeof classes, "%d", spec->classes);
    if (rc == 0 && nb_layers_format(&spec->layers, text, sizeof text) < 0)
        rc = nb_fail(err, "%s: the model's layers cannot be written", path);
    nb_strbuf mean = {0}, std = {0}, t_mean = {0}, t_std = {0};
    const nb_st_meta architecture[7] = {
        {"format", FORMAT_NAME},
        {"nabla_version", NABLA_VERSION},
        {"model", text},
        {"input_shape", input},
        {"classes", classes},
        {"task", (char *)nb_task_name(spec->task)},
        {"loss", (char *)nb_loss_name(spec->loss)},
    };
    int n_meta = 7;
    memcpy(meta, architecture, sizeof architecture);
    if (m->norm_mean && m->norm_std) {
        if (format_floats(&mean, m->norm_mean, nb_model_features(spec)) != 0 ||
            format_floats(&std, m->norm_std, nb_model_features(spec)) != 0)
            rc = nb_fail(err, "%s: the model's input normalization is not finite", path);
        meta[n_meta++] = (nb_st_meta){"normalize_mean", mean.data};
        meta[n_meta++] = (nb_st_meta){"normalize_std", std.data};
    }
    if (m->target_mean && m->target_std) {
        if (format_floats(&t_mean, m->target_mean, spec->classes) != 0 ||
            format_floats(&t_std, m->target_std, spec->classes) != 0)
            rc = nb_fail(err, "%s: the model's target scaling is not finite", path);
        meta[n_meta++] = (nb_st_meta){"target_mean", t_mean.data};
        meta[n_meta++] = (nb_st_meta){"target_std", t_std.data};
    }
    /* How a table training set was read, for new rows to be read the same way. */
    char *table = NULL;
    if (m->table) {
        table = nb_table_to_json(m->table);
        if (!table)
            rc = nb_fail(err, "%s: out of memory", path);
        meta[n_meta++] = (nb_st_meta){"table", table};
    }
    if (rc == 0 && (mean.failed || std.failed || t_mean.failed || t_std.failed))
        rc = nb_fail(err, "%s: out of memory", path);
    for (int i = 0; i < n_extra; i++)
        tensors[n + i] = extra[i];
    for (int i = 0; i < n_extra_meta; i++)
        meta[n_meta++] = extra_meta[i];
    /* The data section is the tensors' bytes in order, so its checksum can be taken here;
     * the metadata follows it into the checksum (see nb_checksum_meta). */
    char crc_text[16];
    if (checksum && rc == 0) {
        uint32_t crc = 0;
        for (int i = 0; i < n + n_extra; i++)
            crc = nb_crc32c(crc, tensors[i].data, tensors[i].nbytes);
        rc = nb_checksum_meta(&crc, meta, n_meta, err);
        snprintf(crc_text, sizeof crc_text, "%08x", (unsigned)crc);
        meta[n_meta++] = (nb_st_meta){NB_CRC_KEY, crc_text};
    }
    if (rc == 0)
        rc = nb_st_write(path, tensors, n + n_extra, meta, n_meta, err);
    nb_sb_free(&mean);
    nb_sb_free(&std);
    nb_sb_free(&t_mean);
    nb_sb_free(&t_std);
    free(table);
    for (int i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(tensors);
    free(meta);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading weights                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* The file's tensors against the model's: names, dtypes and shapes, checked before any
 * number is read. */
static int check_tensors(const nb_model *m, const nb_st_file *f, const char *what,
                         nb_error *err)
{
    const nb_graph *g = m->graph;
    int n = nb_graph_named_count(g);
    char have[128], need[128];
    name_list missing = {0}, extra = {0};

    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(g, i);
        const nb_st_tensor *st = nb_st_find(f, t.name);
        if (!st) {
            names_add(&missing, t.name);
            continue;
        }
        if (t.kind == NB_KIND_COUNTER) {
            if (st->dtype != NB_I64)
                return nb_fail(err, "%s: tensor '%s' has dtype F32, the model needs I64", what,
                               t.name);
            if (!(st->ndim == 0 || (st->ndim == 1 && st->shape[0] == 1)))
                return nb_fail(err, "%s: tensor '%s' has shape %s, the model needs [] (or [1])",
                               what, t.name, nb_shape_str(st->shape, st->ndim, have, sizeof have));
            continue;
        }
        nb_tensor v = nb_node_value(t.node);
        int64_t vshape[NB_MAX_DIMS];
        for (int d = 0; d < v.ndim; d++)
            vshape[d] = v.shape[d];
        if (st->dtype != NB_F32)
            return nb_fail(err, "%s: tensor '%s' has dtype I64, the model needs F32", what,
                           t.name);
        int same = st->ndim == v.ndim;
        for (int d = 0; same && d < v.ndim; d++)
            same = st->shape[d] == vshape[d];
        if (!same)
            return nb_fail(err, "%s: tensor '%s' has shape %s, the model needs %s", what, t.name,
                           nb_shape_str(st->shape, st->ndim, have, sizeof have),
                           nb_shape_str(vshape, v.ndim, need, sizeof need));
    }
    if (missing.count > 0)
        return nb_fail(err, "%s: the model's tensor%s %s %s missing from the file", what,
                       missing.count > 1 ? "s" : "", names_text(&missing),
                       missing.count > 1 ? "are" : "is");

    /* A checkpoint also holds the training state, under names no model tensor has. */
    int checkpoint = nb_st_meta_get(f, NB_CHECKPOINT_KEY) != NULL;
    for (int i = 0; i < f->n_tensors; i++) {
        nb_named found;
        const char *name = f->tensors[i].name;
        if (checkpoint && (strncmp(name, NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER,
                                   strlen(NB_CHECKPOINT_TENSOR_PREFIX_OPTIMIZER)) == 0 ||
                           strncmp(name, NB_CHECKPOINT_TENSOR_PREFIX_TRAIN,
                                   strlen(NB_CHECKPOINT_TENSOR_PREFIX_TRAIN)) == 0))
            continue;
        if (!nb_graph_find(g, name, &found))
            names_add(&extra, name);
    }
    if (extra.count > 0)
        return nb_fail(err, "%s: the file has tensor%s the model does not: %s", what,
                       extra.count > 1 ? "s" : "", names_text(&extra));
    return 0;
}

int nb_st_read_floats(const nb_st_file *f, const nb_st_tensor *st, float *dst, size_t count,
                      nb_error *err)
{
    /* Straight into place: a file opened with nb_st_open is read into dst, not into a copy
     * of its own first. */
    if (nb_st_tensor_bytes(f, st, 0, count * sizeof(float), dst, err) != 0)
        return -1;
    if (!nb_host_little_endian())
        for (size_t k = 0; k < count; k++) {
            unsigned char bytes[4];
            memcpy(bytes, &dst[k], 4);
            dst[k] = nb_load_f32_le(bytes);
        }
    return 0;
}

/* Reads every tensor and checks its numbers: no NaN or infinity, no negative running variance
 * (batch norm's is an average of variances; a negative one would make the model's outputs
 * NaN), no negative counter. Into the model, or, given `scratch` (room for the largest
 * tensor), into it only: a check that changes nothing. */
static int read_weights(nb_model *m, const nb_st_file *f, const char *what, float *scratch,
                        nb_error *err)
{
    int n = nb_graph_named_count(m->graph);
    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(m->graph, i);
        const nb_st_tensor *st = nb_st_find(f, t.name);
        if (t.kind == NB_KIND_COUNTER) {
            unsigned char p[8];
            if (nb_st_tensor_bytes(f, st, 0, 8, p, err) != 0)
                return -1;
            if (nb_load_i64_le(p) < 0)
                return nb_fail(err, "%s: tensor '%s' is negative (%lld)", what, t.name,
                               (long long)nb_load_i64_le(p));
            if (!scratch)
                *t.counter = nb_load_i64_le(p);
            continue;
        }
        nb_tensor v = nb_node_value(t.node);
        size_t count = nb_tensor_numel(&v);
        float *x = scratch ? scratch : v.data;
        if (nb_st_read_floats(f, st, x, count, err) != 0)
            return -1;
        size_t len = strlen(t.name);
        int variance = t.kind == NB_KIND_STATE && len >= 12 &&
                       strcmp(t.name + len - 12, ".running_var") == 0;
        for (size_t k = 0; k < count; k++) {
            if (!isfinite(x[k]))
                return nb_fail(err, "%s: tensor '%s' element %zu is %s", what, t.name, k,
                               isnan(x[k]) ? "NaN" : "infinite");
            if (variance && x[k] < 0)
                return nb_fail(err, "%s: tensor '%s' element %zu is %g: a variance cannot be "
                               "negative", what, t.name, k, (double)x[k]);
        }
    }
    return 0;
}

int nb_model_apply_weights(nb_model *m, const nb_st_file *f, const char *what, nb_error *err)
{
    if (check_tensors(m, f, what, err) != 0)
        return -1;
    /* A file in memory is checked whole before the model changes; one read from its file goes
     * straight into the model (the caller frees a model it failed to fill). */
    if (f->buffer) {
        size_t largest = 1;
        for (int i = 0; i < f->n_tensors; i++)
            if (f->tensors[i].nbytes / 4 > largest)
                largest = f->tensors[i].nbytes / 4;
        float *scratch = malloc(largest * sizeof *scratch);
        if (!scratch)
            return nb_fail(err, "%s: out of memory", what);
        int rc = read_weights(m, f, what, scratch, err);
        free(scratch);
        if (rc != 0)
            return -1;
    }
    return read_weights(m, f, what, NULL, err);
}

int nb_model_load_weights(nb_model *m, const char *path, nb_error *err)
{
    if (!m || !m->graph)
        return nb_fail(err, "%s: no model to load weights into", path ? path : "(null)");
    nb_st_file f;
    if (nb_st_read(path, &f, err) != 0)   /* in memory: the model changes only if all is well */
        return -1;
    int rc = nb_model_apply_weights(m, &f, path, err);
    nb_st_free(&f);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading a whole model                                                                    */
/* ---------------------------------------------------------------------------------------- */

static const char *need_meta(const nb_st_file *f, const char *key, const char *what,
                             nb_error *err)
{
    const char *v = nb_st_meta_get(f, key);
    if (!v)
        nb_fail(err, "%s: __metadata__ has no '%s'", what, key);
    return v;
}

/* Metadata numbers are read as strictly as nabla writes them: a whole number in digits, without
 * a sign, a blank or a leading zero ("%d"); a decimal number as JSON writes one ("%.9g"). A
 * file whose " 8", "+8", "08" or "0x1p-7" a lenient parse would take is refused instead. */
static int plain_whole(const char *s, size_t n)
{
    size_t digits = 0;
    while (digits < n && isdigit((unsigned char)s[digits]))
        digits++;
    return n > 0 && digits == n && !(s[0] == '0' && n > 1);
}

static int meta_positive_int(const nb_st_file *f, const char *key, const char *what, int *out,
                             nb_error *err)
{
    const char *s = need_meta(f, key, what, err);
    if (!s)
        return -1;
    errno = 0;
    long v = plain_whole(s, strlen(s)) ? strtol(s, NULL, 10) : 0;
    if (errno || v < 1 || v > INT_MAX)
        return nb_fail(err, "%s: metadata '%s' is '%s', expected a positive integer", what, key,
                       s);
    *out = (int)v;
    return 0;
}

/* "" (no hidden layer) or widths as plain whole numbers separated by commas ("256,128"). */
static int plain_layers(const char *s)
{
    for (const char *p = s; *s;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (!plain_whole(p, n))
            return 0;
        if (!comma)
            return 1;
        p = comma + 1;
    }
    return 1;
}

/* A JSON array of exactly n finite numbers in a metadata string. A standard deviation (positive)
 * is at least the smallest normal float, as nb_dataset_stats makes it: dividing by a subnormal
 * one (1e-45) would turn any input into an infinity. */
static int meta_floats(const nb_st_file *f, const char *key, const char *what, int n,
                       int positive, float **out, nb_error *err)
{
    const char *s = nb_st_meta_get(f, key);
    cJSON *arr = cJSON_Parse(s);
    int rc = 0;
    if (!cJSON_IsArray(arr)) {
        rc = nb_fail(err, "%s: metadata '%s' is not a JSON array of numbers", what, key);
    } else if (cJSON_GetArraySize(arr) != n) {
        rc = nb_fail(err, "%s: metadata '%s' has %d values, expected %d (one for each of the "
                     "model's %s)", what, key, cJSON_GetArraySize(arr), n,
                     strncmp(key, "target", 6) == 0 ? "outputs" : "inputs");
    } else if (!(*out = malloc((size_t)n * sizeof **out))) {
        rc = nb_fail(err, "%s: out of memory", what);
    } else {
        int i = 0;
        for (const cJSON *x = arr->child; x && rc == 0; x = x->next, i++) {
            float v = cJSON_IsNumber(x) ? (float)x->valuedouble : NAN;
            char shown[40] = "not a number";
            if (cJSON_IsNumber(x))
                snprintf(shown, sizeof shown, "%.9g", x->valuedouble);
            if (!isfinite(v) || (positive && !(v >= FLT_MIN)))
                rc = nb_fail(err, "%s: metadata '%s' value %d is not a %s (%s)", what, key, i,
                             positive ? "positive finite number of at least 1.17549435e-38, the "
                                        "smallest normal float"
                                      : "finite number",
                             shown);
            else
                (*out)[i] = v;
        }
        if (rc != 0) {
            free(*out);
            *out = NULL;
        }
    }
    cJSON_Delete(arr);
    return rc;
}

/* The task and loss (files written before regression was added have neither: a classifier
 * trained with cross-entropy). */
static int read_task(const nb_st_file *f, const char *what, nb_model_spec *spec, nb_error *err)
{
    const char *task = nb_st_meta_get(f, "task"), *loss = nb_st_meta_get(f, "loss");
    spec->task = NB_TASK_CLASSIFICATION;
    if (task && nb_task_parse(task, &spec->task) != 0)
        return nb_fail(err, "%s: metadata 'task' is '%s', expected classification, regression "
                       "or multilabel", what, task);
    spec->loss = nb_task_default_loss(spec->task);
    if (loss && nb_loss_parse(loss, &spec->loss) != 0)
        return nb_fail(err, "%s: metadata 'loss' is '%s', not a known loss", what, loss);
    if (nb_loss_task(spec->loss) != spec->task)
        return nb_fail(err, "%s: metadata 'loss' is '%s', which does not train a %s model", what,
                       loss, nb_task_name(spec->task));
    return 0;
}

/* The table of a model trained on a CSV file ("table" in __metadata__; NULL without one),
 * checked against the model: its features and its classes or targets. */
static int read_table(const nb_st_file *f, const char *what, const nb_model_spec *spec,
                      nb_table **out, nb_error *err)
{
    *out = NULL;
    const char *json = nb_st_meta_get(f, "table");
    if (!json)
        return 0;
    nb_table *t = calloc(1, sizeof *t);
    if (!t)
        return nb_fail(err, "%s: out of memory", what);
    char where[600];
    snprintf(where, sizeof where, "%s: metadata 'table'", what);
    if (nb_table_from_json(json, where, t, err) != 0) {
        free(t);
        return -1;
    }
    int inputs = 0, targets = 0;
    for (int i = 0; i < t->n_columns; i++) {
        const nb_column *c = &t->columns[i];
        inputs += c->kind == NB_COLUMN_NUMBER ? 1 : c->kind == NB_COLUMN_CATEGORY ? c->n_categories
                                                                                  : 0;
        targets += c->kind == NB_COLUMN_TARGET;
    }
    int want_targets = spec->task == NB_TASK_CLASSIFICATION ? 1 : spec->classes;
    int rc = 0;
    if (inputs != nb_model_features(spec))
        rc = nb_fail(err, "%s: its columns make %d inputs, the model takes %d", where, inputs,
                     nb_model_features(spec));
    else if (targets != want_targets)
        rc = nb_fail(err, "%s: %d target columns, the model predicts %d", where, targets,
                     want_targets);
    else if (spec->task == NB_TASK_CLASSIFICATION && t->n_classes != spec->classes)
        rc = nb_fail(err, "%s: %d classes, the model has %d", where, t->n_classes,
                     spec->classes);
    if (rc != 0) {
        nb_table_free(t);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* A mean and a standard deviation of n values each, both or neither (then both stay NULL). */
static int meta_scaling(const nb_st_file *f, const char *mean_key, const char *std_key,
                        const char *what, int n, float **mean, float **std, nb_error *err)
{
    int has_mean = nb_st_meta_get(f, mean_key) != NULL;
    int has_std = nb_st_meta_get(f, std_key) != NULL;
    if (has_mean != has_std)
        return nb_fail(err, "%s: __metadata__ has '%s' without '%s'", what,
                       has_mean ? mean_key : std_key, has_mean ? std_key : mean_key);
    if (!has_mean)
        return 0;
    if (meta_floats(f, mean_key, what, n, 0, mean, err) != 0)
        return -1;
    if (meta_floats(f, std_key, what, n, 1, std, err) != 0) {
        free(*mean);
        *mean = NULL;
        return -1;
    }
    return 0;
}

/* The architecture of a file written before models had a text form: hidden widths, one
 * activation, its leaky slope and the batch-norm flag (nb_mlp). */
static int read_mlp(const nb_st_file *f, const char *what, nb_model_spec *spec, nb_error *err)
{
    nb_mlp mlp;
    memset(&mlp, 0, sizeof mlp);
    if (meta_positive_int(f, "inputs", what, &mlp.inputs, err) != 0 ||
        meta_positive_int(f, "classes", what, &mlp.classes, err) != 0)
        return -1;

    const char *layers = need_meta(f, "layers", what, err);
    if (!layers)
        return -1;
    nb_error inner;
    if (!plain_layers(layers))
        return nb_fail(err, "%s: metadata 'layers' is '%s', expected widths in digits separated "
                       "by commas, like '256,128' ('' for none)", what, layers);
    if (nb_parse_layers(layers, &mlp, &inner) != 0)
        return nb_fail(err, "%s: metadata 'layers': %s", what, inner.msg);

    const char *act = need_meta(f, "activation", what, err);
    if (!act)
        return -1;
    if (nb_activation_parse(act, &mlp.activation) != 0)
        return nb_fail(err, "%s: metadata 'activation' is '%s', not a known activation", what,
                       act);

    const char *slope = need_meta(f, "leaky_slope", what, err);
    if (!slope)
        return -1;
    mlp.leaky_slope = nb_json_number_text(slope) ? strtof(slope, NULL) : NAN;
    if (!isfinite(mlp.leaky_slope))
        return nb_fail(err, "%s: metadata 'leaky_slope' is '%s', expected a finite number", what,
                       slope);

    const char *bn = need_meta(f, "batchnorm", what, err);
    if (!bn)
        return -1;
    if (strcmp(bn, "0") != 0 && strcmp(bn, "1") != 0)
        return nb_fail(err, "%s: metadata 'batchnorm' is '%s', expected '0' or '1'", what, bn);
    mlp.batchnorm = bn[0] == '1';
    if (nb_model_spec_mlp(spec, &mlp, &inner) != 0)
        return nb_fail(err, "%s: metadata: %s", what, inner.msg);
    return read_task(f, what, spec, err);
}

static int read_spec(const nb_st_file *f, const char *what, nb_model_spec *spec, nb_error *err)
{
    memset(spec, 0, sizeof *spec);
    const char *format = nb_st_meta_get(f, "format");
    if (!format || strcmp(format, FORMAT_NAME) != 0)
        return nb_fail(err, "%s: not a nabla model file (__metadata__ 'format' is %s%s%s, "
                       "expected '" FORMAT_NAME "')", what, format ? "'" : "",
                       format ? format : "missing", format ? "'" : "");
    const char *text = nb_st_meta_get(f, "model");
    if (!text)
        return read_mlp(f, what, spec, err);
    /* One description of the model, not two that could disagree. */
    static const char *const older[] = {"inputs", "layers", "activation", "leaky_slope",
                                        "batchnorm"};
    for (size_t i = 0; i < sizeof older / sizeof older[0]; i++)
        if (nb_st_meta_get(f, older[i]))
            return nb_fail(err, "%s: __metadata__ has both 'model' and '%s' (a model is one or "
                           "the other)", what, older[i]);
    const char *input = need_meta(f, "input_shape", what, err);
    int classes;
    if (!input || meta_positive_int(f, "classes", what, &classes, err) != 0)
        return -1;
    nb_shape shape;
    if (nb_shape_parse(input, &shape) != 0)
        return nb_fail(err, "%s: metadata 'input_shape' is '%s', expected N or CxHxW", what,
                       input);
    nb_error inner;
    if (nb_model_spec_parse(spec, text, shape, classes, &inner) != 0)
        return nb_fail(err, "%s: metadata 'model': %s", what, inner.msg);
    return read_task(f, what, spec, err);
}

int nb_model_load_info(const char *path, nb_model_spec *spec, nb_table **table, nb_error *err)
{
    *table = NULL;
    nb_st_file f;
    if (nb_st_open(path, &f, err) != 0)
        return -1;
    int rc = read_spec(&f, path, spec, err);
    if (rc == 0)
        rc = read_table(&f, path, spec, table, err);
    nb_st_free(&f);
    return rc;
}

/* Every tensor the metadata describes must be in the file. Checked before the model is
 * built, so that a few bytes of metadata ("input_shape": "1000000") cannot make the loader
 * allocate and initialize a model of gigabytes only to find the file does not match it. */
static int check_spec_fits_file(const nb_model_spec *spec, const nb_st_file *f, const char *what,
                                nb_error *err)
{
    nb_layer_param params[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_params(&spec->layers, spec->input, spec->classes, params,
                         NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX, &count, err) != 0)
        return -1;
    uint64_t weights = 0, numbers = 0;
    for (int i = 0; i < count; i++)
        if (params[i].kind != NB_KIND_COUNTER)
            weights = nb_sat_add(weights, (uint64_t)nb_layer_param_numel(&params[i]));
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].dtype == NB_F32)
            numbers += f->tensors[i].nbytes / 4;
    if (weights > numbers)
        return nb_fail(err, "%s: the metadata describes a model of %llu numbers, but the file "
                       "holds only %llu", what, (unsigned long long)weights,
                       (unsigned long long)numbers);
    return 0;
}

int nb_model_load(nb_model *m, const char *path, int max_batch, nb_error *err)
{
    memset(m, 0, sizeof *m);
    nb_st_file f;
    if (nb_st_open(path, &f, err) != 0)   /* the weights are read into the model built */
        return -1;
    nb_model_spec spec;
    float *mean = NULL, *std = NULL, *t_mean = NULL, *t_std = NULL;
    int rc = read_spec(&f, path, &spec, err);
    if (rc == 0)
        rc = check_spec_fits_file(&spec, &f, path, err);
    if (rc == 0)
        rc = meta_scaling(&f, "normalize_mean", "normalize_std", path,
                          nb_model_features(&spec), &mean, &std, err);
    if (rc == 0)
        rc = meta_scaling(&f, "target_mean", "target_std", path, spec.classes, &t_mean, &t_std,
                          err);
    if (rc == 0 && t_mean && spec.task != NB_TASK_REGRESSION)
        rc = nb_fail(err, "%s: __metadata__ has 'target_mean' but the model is not a "
                     "regression model", path);
    nb_table *table = NULL;
    if (rc == 0)
        rc = read_table(&f, path, &spec, &table, err);
    if (rc == 0) {
        nb_error inner;
        if (nb_model_build(m, &spec, max_batch, 0, &inner) != 0) {
            rc = nb_fail(err, "%s: %s", path, inner.msg);
            memset(m, 0, sizeof *m);
        } else if (nb_model_apply_weights(m, &f, path, err) != 0) {
            nb_model_free(m);
            memset(m, 0, sizeof *m);
            rc = -1;
        } else {
            m->norm_mean = mean;
            m->norm_std = std;
            m->target_mean = t_mean;
            m->target_std = t_std;
            m->table = table;
            mean = std = t_mean = t_std = NULL;
            table = NULL;
        }
    }
    free(mean);
    free(std);
    free(t_mean);
    free(t_std);
    nb_table_free(table);
    free(table);
    nb_st_free(&f);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* A plain state_dict, the architecture given                                               */
/* ---------------------------------------------------------------------------------------- */

/* The shape of tensor "<index>.weight" in f, or NULL with a message. */
static const nb_st_tensor *layer_weight(const nb_st_file *f, int index, const char *what,
                                        nb_error *err)
{
    char name[32];
    snprintf(name, sizeof name, "%d.weight", index);
    const nb_st_tensor *t = nb_st_find(f, name);
    if (!t || t->ndim < 2)
        nb_fail(err, "%s: no tensor '%s' of at least 2 dimensions, which layer %d of the "
                     "model needs", what, name, index);
    return t;
}

int nb_model_load_state_dict(nb_model *m, const char *path, const char *layers, nb_shape input,
                             nb_task task, int max_batch, nb_error *err)
{
    memset(m, 0, sizeof *m);
    nb_layers parsed;
    if (nb_layers_parse(layers, &parsed, err) != 0)
        return -1;
    int first = -1, last = -1;
    for (int i = 0; i < parsed.n; i++) {
        nb_layer_kind k = parsed.layer[i].kind;
        if (first < 0 && (k == NB_LAYER_LINEAR || k == NB_LAYER_CONV2D))
            first = i;
        if (k == NB_LAYER_LINEAR)
            last = i;
    }
    if (last < 0)
        return nb_fail(err, "%s: the model '%s' has no linear layer to end in", path, layers);
    nb_st_file f;
    if (nb_st_open(path, &f, err) != 0)
        return -1;
    int rc = 0;
    const nb_st_tensor *out = layer_weight(&f, last, path, err), *in = NULL;
    if (!out)
        rc = -1;
    else if (input.ndim == 0 && parsed.layer[first].kind != NB_LAYER_LINEAR)
        rc = nb_fail(err, "%s: the model begins with conv2d: give its input shape (C,H,W)",
                     path);
    else if (input.ndim == 0 && !(in = layer_weight(&f, first, path, err)))
        rc = -1;
    if (rc == 0 && input.ndim == 0) {
        if (in->shape[1] < 1 || in->shape[1] > INT_MAX)
            rc = nb_fail(err, "%s: tensor '%d.weight' has %lld inputs", path, first,
                         (long long)in->shape[1]);
        else
            input = nb_shape_vector((int)in->shape[1]);
    }
    nb_model_spec spec;
    if (rc == 0 && (out->shape[0] < 1 || out->shape[0] > INT_MAX))
        rc = nb_fail(err, "%s: tensor '%d.weight' has %lld outputs", path, last,
                     (long long)out->shape[0]);
    if (rc == 0 && nb_model_spec_parse(&spec, layers, input, (int)out->shape[0], err) != 0)
        rc = -1;
    if (rc == 0) {
        spec.task = task;
        spec.loss = nb_task_default_loss(task);
        rc = check_spec_fits_file(&spec, &f, path, err);
    }
    if (rc == 0 && nb_model_build(m, &spec, max_batch, 0, err) != 0)
        rc = -1;
    else if (rc == 0 && nb_model_apply_weights(m, &f, path, err) != 0) {
        nb_model_free(m);
        rc = -1;
    }
    nb_st_free(&f);
    return rc;
}
