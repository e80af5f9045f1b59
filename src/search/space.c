/* Search spaces: the spec a user writes ("lr=log(1e-4,1e-1); beta=1-log(0.9,0.999); ..."), its
 * canonical text, the text of one value as a trial receives it, and the scale and rounding
 * every other search file uses.
 *
 * The parser works on spans of the spec (no copies): split at ';', trim, then
 * name '=' distribution '(' arguments ')', the closing ')' found by depth, since a choice value
 * may hold parentheses of its own (a model's text: "linear(64)|relu|linear"); arguments are
 * split at the commas outside parentheses. Every error quotes the part as written, so a long
 * spec on a command line points the user at the piece to fix. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "space_internal.h"

/* Bounds of int(a,b): small enough that b - a + 1 fits in 32 bits and every level is exact. */
#define INT_BOUND_MAX 1000000000.0

typedef struct span {
    const char *p;
    size_t n;
} span;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static span trim(span s)
{
    while (s.n > 0 && is_blank(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_blank(s.p[s.n - 1]))
        s.n--;
    return s;
}

static int span_is(span s, const char *word)
{
    return s.n == strlen(word) && memcmp(s.p, word, s.n) == 0;
}

/* The first occurrence of c in s, or NULL. */
static const char *span_find(span s, char c)
{
    return s.n ? memchr(s.p, c, s.n) : NULL;
}

/* Quoted pieces of the spec are cut short so that the message keeps room for what is wrong. */
#define QUOTE_MAX 100

static void quote(span s, char *buf, size_t cap)
{
    if (s.n <= QUOTE_MAX)
        snprintf(buf, cap, "%.*s", (int)s.n, s.p);
    else
        snprintf(buf, cap, "%.*s...", QUOTE_MAX - 3, s.p);
}

/* `part 3 "batch-size=choice(32,,64)": empty choice value`. */
static int part_fail(nb_error *err, int part, span text, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int part_fail(nb_error *err, int part, span text, const char *fmt, ...)
{
    char what[sizeof err->msg], q[QUOTE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    quote(text, q, sizeof q);
    return nb_fail(err, "part %d \"%s\": %s", part, q, what);
}

const char *nb_search_dist_name(nb_dist_kind kind)
{
    switch (kind) {
    case NB_DIST_UNIFORM: return "uniform";
    case NB_DIST_LOG: return "log";
    case NB_DIST_ONE_MINUS_LOG: return "1-log";
    case NB_DIST_INT: return "int";
    case NB_DIST_CHOICE: return "choice";
    }
    return "unknown";
}

int nb_search_is_continuous(nb_dist_kind kind)
{
    return kind == NB_DIST_UNIFORM || kind == NB_DIST_LOG || kind == NB_DIST_ONE_MINUS_LOG;
}

/* "1-log" may be written "1 - log", as the formula it is. */
static int dist_from_name(span s, nb_dist_kind *kind)
{
    static const nb_dist_kind kinds[] = {NB_DIST_UNIFORM, NB_DIST_LOG, NB_DIST_ONE_MINUS_LOG,
                                         NB_DIST_INT, NB_DIST_CHOICE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (span_is(s, nb_search_dist_name(kinds[i]))) {
            *kind = kinds[i];
            return 0;
        }
    if (s.n > 0 && s.p[0] == '1') {
        span rest = trim((span){s.p + 1, s.n - 1});
        if (rest.n > 0 && rest.p[0] == '-' && span_is(trim((span){rest.p + 1, rest.n - 1}), "log")) {
            *kind = NB_DIST_ONE_MINUS_LOG;
            return 0;
        }
    }
    return -1;
}

/* ---- numbers -------------------------------------------------------------------------- */

/* A whole argument as a finite double. */
static int parse_number(span arg, double *out, int part, span text, nb_error *err)
{
    char buf[64], *end;
    char q[QUOTE_MAX + 1];
    quote(arg, q, sizeof q);
    if (arg.n >= sizeof buf)
        return part_fail(err, part, text, "\"%s\" is not a number", q);
    memcpy(buf, arg.p, arg.n);
    buf[arg.n] = '\0';
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0')
        return part_fail(err, part, text, "\"%s\" is not a number", q);
    if (!isfinite(v))
        return part_fail(err, part, text, "\"%s\" is not a finite number", q);
    *out = v;
    return 0;
}

/* An argument of int(a,b): written as an integer, [+-]digits, within +-1e9. */
static int parse_integer(span arg, double *out, int part, span text, nb_error *err)
{
    char q[QUOTE_MAX + 1];
    quote(arg, q, sizeof q);
    size_t i = (arg.n > 0 && (arg.p[0] == '+' || arg.p[0] == '-')) ? 1 : 0;
    if (i == arg.n)
        return part_fail(err, part, text, "int needs integers, got \"%s\"", q);
    double v = 0;
    for (size_t j = i; j < arg.n; j++) {
        if (!isdigit((unsigned char)arg.p[j]))
            return part_fail(err, part, text, "int needs integers, got \"%s\"", q);
        v = v * 10 + (arg.p[j] - '0');
        if (v > INT_BOUND_MAX)
            return part_fail(err, part, text, "\"%s\" is too large for int (at most %.0f in magnitude)",
                             q, INT_BOUND_MAX);
    }
    *out = arg.p[0] == '-' ? -v : v;
    return 0;
}

/* ---- one part ----------------------------------------------------------------------- */

/* Splits args at the commas outside parentheses into at most max trimmed spans; returns how
 * many there are (which may be more than max: the rest are counted, not stored). An empty args
 * gives 0. A comma inside parentheses belongs to its value: "linear(64)|relu,conv2d(8,3)" is
 * two values. */
static int split_args(span args, span *out, int max)
{
    args = trim(args);
    if (args.n == 0)
        return 0;
    int count = 0, depth = 0;
    const char *from = args.p, *end = args.p + args.n;
    for (const char *c = args.p;; c++) {
        if (c < end && *c == '(')
            depth++;
        else if (c < end && *c == ')')
            depth--;
        if (c < end && (*c != ',' || depth > 0))
            continue;
        if (count < max)
            out[count] = trim((span){from, (size_t)(c - from)});
        count++;
        if (c == end)
            return count;
        from = c + 1;
    }
}

/* Whether two choice values give a trial the same text: '|' stands for ','. */
static int same_value(span a, span b)
{
    if (a.n != b.n)
        return 0;
    for (size_t i = 0; i < a.n; i++) {
        char x = a.p[i] == '|' ? ',' : a.p[i], y = b.p[i] == '|' ? ',' : b.p[i];
        if (x != y)
            return 0;
    }
    return 1;
}

static int parse_choices(nb_search_param *p, span args, int part, span text, nb_error *err)
{
    span v[NB_SEARCH_MAX_CHOICES + 1];
    int count = split_args(args, v, NB_SEARCH_MAX_CHOICES + 1);
    if (count == 0)
        return part_fail(err, part, text, "choice needs at least one value");
    if (count > NB_SEARCH_MAX_CHOICES)
        return part_fail(err, part, text, "too many choice values (%d, at most %d)", count,
                         NB_SEARCH_MAX_CHOICES);
    for (int i = 0; i < count; i++) {
        char q[QUOTE_MAX + 1];
        quote(v[i], q, sizeof q);
        if (v[i].n == 0)
            return part_fail(err, part, text, "empty choice value (value %d)", i + 1);
        if (v[i].n >= NB_SEARCH_VALUE_MAX)
            return part_fail(err, part, text, "choice value \"%s\" is too long (at most %d characters)",
                             q, NB_SEARCH_VALUE_MAX - 1);
        for (size_t j = 0; j < v[i].n; j++) {
            unsigned char c = (unsigned char)v[i].p[j];
            if (is_blank((char)c))
                return part_fail(err, part, text, "choice value \"%s\" has a blank inside", q);
            if (c < 0x20 || c == 0x7f)
                return part_fail(err, part, text, "choice value \"%s\" has a control character", q);
        }
        for (int k = 0; k < i; k++)
            if (same_value(v[k], v[i]))
                return part_fail(err, part, text, "choice value \"%s\" is given twice (values %d and %d%s)",
                                 q, k + 1, i + 1,
                                 memcmp(v[k].p, v[i].p, v[i].n) != 0 ? ": '|' stands for ','"
                                                                     : "");
        memcpy(p->choices[i], v[i].p, v[i].n);
        p->choices[i][v[i].n] = '\0';
    }
    p->n_choices = count;
    p->lo = 0;
    p->hi = count - 1;
    return 0;
}

static int parse_bounds(nb_search_param *p, span args, int part, span text, nb_error *err)
{
    const char *dist = nb_search_dist_name(p->kind);
    span a[3];
    int count = split_args(args, a, 3);
    if (count != 2)
        return part_fail(err, part, text, "%s takes 2 arguments (a,b), got %d", dist, count);
    for (int i = 0; i < 2; i++)
        if (a[i].n == 0)
            return part_fail(err, part, text, "argument %d of %s is empty", i + 1, dist);
    int (*number)(span, double *, int, span, nb_error *) =
        p->kind == NB_DIST_INT ? parse_integer : parse_number;
    if (number(a[0], &p->lo, part, text, err) || number(a[1], &p->hi, part, text, err))
        return -1;
    double lo = p->lo, hi = p->hi;
    switch (p->kind) {
    case NB_DIST_UNIFORM:
        if (!(lo < hi))
            return part_fail(err, part, text, "uniform needs a < b");
        if (!isfinite(hi - lo))
            return part_fail(err, part, text, "uniform range is too wide (b - a overflows)");
        break;
    case NB_DIST_LOG:
        if (!(lo > 0 && lo < hi))
            return part_fail(err, part, text, "log needs 0 < a < b");
        break;
    case NB_DIST_ONE_MINUS_LOG:
        if (!(lo < hi && hi < 1))
            return part_fail(err, part, text, "1-log needs a < b < 1");
        break;
    case NB_DIST_INT:
        if (!(lo <= hi))
            return part_fail(err, part, text, "int needs a <= b");
        return 0;
    case NB_DIST_CHOICE:
        break;
    }
    /* Two distinct doubles can have the same logarithm (1e10 and the next double): nothing
     * to search between them. */
    double tmin, tmax;
    nb_search_scale_range(p, &tmin, &tmax);
    if (!(tmin < tmax))
        return part_fail(err, part, text, "the range is too narrow to search");
    return 0;
}

static int parse_name(nb_search_param *p, span name, int part, span text, nb_error *err)
{
    if (name.n == 0)
        return part_fail(err, part, text, "the parameter has no name (expected name=distribution(...))");
    char q[QUOTE_MAX + 1];
    quote(name, q, sizeof q);
    for (size_t i = 0; i < name.n; i++) {
        char c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return part_fail(err, part, text,
                             "name \"%s\" may only hold lowercase letters, digits and '-'", q);
    }
    if (name.n >= NB_SEARCH_NAME_MAX)
        return part_fail(err, part, text, "name \"%s\" is too long (at most %d characters)", q,
                         NB_SEARCH_NAME_MAX - 1);
    memcpy(p->name, name.p, name.n);
    p->name[name.n] = '\0';
    return 0;
}

/* text: the trimmed, non-empty part. */
static int parse_part(nb_search_param *p, span text, int part, nb_error *err)
{
    memset(p, 0, sizeof *p);
    const char *eq = span_find(text, '=');
    if (!eq)
        return part_fail(err, part, text, "missing \"=\" (expected name=distribution(...))");
    if (parse_name(p, trim((span){text.p, (size_t)(eq - text.p)}), part, text, err))
        return -1;

    span rest = {eq + 1, (size_t)(text.p + text.n - (eq + 1))};
    const char *open = span_find(rest, '(');
    span dist = trim((span){rest.p, open ? (size_t)(open - rest.p) : rest.n});
    char q[QUOTE_MAX + 1];
    quote(dist, q, sizeof q);
    if (dist.n == 0)
        return part_fail(err, part, text,
                         "missing distribution (expected uniform, log, 1-log, int or choice)");
    if (dist_from_name(dist, &p->kind))
        return part_fail(err, part, text,
                         "unknown distribution \"%s\" (expected uniform, log, 1-log, int or choice)", q);
    if (!open)
        return part_fail(err, part, text, "missing \"(\" after \"%s\"", q);

    /* The ')' that closes this '(': parentheses inside (a model's text as a choice value)
     * are matched by depth. */
    span inside = {open + 1, (size_t)(rest.p + rest.n - (open + 1))};
    const char *close = NULL;
    int depth = 1, nested = 0;
    for (const char *c = inside.p; c < inside.p + inside.n && !close; c++) {
        if (*c == '(') {
            depth++;
            nested = 1;
        } else if (*c == ')' && --depth == 0) {
            close = c;
        }
    }
    if (!close && nested)
        return part_fail(err, part, text, "unbalanced parentheses: %d \"(\" without its \")\"",
                         depth);
    if (!close)
        return part_fail(err, part, text, "missing \")\"");
    span args = {inside.p, (size_t)(close - inside.p)};
    if (p->kind != NB_DIST_CHOICE && span_find(args, '('))
        return part_fail(err, part, text, "unexpected \"(\" inside the arguments of %s",
                         nb_search_dist_name(p->kind));
    span after = trim((span){close + 1, (size_t)(inside.p + inside.n - (close + 1))});
    if (after.n > 0) {
        quote(after, q, sizeof q);
        return part_fail(err, part, text, "unexpected text \"%s\" after \")\"", q);
    }
    if (p->kind == NB_DIST_CHOICE)
        return parse_choices(p, args, part, text, err);
    return parse_bounds(p, args, part, text, err);
}

int nb_search_space_parse(nb_search_space *s, const char *spec, nb_error *err)
{
    int part_of[NB_SEARCH_MAX_PARAMS]; /* the part number each parameter came from */
    s->n = 0;
    if (!spec)
        return nb_fail(err, "empty space");
    const char *p = spec;
    for (int part = 1;; part++) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        span text = trim((span){p, len});
        if (text.n == 0) {
            if (strspn(spec, " \t\n\r\v\f;") == strlen(spec)) {
                nb_fail(err, "empty space");
                goto fail;
            }
            if (!semi)
                break; /* the part after a final ';' may be empty */
            nb_fail(err, "part %d is empty (two ';' in a row?)", part);
            goto fail;
        }
        if (s->n == NB_SEARCH_MAX_PARAMS) {
            part_fail(err, part, text, "too many parameters (at most %d)", NB_SEARCH_MAX_PARAMS);
            goto fail;
        }
        nb_search_param *param = &s->p[s->n];
        if (parse_part(param, text, part, err))
            goto fail;
        for (int i = 0; i < s->n; i++)
            if (strcmp(s->p[i].name, param->name) == 0) {
                part_fail(err, part, text, "\"%s\" is given twice (parts %d and %d)", param->name,
                          part_of[i], part);
                goto fail;
            }
        part_of[s->n++] = part;
        if (!semi)
            break;
        p = semi + 1;
    }
    return 0;
fail:
    s->n = 0;
    return -1;
}

/* ---- text out --------------------------------------------------------------------------- */

/* The shortest %.Ng, N from min_digits, that reads back as v exactly (17 always does). */
static void shortest(double v, int min_digits, char *buf, size_t cap)
{
    for (int k = min_digits; k <= 17; k++) {
        snprintf(buf, cap, "%.*g", k, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void nb_search_value_text(const nb_search_param *p, double v, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    if (p->kind == NB_DIST_CHOICE) {
        if (v >= 0 && v < p->n_choices && v == floor(v))
            snprintf(buf, cap, "%s", p->choices[(int)v]);
        else
            snprintf(buf, cap, "?");
        return;
    }
    if (p->kind == NB_DIST_INT && isfinite(v)) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    char tmp[40];
    shortest(v, 6, tmp, sizeof tmp);
    snprintf(buf, cap, "%s", tmp);
}

int nb_search_value_parse(const nb_search_param *p, const char *text, double *v, nb_error *err)
{
    if (p->kind == NB_DIST_CHOICE) {
        for (int i = 0; i < p->n_choices; i++)
            if (strcmp(p->choices[i], text) == 0) {
                *v = i;
                return 0;
            }
        return nb_fail(err, "%s: \"%s\" is not one of its choices", p->name, text);
    }
    char *end;
    double x = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(x))
        return nb_fail(err, "%s: \"%s\" is not a finite number", p->name, text);
    if (p->kind == NB_DIST_INT && x != floor(x))
        return nb_fail(err, "%s: \"%s\" is not an integer", p->name, text);
    *v = x;
    return 0;
}

/* Appends to buf at *len; fails once the text does not fit. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

int nb_search_space_format(const nb_search_space *s, char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        const nb_search_param *p = &s->p[i];
        if (append(buf, cap, &len, "%s%s=%s(", i ? "; " : "", p->name, nb_search_dist_name(p->kind)))
            return -1;
        if (p->kind == NB_DIST_CHOICE) {
            for (int k = 0; k < p->n_choices; k++)
                if (append(buf, cap, &len, "%s%s", k ? "," : "", p->choices[k]))
                    return -1;
        } else {
            char a[40], b[40];
            if (p->kind == NB_DIST_INT) {
                snprintf(a, sizeof a, "%.0f", p->lo);
                snprintf(b, sizeof b, "%.0f", p->hi);
            } else {
                shortest(p->lo, 1, a, sizeof a);
                shortest(p->hi, 1, b, sizeof b);
            }
            if (append(buf, cap, &len, "%s,%s", a, b))
                return -1;
        }
        if (append(buf, cap, &len, ")"))
            return -1;
    }
    return 0;
}

/* ---- scales and rounding ---------------------------------------------------------------- */

double nb_search_to_scale(const nb_search_param *p, double x)
{
    switch (p->kind) {
    case NB_DIST_LOG: return log10(x);
    case NB_DIST_ONE_MINUS_LOG: return log10(1.0 - x);
    default: return x;
    }
}

double nb_search_from_scale(const nb_search_param *p, double t)
{
    switch (p->kind) {
    case NB_DIST_LOG: return pow(10.0, t);
    case NB_DIST_ONE_MINUS_LOG: return 1.0 - pow(10.0, t);
    default: return t;
    }
}

void nb_search_scale_range(const nb_search_param *p, double *tmin, double *tmax)
{
    double a = nb_search_to_scale(p, p->lo), b = nb_search_to_scale(p, p->hi);
    *tmin = a < b ? a : b;
    *tmax = a < b ? b : a;
}

/* A trial runs with the value it is recorded with only if the value is exactly the number its
 * text reads back as, so values are rounded to a short text first. Six significant digits
 * are the base; more are taken
 *   - for 1-log, until 1 - x keeps six significant digits (0.99876543 for 1 - 0.00123457),
 *     or the density near 1 the distribution exists for would be rounded away;
 *   - until the rounding moves x by at most 1e-4 of the range's width, so that a narrow range
 *     (one narrowed again and again) still has distinct values to offer;
 *   - until the value lies within [lo, hi].
 * %.17g reads back as x exactly, so the search always ends. */
double nb_search_round(const nb_search_param *p, double x)
{
    if (!(x >= p->lo)) /* NaN too */
        x = p->lo;
    if (x > p->hi)
        x = p->hi;
    if (!nb_search_is_continuous(p->kind))
        return floor(x + 0.5);
    double tol = 1e-4 * (p->hi - p->lo);
    if (p->kind == NB_DIST_ONE_MINUS_LOG) {
        double digits6 = 0.5 * pow(10.0, floor(log10(1.0 - x)) - 5);
        if (digits6 < tol)
            tol = digits6;
    }
    for (int k = 6; k <= 17; k++) {
        char buf[40];
        snprintf(buf, sizeof buf, "%.*g", k, x);
        double y = strtod(buf, NULL);
        if (y >= p->lo && y <= p->hi && fabs(y - x) <= tol)
            return y;
    }
    return x;
}
