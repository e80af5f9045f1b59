/* nabla report: per-class scores and the confusion matrix of a classifier (report_classes.h). */
#include "cli/report/report_classes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common/metrics_text.h"
#include "io/json_files.h"
#include "cli/common/run_check.h"
#include "cli/common/run_source.h"
#include "cli/report/report_page.h"

static void tables(nb_strbuf *b, const nb_model *m, const int64_t *counts)
{
    int k = m->spec.classes;
    char name[32];
    page_table_begin(b, NULL, "class", "precision", "recall", "F1", "support",
                     (const char *)NULL);
    for (int c = 0; c < k; c++) {
        nb_class_scores s = nb_class_scores_of(counts, k, c);
        page_row_begin(b, NULL);
        page_cell(b, class_name(m, c, name, sizeof name));
        page_cell_num(b, "%.4f", s.precision);
        page_cell_num(b, "%.4f", s.recall);
        page_cell_num(b, "%.4f", s.f1);
        page_cell_num(b, "%.0f", (double)s.support);
        page_row_end(b);
    }
    page_table_end(b);
    if (k > 30) {
        page_note(b, "No confusion matrix: %d classes are too many to show.", k);
        return;
    }
    page_note(b, "Confusion matrix: a row per true class, a column per predicted class.");
    nb_sb_puts(b, "<table><thead><tr><th>true \\ predicted</th>");
    for (int p = 0; p < k; p++) {
        nb_sb_puts(b, "<th>");
        html_escape(b, class_name(m, p, name, sizeof name));
        nb_sb_puts(b, "</th>");
    }
    nb_sb_puts(b, "</tr></thead><tbody>\n");
    for (int t = 0; t < k; t++) {
        page_row_begin(b, NULL);
        page_cell(b, class_name(m, t, name, sizeof name));
        for (int p = 0; p < k; p++)
            page_cell_num(b, "%.0f", (double)counts[(size_t)t * k + p]);
        page_row_end(b);
    }
    page_table_end(b);
}

int classes_section(nb_strbuf *b, const run_data *r, nb_error *err)
{
    const char *task = json_string(r->config, "task");   /* absent: a classifier */
    if (!r->has_model || (task && strcmp(task, "classification") != 0))
        return 0;
    nb_model m;
    if (run_load_model(r, 1024, &m, err) != 0)
        return -1;
    char why[256] = "";
    nb_dataset test;
    int rc = run_read_data(r->config, r->dir, &m, RUN_TEST, &test, why, sizeof why, err);
    if (rc == 1 && m.norm_mean && test.values)
        nb_dataset_normalize(&test, m.norm_mean, m.norm_std);
    int64_t *counts = NULL;
    if (rc == 1) {
        counts = calloc((size_t)m.spec.classes * (size_t)m.spec.classes, sizeof *counts);
        rc = !counts ? nb_fail(err, "out of memory")
                     : nb_evaluate_confusion(&m, &test, counts, err) != 0 ? -1 : 1;
    }
    if (rc >= 0) {
        page_section(b, "Per class, on the test set");
        if (rc == 1)
            tables(b, &m, counts);
        else
            page_note(b, "%s: no per-class scores: %s.", r->dir, why);
        page_section_end(b);
    }
    free(counts);
    nb_dataset_free(&test);
    nb_model_free(&m);
    return rc < 0 ? -1 : 0;
}
