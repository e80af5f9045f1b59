/* Reading a study directory: study.json (the settings and the space), journal.jsonl (read and
 * checked by study_journal.c, as `nabla tune` reads it), best.json. */
#include "cli/report/report_study.h"

#include <stdlib.h>
#include <string.h>

#include "io/json_files.h"
#include "study/leaderboard.h"
#include "cli/tune/study_files.h"
#include "cli/tune/study_settings.h"
#include "study/objective.h"
#include "io/paths.h"

int study_load(study_data *s, const char *dir, nb_error *err)
{
    memset(s, 0, sizeof *s);
    tune_options_init(&s->opt);
    s->dir = report_dir_name(dir);
    if (!s->dir)
        return nb_fail(err, "out of memory");
    char *settings = path_join(s->dir, "study.json");
    int rc = -1;
    if (!settings) {
        nb_fail(err, "out of memory");
    } else if (study_settings_read(settings, &s->opt, &s->settings, err) == 0) {
        s->space = s->opt.space;
        s->n_trials = s->opt.trials;
        s->n_rounds = s->opt.rounds;
        s->trials = trials_new(s->n_trials, s->n_rounds);
        rc = !s->trials ? nb_fail(err, "out of memory")
                        : study_read_back(s->dir, &s->opt, s->trials, &s->best, err);
    }
    free(settings);
    if (rc != 0)
        study_free(s);
    return rc;
}

void study_free(study_data *s)
{
    trials_free(s->trials, s->n_trials);
    free(s->dir);
    tune_options_free(&s->opt);
    cJSON_Delete(s->settings);
    cJSON_Delete(s->best);
    memset(s, 0, sizeof *s);
}

/* Every trial that started. */
int *study_rank(const study_data *s, int *n)
{
    return leaderboard_rank(s->trials, s->n_trials, s->opt.objective, 0, n);
}
