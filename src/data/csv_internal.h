/* The CSV reader's parts (not part of the public API):
 * - csv_number.c: numbers, exactly as (float)strtod reads them, and the words for "missing";
 * - csv_text.c: bytes that are not CSV text (UTF-16, binary, gzip'd...) named for what they are;
 * - csv_fields.c: records and fields (delimiters, RFC 4180 quotes), the delimiter's detection;
 * - csv.c: the reader: the input (file, stdin, pipe, gzip), the header, the target columns,
 *   one pass over the rows into cells;
 * - csv_columns.c: the cells into a data set: column kinds, categories, classes, fills. */
#ifndef NABLA_CSV_INTERNAL_H
#define NABLA_CSV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nabla.h"

/* Longest field quoted in an error message. */
#define CSV_QUOTE_MAX 40

/* ---- csv_number.c ---- */

/* The fast path for a plain decimal at s: the end of the number and its value as
 * (float)strtod would round it, or NULL when the number needs strtod (or is none). With
 * `comma`, a decimal comma is accepted as well as a point. */
const char *csv_fast_decimal(const char *s, const char *end, int comma, float *out);

typedef enum csv_number_kind {
    CSV_NUMBER,        /* a finite number that fits a float */
    CSV_NOT_A_NUMBER,  /* a word */
    CSV_HEX,           /* "0x10": strtod reads it, but CSV numbers are decimal */
    CSV_NAN,           /* "-nan" and the like (plain "NaN" is a missing value) */
    CSV_INFINITE,      /* "inf", "-Infinity" */
    CSV_OUT_OF_RANGE   /* beyond FLT_MAX */
} csv_number_kind;

/* The whole field [s, s+len) as a number (fast path first, then strtod). */
csv_number_kind csv_parse_number(const char *s, size_t len, int comma, float *out);
/* Whether the field reads as a number of any kind (for the header rule: "1e3" and "inf"
 * are numbers there, "x" is not). */
int csv_looks_numeric(const char *s, size_t len, int comma);
/* An integer: optional sign, digits, optionally ".0…". 0 and the value, or -1 (also for an
 * integer beyond a long long). */
int csv_parse_integer(const char *s, size_t len, long long *out);
/* A missing value: "" or one of NA, N/A, n/a, NaN (any case), NULL, null, None, ?. */
int csv_is_missing(const char *s, size_t len);

/* ---- csv_text.c ---- */

/* Refuses bytes that are not CSV text, saying what they are. 0 when they may be text. */
int csv_check_text(const unsigned char *p, size_t size, const char *path, nb_error *err);

/* ---- csv_columns.c: names found by text ---- */

/* Names (categories, classes, columns) in any order, found by text. */
typedef struct lookup {
    char *const *names;
    int *order;   /* indices of names in strcmp order */
    int n;
} lookup;

/* -1 when out of memory. Free l->order. */
int lookup_init(lookup *l, char *const *names, int n);
/* The index of the name [s, s+len), or -1. */
int lookup_exact(const lookup *l, const char *s, size_t len);
/* The same, or else the name of its integer ("3.0" finds "3"). */
int lookup_find(const lookup *l, const char *s, size_t len);

/* ---- csv_fields.c ---- */

typedef struct csv_field {
    const char *s;      /* its text: blanks around it trimmed; inside the quotes when quoted */
    size_t len;
    int quoted;
    int escaped;        /* quoted, with doubled quotes "" inside (csv_field_text undoes them) */
    long line, column;  /* where it starts, 1-based (the column counts bytes) */
} csv_field;

typedef struct csv_cursor {
    const char *p, *end;     /* the next byte, the end of the text */
    const char *line_start;  /* of the line p is on */
    long line;
    char delimiter;
    const char *path;        /* for messages */
} csv_cursor;

void csv_cursor_init(csv_cursor *c, const char *p, const char *end, long line, char delimiter,
                     const char *path);
/* Reads the field at c->p; *more is 1 when another field of the same record follows, 0 when
 * the record ended (c->p is then at the next line). A quoted field may span lines. -1 with
 * file:line:column for a quote that never ends or text after a closing quote. */
