/* The report's HTML page: head, style, sections, tables and the legend script. */
#include "cli/report/report_page.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

/* No web fonts, no images, no links: the page must look the same offline. */
static const char *const STYLE =
    "body{font:14px/1.45 sans-serif;margin:24px 28px;color:#222;background:#fff}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    "h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #ddd}\n"
    ".sub{color:#666;margin:0 0 12px}\n"
    ".note{color:#555;margin:6px 0}\n"
    ".charts,.tables{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}\n"
    "svg.chart{background:#fff;border:1px solid #e2e2e2;border-radius:4px}\n"
    "svg.chart text{font:12px sans-serif;fill:#333}\n"
    "svg.chart .title{font-weight:bold;font-size:13px}\n"
    "svg.chart .note{fill:#666}\n"
    "svg.chart .tl{fill:#555;font-size:11px}\n"
    "svg.chart .al{fill:#444}\n"
    "svg.chart .grid{stroke:#ececec}\n"
    "svg.chart .tick{stroke:#aaa}\n"
    "svg.chart .frame{fill:none;stroke:#bbb}\n"
    "svg.chart .empty{fill:#999;font-size:14px}\n"
    "svg.chart .regions{shape-rendering:crispEdges}\n"
    ".legend-item{cursor:pointer}\n"
    ".legend-item.off{opacity:.3}\n"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}\n"
    "th,td{border:1px solid #ddd;padding:3px 9px;text-align:left;vertical-align:top}\n"
    "th{background:#f4f4f4}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "tr.differs td{background:#fff6dc}\n"
    "tr.best td{background:#e9f5e9}\n"
    "code{background:#f4f4f4;padding:1px 4px;border-radius:3px}\n";

/* Clicking a legend entry hides or shows the series with its key, in its own chart. The keys
 * are made by nabla ([a-z0-9-]), never taken from files. */
static const char *const SCRIPT =
    "(function () {\n"
    "  var items = document.querySelectorAll('.legend-item');\n"
    "  for (var i = 0; i < items.length; i++) {\n"
    "    items[i].addEventListener('click', function () {\n"
    "      var off = this.classList.toggle('off');\n"
    "      var svg = this.closest('svg');\n"
    "      var key = this.getAttribute('data-key');\n"
    "      var s = svg.querySelectorAll('.series[data-key=\"' + key + '\"]');\n"
    "      for (var j = 0; j < s.length; j++) s[j].style.display = off ? 'none' : '';\n"
    "    });\n"
    "  }\n"
    "})();\n";

void page_begin(nb_strbuf *b, const char *title, const char *subtitle)
{
    nb_sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<meta name=\"generator\" content=\"nabla " NABLA_VERSION "\">\n"
               /* Else the browser asks the directory for a favicon. */
               "<link rel=\"icon\" href=\"data:,\">\n<title>");
    html_escape(b, title);
    nb_sb_puts(b, "</title>\n<style>\n");
    nb_sb_puts(b, STYLE);
    nb_sb_puts(b, "</style>\n</head>\n<body>\n<h1>");
    html_escape(b, title);
    nb_sb_puts(b, "</h1>\n<p class=\"sub\">");
    html_escape(b, subtitle);
    nb_sb_puts(b, "</p>\n");
}

void page_end(nb_strbuf *b)
{
    nb_sb_puts(b, "<script>\n");
    nb_sb_puts(b, SCRIPT);
    nb_sb_puts(b, "</script>\n</body>\n</html>\n");
}

void page_section(nb_strbuf *b, const char *heading)
{
    nb_sb_puts(b, "<section>\n<h2>");
    html_escape(b, heading);
    nb_sb_puts(b, "</h2>\n");
}

void page_section_end(nb_strbuf *b) { nb_sb_puts(b, "</section>\n"); }
void page_charts_begin(nb_strbuf *b) { nb_sb_puts(b, "<div class=\"charts\">\n"); }
void page_charts_end(nb_strbuf *b) { nb_sb_puts(b, "</div>\n"); }

void page_note(nb_strbuf *b, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    nb_sb_puts(b, "<p class=\"note\">");
    html_escape(b, text);
    nb_sb_puts(b, "</p>\n");
}

static void number_text(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.6g", v);
}

