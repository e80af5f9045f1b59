/* Checks on JSON that cJSON does not make (json_check.h). */
#include "io/json_check.h"

#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A name that repeats among the members of one object, or NULL. The names are sorted (a
 * safetensors header can hold hundreds of thousands of them); without the memory to sort, every
 * pair is compared. */
static const char *repeated_member(const cJSON *object)
{
    size_t n = 0;
    for (const cJSON *m = object->child; m; m = m->next)
        n++;
    if (n < 2)
        return NULL;
    const char **names = malloc(n * sizeof *names);
    const char *found = NULL;
    if (names) {
        size_t i = 0;
        for (const cJSON *m = object->child; m; m = m->next)
            names[i++] = m->string ? m->string : "";
        qsort(names, n, sizeof *names, by_name);
        for (i = 1; i < n && !found; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                found = names[i];
        free(names);
        return found;
    }
    for (const cJSON *a = object->child; a && !found; a = a->next)
        for (const cJSON *b = a->next; b && !found; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                found = b->string;
    return found;
}

const char *nb_json_duplicate_name(const cJSON *item, const cJSON **object)
{
    if (!item)
        return NULL;
    if (cJSON_IsObject(item)) {
        const char *name = repeated_member(item);
        if (name) {
            if (object)
                *object = item;
            return name;
        }
    }
    if (cJSON_IsObject(item) || cJSON_IsArray(item))
        for (const cJSON *c = item->child; c; c = c->next) {
            const char *name = nb_json_duplicate_name(c, object);
            if (name)
                return name;
        }
    return NULL;
}

/* ---- a prefix of a JSON object ---- */

/* Deeper than any line nabla writes; a prefix nested deeper is not taken for one of them. */
#define PREFIX_MAX_DEPTH 64

/* Where the scanner is: what may come next. */
typedef enum where {
    W_VALUE,          /* a value */
    W_VALUE_OR_END,   /* a value or ']' (just after '[') */
    W_KEY,            /* a member's name */
    W_KEY_OR_END,     /* a name or '}' (just after '{') */
    W_COLON,          /* ':' after a name */
    W_AFTER,          /* ',' or the end of the container, after a value */
    W_DONE,           /* the object is whole: only blanks may follow */
} where;

/* Number states, after: '-'; a leading '0'; digits; '.'; digits after it; 'e'; its sign;
 * digits of the exponent. */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_E_SIGN, N_EXP };

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The number state after c in state st, or -1 when c does not continue the number. */
static int number_step(int st, char c)
{
    switch (st) {
    case N_MINUS: return c == '0' ? N_ZERO : is_digit(c) ? N_INT : -1;
    case N_ZERO:
    case N_INT:
        if (st == N_INT && is_digit(c))
            return N_INT;
        return c == '.' ? N_DOT : c == 'e' || c == 'E' ? N_E : -1;
    case N_DOT:
    case N_FRAC:
        if (is_digit(c))
            return N_FRAC;
        return st == N_FRAC && (c == 'e' || c == 'E') ? N_E : -1;
    case N_E: return c == '+' || c == '-' ? N_E_SIGN : is_digit(c) ? N_EXP : -1;
    default: return is_digit(c) ? N_EXP : -1;   /* N_E_SIGN, N_EXP */
    }
}

/* A number may end in these states (not after '-', '.', 'e' or its sign). */
static int number_complete(int st)
{
    return st == N_ZERO || st == N_INT || st == N_FRAC || st == N_EXP;
}

int nb_json_number_text(const char *s)
{
    int st = *s == '-' ? N_MINUS : *s == '0' ? N_ZERO : is_digit(*s) ? N_INT : -1;
    if (st < 0)
        return 0;
    for (s++; *s && st >= 0; s++)
        st = number_step(st, *s);
    return st >= 0 && number_complete(st);
}

int nb_json_object_prefix(const char *s, size_t n)
{
    char stack[PREFIX_MAX_DEPTH];   /* '{' or '[' of each open container */
    int depth = 0;
    where w = W_VALUE;
    int started = 0;
    /* Inside a token: a string (a key or a value; just after a backslash; hex digits of a \u
     * still to come), a number (its state), or a literal (true, false, null: what is left). */
    int in_string = 0, key = 0, escaped = 0, hex_left = 0, number = -1;
    const char *literal = NULL;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (in_string) {
            i++;
            if (hex_left > 0) {
                if (!is_hex(c))
                    return 0;
                hex_left--;
            } else if (escaped) {
                escaped = 0;
                if (c == 'u')
                    hex_left = 4;
                else if (!c || !strchr("\"\\/bfnrt", c))
                    return 0;
            } else if (c == '\\') {
                escaped = 1;
            } else if (c == '"') {
                in_string = 0;
                w = key ? W_COLON : W_AFTER;
            } else if ((unsigned char)c < 0x20) {
                return 0;
            }
            continue;
        }
        if (number >= 0) {
            int next = number_step(number, c);
            if (next >= 0) {
                number = next;
                i++;
                continue;
            }
            if (!number_complete(number))
                return 0;
            number = -1;
            w = W_AFTER;   /* c is read again, after the number */
            continue;
        }
        if (literal) {
            if (*literal != c)
                return 0;
            literal++;
            i++;
            if (!*literal)
                literal = NULL, w = W_AFTER;
            continue;
        }
        i++;
        if (is_blank(c))
            continue;
        if (!started) {
            if (c != '{')
                return 0;
            started = 1;
            stack[depth++] = '{';
            w = W_KEY_OR_END;
            continue;
        }
        switch (w) {
        case W_KEY_OR_END:
        case W_KEY:
            if (c == '}' && w == W_KEY_OR_END) {
                depth--;
                w = depth ? W_AFTER : W_DONE;
            } else if (c == '"') {
                in_string = 1, key = 1;
            } else {
                return 0;
            }
            break;
        case W_COLON:
            if (c != ':')
                return 0;
            w = W_VALUE;
            break;
        case W_VALUE_OR_END:
        case W_VALUE:
            if (c == ']' && w == W_VALUE_OR_END) {
                depth--;
                w = depth ? W_AFTER : W_DONE;
            } else if (c == '{' || c == '[') {
                if (depth == PREFIX_MAX_DEPTH)
                    return 0;
                stack[depth++] = c;
                w = c == '{' ? W_KEY_OR_END : W_VALUE_OR_END;
            } else if (c == '"') {
                in_string = 1, key = 0;
            } else if (c == '-' || is_digit(c)) {
                number = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
            } else if (c == 't' || c == 'f' || c == 'n') {
                literal = c == 't' ? "rue" : c == 'f' ? "alse" : "ull";
            } else {
                return 0;
            }
            break;
        case W_AFTER:
            if (c == ',')
                w = stack[depth - 1] == '{' ? W_KEY : W_VALUE;
            else if (c == (stack[depth - 1] == '{' ? '}' : ']'))
                w = --depth ? W_AFTER : W_DONE;
            else
                return 0;
            break;
        case W_DONE:
            return 0;
        }
    }
    /* A number cut short may still go on ("0.", "1e"); so may a literal or a string. */
    return started;
}
