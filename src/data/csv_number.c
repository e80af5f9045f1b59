/* CSV numbers: exactly the float that (float)strtod(field) gives, decimal only, and the words
 * that mean a value is missing.
 *
 * Most fields take a fast path (csv_fast_decimal); anything unusual (very long mantissas,
 * large exponents) goes to strtod itself. Numbers are decimal: the hexadecimal ones strtod
 * would read ("0x10") are refused, and so are infinities and NaNs other than the words for a
 * missing value. A ';'-separated file may write its decimals with a comma ("1,5"), as
 * spreadsheets do where the comma is the decimal mark. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/csv_internal.h"

static const double powers_of_ten[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The fast path for a plain decimal ([sign] digits [. digits] [e [sign] digits]) starting at
 * s (csv_internal.h).
 *
 * Up to 2^53, the digits form an exact double, and so does 10^k for k <= 22; one correctly
 * rounded product or quotient then is exactly strtod's result (Clinger's fast path). Longer
 * mantissas (up to 19 digits, as Python prints floats) give a double within 2 ulp of the true
 * value; it still rounds to the same float unless it lies within a few ulp of a midpoint
 * between two floats, a chance of about 2^-25, and then strtod decides. */
const char *csv_fast_decimal(const char *s, const char *end, int comma, float *out)
{
    const char *p = s;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    uint64_t mantissa = 0;
    int digits = 0, exponent = 0, seen_digit = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        seen_digit = 1;
        if (mantissa || *p != '0')
            digits++;
        mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
        if (digits > 19)
            return NULL;
    }
    if (p < end && (*p == '.' || (comma && *p == ','))) {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            seen_digit = 1;
            if (mantissa || *p != '0')
                digits++;
            mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
            exponent--;
            /* Leading zeros after the point are not limited like the digits; a bound on
             * the exponent keeps it from overflowing on an absurdly long field. */
            if (digits > 19 || exponent < -1000000)
                return NULL;
        }
    }
    if (!seen_digit)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0, e = 0, exp_digits = 0;
        if (p < end && (*p == '+' || *p == '-'))
            exp_negative = *p++ == '-';
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 10000)
                e = e * 10 + (*p - '0');
            p++;
            exp_digits++;
        }
        if (!exp_digits)
            return NULL;
        exponent += exp_negative ? -e : e;
    }
    if (exponent < -22 || exponent > 22)
        return NULL;
    double v = (double)mantissa;
    v = exponent < 0 ? v / powers_of_ten[-exponent] : v * powers_of_ten[exponent];
    if (v > FLT_MAX)
        return NULL;   /* strtod reports it: out of range */
    float f = (float)v;
    if (mantissa > (UINT64_C(1) << 53)) {
        /* Midpoints between floats are exact in double. */
        double below = ((double)nextafterf(f, 0.0f) + f) / 2;
        double above = ((double)nextafterf(f, INFINITY) + f) / 2;
        double margin = v * 0x1p-50;   /* 4 ulp */
        if (v - below <= margin || above - v <= margin)
            return NULL;
        /* Likewise near FLT_MAX: strtod's correctly rounded double may lie just above it,
         * and then the number is out of range for a float. */
        if (FLT_MAX - v <= margin)
            return NULL;
    }
    *out = negative ? -f : f;
    return p;
}

/* strtod on a whole field: 0 and the value when all of it is a number, else -1. A decimal
 * comma becomes a point first when `comma` allows it. */
static int strtod_field(const char *s, size_t len, int comma, double *out)
{
    char buf[128];   /* strtod needs a terminated string; numbers are short */
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (comma) {
        char *c = strchr(buf, ',');
        if (c)
            *c = '.';
    }
    char *stop;
    double v = strtod(buf, &stop);
    if (stop != buf + len)
        return -1;
    *out = v;
    return 0;
}

/* "inf", "-Infinity" and the like, as opposed to a finite number too large for a double. */
static int spells_infinity(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    return *s == 'i' || *s == 'I';
}

/* "0x10", "-0X1p3": strtod reads C's hexadecimal numbers, but a CSV number is decimal. */
static int spells_hex(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    if (p < end && (*p == '+' || *p == '-'))
        p++;
    return end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

csv_number_kind csv_parse_number(const char *s, size_t len, int comma, float *out)
{
    const char *end = s + len;
    if (csv_fast_decimal(s, end, comma, out) == end)
        return CSV_NUMBER;
    double v;
    if (strtod_field(s, len, comma, &v) < 0)
        return CSV_NOT_A_NUMBER;
    if (spells_hex(s, len))
        return CSV_HEX;
    if (isnan(v))
        return CSV_NAN;
    if (isinf(v) && spells_infinity(s))
        return CSV_INFINITE;
    if (fabs(v) > FLT_MAX)
        return CSV_OUT_OF_RANGE;
    *out = (float)v;
    return CSV_NUMBER;
}

int csv_looks_numeric(const char *s, size_t len, int comma)
{
    float f;
    return csv_parse_number(s, len, comma, &f) != CSV_NOT_A_NUMBER;
}

int csv_parse_integer(const char *s, size_t len, long long *out)
{
    const char *p = s, *end = s + len;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    long long v = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (LLONG_MAX - 9) / 10)
            return -1;   /* beyond a long long: a number, but no integer label */
        v = v * 10 + (*p++ - '0');
    }
    if (p == digits)
        return -1;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p == '0')
            p++;
    }
    if (p != end)
        return -1;
    *out = negative ? -v : v;
    return 0;
}

int csv_is_missing(const char *s, size_t len)
{
    static const char *const words[] = {"NA", "N/A", "n/a", "NULL", "null", "None", "?"};
    if (len == 0)
        return 1;
    if (len == 3 && strncasecmp(s, "nan", 3) == 0)
        return 1;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
            return 1;
    return 0;
}