void json_value_text(const cJSON *v, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!v || cJSON_IsNull(v))
        return;
    if (cJSON_IsString(v)) {
        snprintf(buf, cap, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        number_text(v->valuedouble, buf, cap);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v)) {
        /* Widths read as "256,128"; arguments as a command line. */
        const char *sep = cJSON_IsString(cJSON_GetArrayItem(v, 0)) ? " " : ",";
        size_t used = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            char item[256];
            json_value_text(e, item, sizeof item);
            int w = snprintf(buf + used, cap - used, "%s%s", used ? sep : "", item);
            if (w < 0 || (size_t)w >= cap - used)
                break;
            used += (size_t)w;
        }
    } else {
        char *text = cJSON_PrintUnformatted(v);
        snprintf(buf, cap, "%s", text ? text : "");
        cJSON_free(text);
    }
}

void page_table_begin(nb_strbuf *b, const char *cls, ...)
{
    nb_sb_puts(b, "<table");
    if (cls)
        nb_sb_printf(b, " class=\"%s\"", cls);
    nb_sb_puts(b, "><thead><tr>");
    va_list ap;
    va_start(ap, cls);
    for (const char *h; (h = va_arg(ap, const char *)) != NULL;) {
        nb_sb_puts(b, "<th>");
        html_escape(b, h);
        nb_sb_puts(b, "</th>");
    }
    va_end(ap);
    nb_sb_puts(b, "</tr></thead>\n<tbody>\n");
}

void page_row_begin(nb_strbuf *b, const char *cls)
{
    if (cls)
        nb_sb_printf(b, "<tr class=\"%s\">", cls);
    else
        nb_sb_puts(b, "<tr>");
}

void page_cell(nb_strbuf *b, const char *text)
{
    nb_sb_puts(b, "<td>");
    html_escape(b, text);
    nb_sb_puts(b, "</td>");
}

void page_cell_wrapped(nb_strbuf *b, const char *text)
{
    nb_sb_puts(b, "<td>");
    for (const char *from = text; *from;) {
        size_t n = strcspn(from, "|,");
        char piece[256];
        while (n > 0) {   /* escaped in pieces of at most sizeof piece - 1 */
            size_t take = n < sizeof piece - 1 ? n : sizeof piece - 1;
            memcpy(piece, from, take);
            piece[take] = '\0';
            html_escape(b, piece);
            from += take;
            n -= take;
        }
        if (*from) {
            nb_sb_printf(b, "%c<wbr>", *from);
            from++;
        }
    }
    nb_sb_puts(b, "</td>");
}

void page_cell_num(nb_strbuf *b, const char *fmt, double v)
{
    nb_sb_puts(b, "<td class=\"num\">");
    if (!isnan(v)) {
        char text[64];
        snprintf(text, sizeof text, fmt, v);
        html_escape(b, text);
    }
    nb_sb_puts(b, "</td>");
}

void page_row_end(nb_strbuf *b) { nb_sb_puts(b, "</tr>\n"); }
void page_table_end(nb_strbuf *b) { nb_sb_puts(b, "</tbody></table>\n"); }

void page_object_table(nb_strbuf *b, const cJSON *obj, int columns)
{
    int n = cJSON_GetArraySize(obj), per = columns > 1 ? (n + columns - 1) / columns : n, i = 0;
    nb_sb_puts(b, "<div class=\"tables\">\n");
    const cJSON *m;
    cJSON_ArrayForEach(m, obj) {
        if (i % (per ? per : 1) == 0) {
            if (i)
                page_table_end(b);
            page_table_begin(b, NULL, "setting", "value", (const char *)NULL);
        }
        char text[4096];
        json_value_text(m, text, sizeof text);
        page_row_begin(b, NULL);
        page_cell(b, m->string);
        page_cell(b, text);
        page_row_end(b);
        i++;
    }
    if (i)
        page_table_end(b);
    nb_sb_puts(b, "</div>\n");
}

void params_object_text(const cJSON *params, char *buf, size_t cap)
{
    size_t used = 0;
    const cJSON *m;
    buf[0] = '\0';
    cJSON_ArrayForEach(m, params) {
        char value[NB_SEARCH_VALUE_MAX];
        json_value_text(m, value, sizeof value);
        int w = snprintf(buf + used, cap - used, "%s%s=%s", used ? " " : "", m->string, value);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
}
