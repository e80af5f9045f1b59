/* A table data set's columns (nb_table) as JSON, for a model's metadata and a checkpoint: how
 * the training CSV was read, so that new rows are read the same way. Not part of the public API.
 *
 *   {"header": true, "delimiter": ",",
 *    "columns": [{"name": "size", "kind": "number"},
 *                {"name": "age", "kind": "number", "fill": 41.5},
 *                {"name": "color", "kind": "category", "categories": ["blue", "red"]},
 *                {"name": "species", "kind": "target"}],
 *    "classes": ["setosa", "versicolor", "virginica"]}
 *
 * "name" is null without a header line. "fill" is present when the column was read with
 * --missing mean (a category's missing value then has no one-hot bit; its "fill" is 0).
 * "classes" is present for classification only. Reading checks everything a reader of the
 * table relies on: the kinds, unique categories and classes, at least one feature and one
 * target, finite fills, names on every column or none; damaged metadata is an error, never a
 * crash. */
#ifndef NABLA_TABLE_JSON_H
#define NABLA_TABLE_JSON_H

#include <cjson/cJSON.h>

#include "nabla.h"

/* The JSON text of t, malloc'd (free()); NULL when out of memory. */
char *nb_table_to_json(const nb_table *t);
/* The same as a cJSON tree (cJSON_Delete it), to put inside a larger object. */
cJSON *nb_table_to_cjson(const nb_table *t);

/* Reads JSON text (or a parsed item) into out (nb_table_free it). `what` names the source in
 * messages ("model.safetensors: metadata nabla.table"). Returns 0, or -1 with a message and
 * out zeroed. */
int nb_table_from_json(const char *json, const char *what, nb_table *out, nb_error *err);
int nb_table_from_cjson(const cJSON *item, const char *what, nb_table *out, nb_error *err);

#endif /* NABLA_TABLE_JSON_H */
