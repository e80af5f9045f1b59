/* A study's journal (STUDY/journal.jsonl): the study engine appends its events
 * (journal_write.c) and reads them back (journal_read.c) when the study continues, as
 * `nabla report` does to draw it. One JSON object a line:
 *
 *   {"round":r,"space":"..."}                         round r (>= 1) of coarse to fine starts
 *   {"trial":i,"state":"running","round":r,["rank":k,]"params":{...},["waited_seconds":w,]
 *    "args":[...]}                                     trial i starts (w: the time a free
 *                                                      worker waited for the earlier results
 *                                                      its configuration depends on)
 *   {"trial":i,"state":"running","epoch":e,"epochs_planned":E,"dev_accuracy":a,"dev_loss":l,
 *    ["dev_M":m,]"seconds":s}                          trial i reported epoch e
 *   {"trial":i,"state":"interrupted","reason":"...","seconds":s}
 *                                                      stopped by an accident (not final: the
 *                                                      study's next run resumes it)
 *   {"trial":i,"state":"complete"|"pruned"|"failed","params":{...},"dev_accuracy":a,
 *    "dev_loss":l,["dev_M":m,]"epochs":e,"seconds":s,"reason":"..."}
 *                                                      its end, final (reason: failed only)
 *
 * dev_M is the study's objective M where it is neither accuracy nor loss (objective.h):
 * "dev_rmse" in a study of dev RMSE. The objective is a number in every report and every end
 * but a failed trial's; dev_accuracy is null for a task without accuracy (regression).
 *
 * Every event is checked for sense, against the study's settings (nb_study_config; for nabla
 * tune, study.json), and the first that makes none is an error naming the file and the line:
 * a trial number outside the study, a state that does not exist, params outside the study's
 * space or other than the trial's start, args other than its params and the settings give, a
 * round out of range, an event before the trial's start, a second start, epochs that go
 * backwards or repeat, epochs_planned other than the trial's --epochs, an event after the
 * trial's end, an end whose dev figures are not the ones the trial reported for that epoch,
 * an objective missing or outside its metric's values, accuracies outside [0, 1] (or any for
 * a task without one), negative losses or seconds, a trial's time that goes backwards,
 * a name twice in one object. A last line without its newline is an append cut short by a
 * crash and is left out when it is the beginning of an event; anything else there is damage. */
#ifndef NABLA_STUDY_JOURNAL_H
#define NABLA_STUDY_JOURNAL_H

#include <cjson/cJSON.h>

#include "io/file_seen.h"
#include "nabla.h"
#include "study/trial.h"

/* Reads the journal at `path` into trials (from trials_new(cfg->trials, cfg->rounds)), checked
 * against the study's settings cfg. Returns 0, or -1 with "path:line: what" (or why the file
 * cannot be read) in err. */
int journal_read(const char *path, const nb_study_config *cfg, trial *trials, nb_error *err);

/* The "params" object of a point: numbers for numeric parameters, the text of choices. */
cJSON *params_json(const nb_search_space *space, const nb_search_point *p);

/* The journal being written: by one process, which checks before each append that nobody
 * else changed it (or the study's other files: hooks->check_files). */
typedef struct study_journal {
    char *path;
    const char *dir;         /* the study's, for messages */
    file_seen seen;          /* after this process's last append */
    const nb_study_config *cfg;
} study_journal;

/* Takes up dir's journal.jsonl for appending (it may not exist yet): a last line without its
 * newline, an append a crash cut short, is cut off (the event did not happen), so the next
 * append starts a line of its own. 0, or -1 with err. */
int journal_take(study_journal *j, const char *dir, const nb_study_config *cfg, nb_error *err);
void journal_release(study_journal *j);

/* Whether the journal is as this process left it: 0, or -1 with err saying what to do. */
int journal_intact(const study_journal *j, nb_error *err);

/* The events (the file's comment above), each appended whole and fsync'd. */
int journal_round(study_journal *j, int round, const nb_search_space *space, nb_error *err);
int journal_start(study_journal *j, int i, const trial *t, const char *const *args, int n_args,
                  int rank, nb_error *err);
int journal_epoch(study_journal *j, int i, const trial *t, int epoch, nb_error *err);
int journal_interrupted(study_journal *j, int i, const trial *t, nb_error *err);
int journal_end(study_journal *j, int i, const trial *t, nb_error *err);

#endif /* NABLA_STUDY_JOURNAL_H */
