/* nabla report: the two kinds of page, written whole into a buffer (the caller writes the file
 * atomically, so a failure never leaves half a report). */
#ifndef NABLA_CLI_REPORT_PAGES_H
#define NABLA_CLI_REPORT_PAGES_H

#include "cli/report/html_escape.h"
#include "cli/report/report_run.h"
#include "cli/report/report_study.h"
#include "nabla.h"

/* One run, or several overlaid (n > 1). title NULL: a default one. */
int report_runs_page(nb_strbuf *b, run_data *runs, int n, const char *title, nb_error *err);

/* A study of `nabla tune`. */
int report_study_page(nb_strbuf *b, const study_data *s, const char *title, nb_error *err);

#endif /* NABLA_CLI_REPORT_PAGES_H */
