/* nabla report: how a classifier does on each class of its run's test set (precision, recall,
 * F1, support) and its confusion matrix, as `nabla eval` prints them. */
#ifndef NABLA_CLI_REPORT_CLASSES_H
#define NABLA_CLI_REPORT_CLASSES_H

#include "cli/report/html_escape.h"
#include "cli/report/report_run.h"
#include "nabla.h"

/* Appends the section for run r when it is a classifier with a model and a test set that can
 * be read again (read as the run read it); nothing otherwise, or a note saying why not.
 * Returns 0, or -1 on an error (a damaged model file, a model that is not the run's). */
int classes_section(nb_strbuf *b, const run_data *r, nb_error *err);

#endif /* NABLA_CLI_REPORT_CLASSES_H */
