/* A model's arguments searched by name: {name} in a model's text (see model_arguments.h). */
#include "cli/tune/model_arguments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common/options.h"
#include "cli/train/train_options.h"
#include "core/strbuf.h"

static const char *const CMD = "tune";

/* The k-th model's text the study can give a trial (the fixed --layers, then each value of a
 * searched layers, as written: '|' between layers), or NULL past the last. */
static const char *model_text(const tune_options *o, int k)
{
    const char *fixed = tune_fixed_value(o, "layers");
    if (fixed && k-- == 0)
        return fixed;
    for (int i = 0; i < o->space.n; i++)
        if (strcmp(o->space.p[i].name, "layers") == 0)
            return k < o->space.p[i].n_choices ? o->space.p[i].choices[k] : NULL;
    return NULL;
}

/* The next {name} of text at or after *pos: 1 with its name in name and [*start, *pos) its
 * braces and all; 0 when there is none; -1 for a malformed one, said in why. */
static int next_argument(const char *text, size_t *pos, size_t *start,
                         char name[NB_SEARCH_NAME_MAX], char *why, size_t why_cap)
{
    const char *open = strpbrk(text + *pos, "{}");
    if (!open)
        return 0;
    if (*open == '}') {
        snprintf(why, why_cap, "a '}' with no '{' before it");
        return -1;
    }
    const char *close = strpbrk(open + 1, "{}");
    if (!close || *close == '{') {
        snprintf(why, why_cap, "a '{' that no '}' closes");
        return -1;
    }
    size_t n = (size_t)(close - open - 1);
    if (n == 0) {
        snprintf(why, why_cap, "{} names no parameter");
        return -1;
    }
    if (n >= NB_SEARCH_NAME_MAX) {
        snprintf(why, why_cap, "{%.*s}: a name has at most %d characters", (int)n, open + 1,
                 NB_SEARCH_NAME_MAX - 1);
        return -1;
    }
    for (size_t i = 1; i <= n; i++) {
        char c = open[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            snprintf(why, why_cap, "{%.*s}: a name may only hold lowercase letters, digits "
                                   "and '-'", (int)n, open + 1);
            return -1;
        }
    }
    memcpy(name, open + 1, n);
    name[n] = '\0';
    *start = (size_t)(open - text);
    *pos = (size_t)(close + 1 - text);
    return 1;
}

static int text_uses(const char *text, const char *name)
{
    size_t pos = 0, start;
    char found[NB_SEARCH_NAME_MAX], why[128];
    while (next_argument(text, &pos, &start, found, why, sizeof why) == 1)
        if (strcmp(found, name) == 0)
            return 1;
    return 0;
}

int tune_is_model_argument(const tune_options *o, const char *name)
{
    const char *text;
    for (int k = 0; (text = model_text(o, k)) != NULL; k++)
        if (text_uses(text, name))
            return 1;
    return 0;
}

int tune_shapes_model(const tune_options *o, const nb_search_param *p)
{
    return strcmp(p->name, "layers") == 0 || tune_is_model_argument(o, p->name);
}

static int space_index(const tune_options *o, const char *name)
{
    for (int i = 0; i < o->space.n; i++)
        if (strcmp(o->space.p[i].name, name) == 0)
            return i;
    return -1;
}

int tune_check_model_arguments(const tune_options *o)
{
    const char *text;
    for (int k = 0; (text = model_text(o, k)) != NULL; k++) {
        const char *where = k == 0 && tune_fixed_value(o, "layers") ? "--layers" : "--space: layers";
        size_t pos = 0, start;
        char name[NB_SEARCH_NAME_MAX], why[128];
        int r;
        while ((r = next_argument(text, &pos, &start, name, why, sizeof why)) == 1) {
            if (space_index(o, name) < 0) {
                cli_usage_error(CMD, "%s: {%s} in '%s' is no parameter of --space: search it "
                                     "there (e.g. %s=uniform(0.1,0.5) for a dropout's p)",
                                where, name, text, name);
                return -1;
            }
            int train_option = train_option_arity(name) >= 0;
            if (train_option || tune_is_layer_part(name)) {
                cli_usage_error(CMD, "%s: {%s} in '%s' names %s: give the model's argument a "
                                     "name of its own",
                                where, name, text,
                                train_option ? "an option of nabla train" : "what makes --layers");
                return -1;
            }
        }
        if (r < 0) {
            cli_usage_error(CMD, "%s: '%s': %s", where, text, why);
            return -1;
        }
    }
    return 0;
}

char *tune_fill_model_arguments(const tune_options *o, const nb_search_point *p,
                                const char *text)
{
    nb_strbuf out = {0};
    size_t pos = 0, start, copied = 0;
    char name[NB_SEARCH_NAME_MAX], why[128];
    while (next_argument(text, &pos, &start, name, why, sizeof why) == 1) {
        int i = space_index(o, name);
        if (i < 0)
            continue;   /* left as written */
        char value[NB_SEARCH_VALUE_MAX];
        tune_value_text(&o->space.p[i], p->v[i], value, sizeof value);
        nb_sb_putn(&out, text + copied, start - copied);
        nb_sb_puts(&out, value);
        copied = pos;
    }
    nb_sb_puts(&out, text + copied);
    if (out.failed) {
        nb_sb_free(&out);
        return NULL;
    }
    return out.data ? out.data : strdup("");
}
