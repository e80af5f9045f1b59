/* nabla report: escaping of text that comes from files (titles, paths, parameters) for HTML
 * and inline SVG, appended to the page's text buffer (core/strbuf.h). */
#ifndef NABLA_CLI_HTML_ESCAPE_H
#define NABLA_CLI_HTML_ESCAPE_H

#include "core/strbuf.h"

/* s escaped for HTML text and attribute values: & < > " ' become entities, control
 * characters other than tab and newline and bytes that are not valid UTF-8 become U+FFFD, so
 * that whatever a file holds, the page stays well-formed UTF-8. NULL appends nothing. */
void html_escape(nb_strbuf *b, const char *s);
/* The same for at most max_chars characters of s: a longer s keeps its first ones (or, with
 * from_end, its last ones) behind an ellipsis. For legends and axis labels, whose room is
 * fixed. */
void html_escape_clipped(nb_strbuf *b, const char *s, int max_chars, int from_end);

/* Characters (UTF-8 code points) in s; an invalid byte counts as one. */
int utf8_chars(const char *s);

#endif /* NABLA_CLI_HTML_ESCAPE_H */
