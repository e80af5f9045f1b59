/* nabla report: the decision regions of a model on two-feature data (moons, circles, spirals or
 * a two-column CSV), the figure the course draws for "optimizers on moons": the class the
 * model predicts over a grid covering the data, with the training points on top. */
#ifndef NABLA_CLI_REPORT_REGIONS_H
#define NABLA_CLI_REPORT_REGIONS_H

#include <stddef.h>

#include "cli/report/html_escape.h"
#include "cli/report/report_run.h"
#include "nabla.h"

/* Cells per side of the grid. */
#define REGIONS_GRID 120
/* Training points drawn at most (evenly spaced through the set beyond that). */
#define REGIONS_MAX_POINTS 2500

/* Classes whose points are drawn (the colours repeat after CLASS_COLORS). */
#define REGIONS_MAX_CLASSES 16

/* Whether the run could have a decision-region chart: two features and a model file. */
int regions_possible(const run_data *r);

/* Appends the chart of run r (chart id "regions", the title given). The training set is made
 * again from config.json (a synthetic set from its name, samples, noise and seed; a CSV file
 * from its path) and split as the run split it. Returns 1 when drawn; 0 when it cannot be (the
 * data file is not there any more), with the reason in why; -1 on an error (a damaged model
 * file, a model that is not the run's (run_check_model), out of memory). */
int regions_chart(nb_strbuf *b, const run_data *r, const char *title, const char *note,
                  char *why, size_t why_size, nb_error *err);

#endif /* NABLA_CLI_REPORT_REGIONS_H */
