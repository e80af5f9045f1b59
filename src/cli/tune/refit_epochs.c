/* The refit's epochs (refit_epochs.h). */
#include "cli/tune/refit_epochs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/json_files.h"
#include "io/paths.h"

int refit_epochs(const char *dir, int b, int epochs, nb_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "trials/%d/summary.json", b);
    char *path = path_join(dir, name);
    cJSON *j = NULL;
    if (!path)
        return nb_fail(err, "out of memory");
    int rc = report_read_json_text(path, 0, &j, NULL, err);
    double best = json_number(j, "best_epoch");   /* null without --early-stop */
    if (rc == 0 && !isnan(best) && !(best >= 1 && best <= epochs && best == floor(best)))
        rc = nb_fail(err, "%s: \"best_epoch\" is %g, not one of the trial's %d epochs", path,
                     best, epochs);
    cJSON_Delete(j);
    free(path);
    return rc != 0 ? -1 : isnan(best) ? epochs : (int)best;
}