int csv_next_field(csv_cursor *c, csv_field *f, int *more, nb_error *err);
/* Whether the line at p (up to its newline) holds only spaces, tabs and a CR. */
int csv_line_is_blank(const char *p, const char *end);
/* The end of the line at p: its newline, or end. */
const char *csv_line_end(const char *p, const char *end);
/* The field's text with doubled quotes undone, malloc'd and terminated; NULL when out of
 * memory. */
char *csv_field_text(const csv_field *f);
/* The delimiter of the text [p, end): among ',' ';' and tab, the one that splits the first
 * lines into the same number (> 1) of fields, the one that makes the most of them numbers when
 * several do (a ';' file with decimal commas splits evenly on ',' too), then the most fields,
 * then the first of , ; tab. ',' when none does (the reader then names the line that does not
 * fit). */
char csv_detect_delimiter(const char *p, const char *end);

/* ---- csv.c -> csv_columns.c: the rows as read, one cell per field ---- */

/* What a column of the file is read as. */
typedef enum csv_role {
    ROLE_FEATURE,    /* a feature of a new table: numbers, or words (then a category) */
    ROLE_NUMBER,     /* read like a table: a numeric feature */
    ROLE_CATEGORY,   /* read like a table: a categorical feature (its fields kept as text) */
    ROLE_CLASS,      /* a classification target (kept as text) */
    ROLE_VALUE,      /* a regression target: a number */
    ROLE_BINARY      /* a multilabel target: 0 or 1 */
} csv_role;

enum { CELL_NUMBER, CELL_MISSING, CELL_TEXT };

typedef union csv_cell {
    float number;
    uint32_t text;   /* CELL_TEXT: its index in texts */
} csv_cell;

typedef struct csv_text {
    const char *s;   /* into the input, or a string of `owned` */
    size_t len;
} csv_text;

typedef struct csv_rows {
    const char *path;
    const char *text, *end;   /* the input (after a byte order mark), to find a field again */
    char delimiter;
    long first_line;          /* the line of the first data row */
    char note[128];           /* why line 1 is not a header, when that was not clear; or "" */
    int n_cols;               /* fields per record */
    csv_role *role;           /* [n_cols] */
    int *column;              /* [n_cols]: the table's column this field is */
    int n_rows;
    csv_cell *cell;           /* [n_rows * n_cols] */
    uint8_t *kind;            /* [n_rows * n_cols] CELL_... */
    const char **row_start;   /* [n_rows]: where the record starts */
    long *row_line;           /* [n_rows]: its line */
    csv_text *texts;
    size_t n_texts, cap_texts;
    char **owned;             /* texts made here (quotes undone, integer categories) */
    size_t n_owned, cap_owned;
} csv_rows;

/* The line and column of field `col` of row `row` (-1: of the header line), for a message. */
void csv_locate(const csv_rows *r, int row, int col, long *line, long *column);
/* nb_fail with "path:line:column: " before the message, where field col of row (-1: the
 * header) is; about the first row, it adds why line 1 was not taken for a header when that
 * was not clear (r->note). Returns -1. */
int csv_fail_at(const csv_rows *r, int row, int col, nb_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Adds a text cell's text (s: into the input, or a malloc'd string the rows then own). */
int csv_add_text(csv_rows *r, const char *s, size_t len, int owned, uint32_t *index,
                 nb_error *err);

/* The task of a read: o->task, or read like a table, the table's (classes: classification;
 * else regression, or multilabel when o->task says so). */
nb_task csv_task(const nb_csv_options *o);

/* The cells into out: the table t (the file's columns, from csv.c: names, targets; or a copy of
 * o->like) completed with kinds, categories, classes and fills; rows with missing values
 * dropped or filled as o says; features, labels or targets. t becomes out->table. */
int csv_encode(csv_rows *r, const nb_csv_options *o, nb_table *t, nb_dataset *out,
               nb_error *err);

#endif /* NABLA_CSV_INTERNAL_H */
