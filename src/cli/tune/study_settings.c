/* study.json written and read back (study_settings.h). */
#include "cli/tune/study_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common/options.h"
#include "io/json_files.h"

cJSON *study_settings_json(const tune_options *o)
{
    char *space = malloc(NB_SEARCH_FORMAT_MAX);
    cJSON *j = cJSON_CreateObject();
    if (!j || !space || nb_search_space_format(&o->space, space, NB_SEARCH_FORMAT_MAX) != 0) {
        free(space);
        cJSON_Delete(j);
        return NULL;
    }
    cJSON_AddStringToObject(j, "space", space);
    free(space);
    cJSON_AddStringToObject(j, "sampler", tune_sampler_name(o->sampler));
    if (o->sampler == SAMPLER_TPE)
        cJSON_AddNumberToObject(j, "tpe_lag", o->tpe_lag);
    cJSON_AddNumberToObject(j, "trials", o->trials);
    cJSON_AddNumberToObject(j, "rounds", o->rounds);
    cJSON_AddStringToObject(j, "prune", nb_prune_name(o->prune));
    cJSON_AddStringToObject(j, "objective", nb_metric_name(o->objective));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddStringToObject(j, "dev_fraction", o->dev_fraction);
    cJSON *fixed = cJSON_AddArrayToObject(j, "fixed");
    for (int i = 0; fixed && i < o->n_fixed; i++) {
        cJSON_AddItemToArray(fixed, cJSON_CreateString(o->fixed[i].flag));
        if (o->fixed[i].value)
            cJSON_AddItemToArray(fixed, cJSON_CreateString(o->fixed[i].value));
    }
    if (o->test)
        cJSON_AddStringToObject(j, "test", o->test);
    else
        cJSON_AddNullToObject(j, "test");
    return j;
}

/* Every member study_settings_json writes, each required (study.json has always had them)
 * but "objective": a study.json from before objectives names none, and was scored on dev
 * accuracy (tune_objective.h); and "tpe_lag", which a study of the tpe sampler has and only
 * it (checked below). Which values they may take is tune's to say (below). */
static const member_rule SETTINGS_MEMBERS[] = {
    {"space", MT_STRING, 0, 0, NULL, 1, NULL},
    {"sampler", MT_STRING, 0, 0, NULL, 1, NULL},
    {"trials", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"rounds", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"prune", MT_STRING, 0, 0, NULL, 1, NULL},
    {"seed", MT_STRING, 0, 0, NULL, 1, NULL},
    {"dev_fraction", MT_STRING, 0, 0, NULL, 1, NULL},
    {"fixed", MT_STRINGS, 0, 0, NULL, 1, NULL},
    {"test", MT_STRING, 0, 1, NULL, 1, NULL},
    {"objective", MT_STRING, 0, 0, NULL, 0, NULL},
    {"tpe_lag", MT_NUMBER, V_INT, 0, NULL, 0, NULL},
};

/* The members that are tune's own options, and those options' names. */
static const struct {
    const char *member, *option;
} OWN[] = {
    {"space", "space"}, {"sampler", "sampler"}, {"trials", "trials"},
    {"rounds", "rounds"}, {"prune", "prune"},   {"seed", "seed"},
    {"dev_fraction", "dev-fraction"},
};

/* "path:line: "member": what tune said" for the setting it refused. */
static int refused(const char *text, const char *path, const char *member, nb_error *err)
{
    char where[4200];
    json_member_where(text, path, member, where, sizeof where);
    return nb_fail(err, "%s: \"%s\": %s", where, member, cli_last_error());
}

/* Whether a space as study.json writes it is tune's default space. */
static int is_default_space(const char *text)
{
    nb_search_space space;
    nb_error ignored;
    char *canonical = malloc(NB_SEARCH_FORMAT_MAX);
    int same = canonical && nb_search_space_parse(&space, TUNE_DEFAULT_SPACE, &ignored) == 0 &&
               nb_search_space_format(&space, canonical, NB_SEARCH_FORMAT_MAX) == 0 &&
               strcmp(canonical, text) == 0;
    free(canonical);
    return same;
}

/* The settings into o, through tune's checks (quiet: their messages come back here). */
static int settings_into(const cJSON *j, const char *text, const char *path, tune_options *o,
                         nb_error *err)
{
    int code;
    for (size_t k = 0; k < sizeof OWN / sizeof OWN[0]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, OWN[k].member);
        char number[32];
        if (cJSON_IsNumber(v))
            snprintf(number, sizeof number, "%.0f", v->valuedouble);
        if (tune_option_set(o, OWN[k].option, cJSON_IsNumber(v) ? number : v->valuestring,
                            &code) != 0)
            return refused(text, path, OWN[k].member, err);
    }
    /* study.json holds the space written out: the default one is still the default (which
     * brings its own --lr-decay with its decay-rate). */
    o->default_space = is_default_space(cJSON_GetObjectItemCaseSensitive(j, "space")->valuestring);
    const cJSON *fixed = cJSON_GetObjectItemCaseSensitive(j, "fixed");
    int n = cJSON_GetArraySize(fixed);
    char **words = malloc(((size_t)n + 1) * sizeof *words);
    if (!words)
        return nb_fail(err, "out of memory");
    int i = 0;
    for (const cJSON *w = fixed->child; w; w = w->next)
        words[i++] = w->valuestring;
    int rc = tune_options_fix(o, n, words, &code);
    free(words);
    if (rc != 0)
        return refused(text, path, "fixed", err);
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(j, "test");
    o->test = cJSON_IsString(test) ? test->valuestring : NULL;
    const cJSON *objective = cJSON_GetObjectItemCaseSensitive(j, "objective");
    if (objective && tune_option_set(o, "objective", objective->valuestring, &code) != 0)
        return refused(text, path, "objective", err);
    o->legacy_objective = !objective;
    const cJSON *lag = cJSON_GetObjectItemCaseSensitive(j, "tpe_lag");
    if (lag) {
        char number[32];
        snprintf(number, sizeof number, "%.0f", lag->valuedouble);
        if (tune_option_set(o, "tpe-lag", number, &code) != 0)
            return refused(text, path, "tpe_lag", err);
    } else if (o->sampler == SAMPLER_TPE) {
        /* Which results each trial learned from: without it, no trial can be checked. */
        char where[4200];
        json_member_where(text, path, "sampler", where, sizeof where);
        return nb_fail(err, "%s: \"sampler\" is tpe, but \"tpe_lag\" is missing", where);
    }
    tune_setting bad;
    static const char *const members[] = {[TUNE_ROUNDS] = "rounds", [TUNE_SPACE] = "space",
                                          [TUNE_FIXED] = "fixed", [TUNE_OBJECTIVE] = "objective",
                                          [TUNE_TPE_LAG] = "tpe_lag"};
    if (tune_options_check(o, &bad, &code) != 0)
        return refused(text, path, members[bad], err);
    return 0;
}

int study_settings_read(const char *path, tune_options *o, cJSON **json, nb_error *err)
{
    tune_options_init(o);
    char *text = NULL;
    int rc = report_read_json_text(path, 0, json, &text, err);
    if (rc == 0)
        rc = json_members_check(*json, text, path, SETTINGS_MEMBERS,
                                (int)(sizeof SETTINGS_MEMBERS / sizeof SETTINGS_MEMBERS[0]), err);
    if (rc == 0) {
        int was = cli_errors_quiet(1);
        rc = settings_into(*json, text, path, o, err);
        cli_errors_quiet(was);
    }
    free(text);
    return rc;
}
