/* nabla report: the HTML page around the charts: one self-contained file (inline CSS, a few
 * lines of inline script, no reference to anything outside it), with sections and tables.
 * Every text that comes from a file is escaped. */
#ifndef NABLA_CLI_REPORT_PAGE_H
#define NABLA_CLI_REPORT_PAGE_H

#include <cjson/cJSON.h>

#include "cli/report/html_escape.h"
#include "nabla.h"

void page_begin(nb_strbuf *b, const char *title, const char *subtitle);
void page_end(nb_strbuf *b);

/* <section><h2>heading</h2> ... </section> */
void page_section(nb_strbuf *b, const char *heading);
void page_section_end(nb_strbuf *b);
/* A row of charts that wraps. */
void page_charts_begin(nb_strbuf *b);
void page_charts_end(nb_strbuf *b);

/* <p class="note">text</p>, the formatted text escaped. */
void page_note(nb_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A JSON value as table text: strings as they are, numbers in at most 6 significant digits
 * (integers whole), arrays joined with ',', true/false, null as an empty cell. */
void json_value_text(const cJSON *v, char *buf, size_t cap);

/* Tables (name, value) of an object's members, side by side in `columns` of them. */
void page_object_table(nb_strbuf *b, const cJSON *obj, int columns);
/* A "params" object as "name=value name=value ...": PARAMS_TEXT_MAX bytes hold any study's. */
#define PARAMS_TEXT_MAX (NB_SEARCH_MAX_PARAMS * (NB_SEARCH_NAME_MAX + NB_SEARCH_VALUE_MAX + 2))
void params_object_text(const cJSON *params, char *buf, size_t cap);

/* Tables cell by cell: page_table_begin(b, "th1", "th2", NULL), then rows. */
void page_table_begin(nb_strbuf *b, const char *cls, ...);
void page_row_begin(nb_strbuf *b, const char *cls);
void page_cell(nb_strbuf *b, const char *text);           /* escaped */
/* Escaped, and free to wrap after each '|' and ',': a long value without blanks (a model's
 * text) wraps between its layers instead of widening the table. */
void page_cell_wrapped(nb_strbuf *b, const char *text);
void page_cell_num(nb_strbuf *b, const char *fmt, double v); /* right-aligned; NaN: empty */
void page_row_end(nb_strbuf *b);
void page_table_end(nb_strbuf *b);

#endif /* NABLA_CLI_REPORT_PAGE_H */
