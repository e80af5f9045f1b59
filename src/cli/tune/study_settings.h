/* study.json: the settings a study of `nabla tune` was started with, written when it starts
 * and read back by `nabla tune` (the same command continues the study, other settings are
 * refused) and by `nabla report`. Reading checks them with tune's own checks of its command
 * line (tune_options.h): a study.json whose settings tune would refuse as options ("seed":
 * "banana", a "prune" that does not exist, a "fixed" train option train refuses) is refused,
 * naming the file and the member's line. */
#ifndef NABLA_CLI_STUDY_SETTINGS_H
#define NABLA_CLI_STUDY_SETTINGS_H

#include <cjson/cJSON.h>

#include "nabla.h"
#include "cli/tune/tune_options.h"

/* The settings of o as study.json holds them: the space, sampler (and tpe_lag, with tpe),
 * trials, rounds, prune, objective (the metric's name), seed (a string: 64 bits), dev_fraction
 * (as given), fixed (the train options held fixed, as words) and test. NULL when out of
 * memory. */
cJSON *study_settings_json(const tune_options *o);

/* Reads and checks study.json at path into *o and *json (the file's JSON, whose strings o
 * points to: free o with tune_options_free, then *json with cJSON_Delete, whatever this
 * returns). 0, or -1 with "path:line: ..." in err. */
int study_settings_read(const char *path, tune_options *o, cJSON **json, nb_error *err);

#endif /* NABLA_CLI_STUDY_SETTINGS_H */
