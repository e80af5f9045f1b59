/* A study directory (`nabla tune --out STUDY`) read back whole, for `nabla tune` (which
 * continues the study) and `nabla report` (which draws it): journal.jsonl (study_journal.h),
 * best.json and trials/, each checked against the others and against the settings
 * (study_settings.h). Messages name the file and, in JSON files, the line. */
#ifndef NABLA_CLI_STUDY_FILES_H
#define NABLA_CLI_STUDY_FILES_H

#include <cjson/cJSON.h>

#include "nabla.h"
#include "study/journal.h"
#include "study/trial.h"
#include "cli/tune/tune_options.h"

/* Reads study dir with settings opt into trials (trials_new(opt->trials, opt->rounds)) and
 * *best (best.json, or NULL while the study has not finished; cJSON_Delete it). With best
 * NULL, best.json is not read: the tuner, whose output it is, writes it again at the study's
 * end (it may be a device or a link to anything: fileio.h). A journal not there yet has no
 * events. Checked: the journal (study_journal.h); best.json's members, and
 * that it is the journal's end (every trial finished, the counts, the best complete trial with
 * its params, dev accuracy and epochs, the importance of the space's parameters, and with
 * tune --refit the refit's members and epochs); trials/ a
 * directory whose numbered entries are trials of the study. 0, or -1 with err. */
int study_read_back(const char *dir, const tune_options *opt, trial *trials, cJSON **best,
                    nb_error *err);

/* The checks of trials/ alone, against the trials read from the journal: a directory whose
 * numbered entries are trials of the study, each a run of the trial's configuration. For the
 * tuner, whose engine reads the journal. 0, or -1 with err. */
int study_files_check(const char *dir, const tune_options *opt, const trial *trials,
                      nb_error *err);

#endif /* NABLA_CLI_STUDY_FILES_H */
