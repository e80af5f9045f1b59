/* Checks on JSON that cJSON does not make, shared by every reader of JSON in nabla (the
 * safetensors header and its metadata, the files of runs and studies). Not part of the public
 * API. */
#ifndef NABLA_JSON_CHECK_H
#define NABLA_JSON_CHECK_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* The first name that appears twice in one object anywhere in the tree under item (objects
 * before the objects inside them), or NULL when every object's names are unique. cJSON keeps
 * both members and its lookups find the first, so a reader that did not look would quietly
 * take `{"epoch":3,"epoch":9}` for epoch 3; JSON (RFC 8259) leaves such an object's meaning
 * open, and nabla never writes one. *object (may be NULL) gets the object that holds the name
 * twice: item itself, or an object inside it (whose ->string names it when it is a member). */
const char *nb_json_duplicate_name(const cJSON *item, const cJSON **object);

/* Whether the n bytes at s could be the beginning of a JSON object: a prefix of some valid
 * JSON text that starts with '{' (leading blanks allowed). A line cut short while it was being
 * written is one; binary data, or text that is no JSON, is not. */
int nb_json_object_prefix(const char *s, size_t n);

/* Whether s is one JSON number and nothing else ("0.01", "-1e-05"; not " 1", "+1", "01", "1.",
 * "0x10", "inf"): how nabla writes the numbers it keeps in strings, such as a model's metadata. */
int nb_json_number_text(const char *s);

#endif /* NABLA_JSON_CHECK_H */
