/* Reading a study directory: study.json (the settings and the space), journal.jsonl (read and
 * checked by study_journal.c, as `nabla tune` reads it), best.json. */
#include "report_study.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leaderboard.h"
#include "report_json.h"
#include "run_files.h"

/* More trials than a study could run; bounds the allocation a damaged study.json asks for. */
#define STUDY_MAX_TRIALS 1000000

static int load_settings(study_data *s, const char *path, nb_error *err)
{
    if (report_read_json(path, 0, &s->settings, err) != 0)
        return -1;
    const char *spec = json_string(s->settings, "space");
    double trials = json_number(s->settings, "trials");
    if (!spec)
        return nb_fail(err, "%s: no \"space\"", path);
    nb_error why;
    if (nb_search_space_parse(&s->space, spec, &why) != 0)
        return nb_fail(err, "%s: \"space\": %s", path, why.msg);
    if (!(trials >= 1 && trials <= STUDY_MAX_TRIALS) || trials != (int)trials)
        return nb_fail(err, "%s: \"trials\" must be a number of trials", path);
    s->n_trials = (int)trials;
    double rounds = json_number(s->settings, "rounds");
    if (!(rounds >= 1 && rounds <= trials) || rounds != (int)rounds)
        return nb_fail(err, "%s: \"rounds\" must be a number of rounds, 1 to \"trials\"", path);
    s->n_rounds = (int)rounds;
    s->trials = trials_new(s->n_trials, s->n_rounds);
    if (!s->trials)
        return nb_fail(err, "out of memory");
    return 0;
}

int study_load(study_data *s, const char *dir, nb_error *err)
{
    memset(s, 0, sizeof *s);
    s->dir = report_dir_name(dir);
    if (!s->dir)
        return nb_fail(err, "out of memory");
    char *settings = path_join(s->dir, "study.json");
    char *journal = path_join(s->dir, "journal.jsonl");
    char *best = path_join(s->dir, "best.json");
    int rc = -1;
    if (!settings || !journal || !best) {
        nb_fail(err, "out of memory");
    } else if (load_settings(s, settings, err) == 0) {
        study_shape shape = {s->n_trials, s->n_rounds, &s->space};
        if (journal_read(journal, &shape, s->trials, err) == 0 &&
            report_read_json(best, 1, &s->best, err) == 0)
            rc = 0;
    }
    free(settings);
    free(journal);
    free(best);
    if (rc != 0)
        study_free(s);
    return rc;
}

void study_free(study_data *s)
{
    trials_free(s->trials, s->n_trials);
    free(s->dir);
    cJSON_Delete(s->settings);
    cJSON_Delete(s->best);
    memset(s, 0, sizeof *s);
}

/* Every trial that started. */
static int rank_entry(const void *ctx, int i, leaderboard_entry *e)
{
    const trial *t = &((const study_data *)ctx)->trials[i];
    e->group = t->state == TRIAL_COMPLETE ? RANK_COMPLETE
               : t->state == TRIAL_PRUNED ? RANK_PRUNED : RANK_OTHER;
    e->accuracy = t->final_accuracy;
    return t->state != TRIAL_PENDING;
}

int *study_rank(const study_data *s, int *n)
{
    return leaderboard_rank(s->n_trials, rank_entry, s, n);
}
