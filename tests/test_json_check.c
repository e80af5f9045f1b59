/* Tests for src/io/json_check.c: names that repeat in a JSON object (at any depth), and what may
 * be taken for the beginning of a JSON object (a line cut short while it was written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "io/json_check.h"

/* The duplicate name nb_json_duplicate_name finds in text ("" for none), and the name of the
 * object holding it in *holder ("" for the top level). */
static void duplicate_is(const char *text, const char *want, const char *holder)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("not JSON: %s", text);
    const cJSON *object = NULL;
    const char *name = nb_json_duplicate_name(j, &object);
    if (!want) {
        if (name)
            fail_msg("%s: found \"%s\" twice", text, name);
    } else {
        if (!name)
            fail_msg("%s: no duplicate found, expected \"%s\"", text, want);
        assert_string_equal(name, want);
        assert_string_equal(object->string ? object->string : "", holder);
    }
    cJSON_Delete(j);
}

static void test_duplicates(void **state)
{
    (void)state;
    duplicate_is("{\"epoch\":3,\"epoch\":9}", "epoch", "");
    duplicate_is("{\"a\":1,\"b\":2,\"c\":3,\"b\":4}", "b", "");
    duplicate_is("{\"trial\":0,\"params\":{\"lr\":0.1,\"lr\":0.2}}", "lr", "params");
    duplicate_is("{\"x\":[{\"a\":1},{\"b\":1,\"b\":2}]}", "b", "");
    duplicate_is("[{\"a\":1,\"a\":1}]", "a", "");
    duplicate_is("{\"\":1,\"\":2}", "", "");
    /* Names that differ only in case, or that repeat in different objects, are not twice. */
    duplicate_is("{\"a\":1,\"A\":2}", NULL, NULL);
    duplicate_is("{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}", NULL, NULL);
    duplicate_is("{}", NULL, NULL);
    duplicate_is("[1,2,3]", NULL, NULL);
    duplicate_is("7", NULL, NULL);
    assert_null(nb_json_duplicate_name(NULL, NULL));
}

static void test_many_names(void **state)
{
    (void)state;
    /* A large object (as a safetensors header of a big model is) is sorted, not compared pair
     * by pair; the repeat is found wherever it is. */
    enum { N = 20000 };
    cJSON *j = cJSON_CreateObject();
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "k%d", i);
        cJSON_AddNumberToObject(j, name, i);
    }
    assert_null(nb_json_duplicate_name(j, NULL));
    cJSON_AddNumberToObject(j, "k12345", 1);
    assert_string_equal(nb_json_duplicate_name(j, NULL), "k12345");
    cJSON_Delete(j);
}

static void prefix_is(const char *text, int want)
{
    int got = nb_json_object_prefix(text, strlen(text));
    if (got != want)
        fail_msg("'%s': %s, expected %s", text, got ? "a prefix" : "not a prefix",
                 want ? "a prefix" : "not a prefix");
}

static void test_object_prefix(void **state)
{
    (void)state;
    /* Every prefix of a line nabla writes is one. */
    const char *line = "{\"epoch\":3,\"lr\":0.001,\"train_loss\":0.25,\"dev_loss\":null,"
                       "\"ok\":true,\"no\":false,\"x\":-1.5e-7,\"s\":\"a\\\"b\\u00e9\","
                       "\"args\":[\"--lr\",\"0.1\",[]],\"o\":{}}";
    for (size_t n = 1; n <= strlen(line); n++)
        if (!nb_json_object_prefix(line, n))
            fail_msg("'%.*s' is a prefix of a valid line", (int)n, line);
    prefix_is("  {\"trial\":0,\"sta", 1);
    prefix_is("{\"epoch\":0.", 1);      /* a number that goes on */
    prefix_is("{\"epoch\":1e", 1);
    prefix_is("{\"x\":\"\\u00", 1);
    /* Anything else is not. */
    prefix_is("", 0);
    prefix_is("   ", 0);
    prefix_is("GARBAGE{{{", 0);
    prefix_is("[1,2", 0);
    prefix_is("\"epoch\"", 0);
    prefix_is("{{", 0);
    prefix_is("{\"a\":1}}", 0);
    prefix_is("{\"a\":1} x", 0);
    prefix_is("{\"a\"1", 0);
    prefix_is("{\"a\":01", 0);
    prefix_is("{\"a\":1.e", 0);
    prefix_is("{\"a\":+1", 0);
    prefix_is("{\"a\":tru,", 0);
    prefix_is("{\"a\":nul1", 0);
    prefix_is("{\"a\":1,}", 0);
    prefix_is("{\"a\":\"\\x\"", 0);
    prefix_is("{\"a\":\"\\u00g", 0);
    prefix_is("{\"a\":\"tab\there\"", 0);
    prefix_is("{\"a\":[1,]", 0);
    prefix_is("{,", 0);
    prefix_is("{\"a\":1]", 0);
    /* Binary bytes. */
    const char bin[] = {'{', '"', 'a', '"', ':', '\x01', '\xff'};
    assert_false(nb_json_object_prefix(bin, sizeof bin));
    const char nul[] = {'{', '\0'};
    assert_false(nb_json_object_prefix(nul, sizeof nul));
    /* Nesting deeper than any line nabla writes. */
    char deep[200];
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    memset(deep + 5, '[', sizeof deep - 5);
    assert_false(nb_json_object_prefix(deep, sizeof deep));
}

static void test_number_text(void **state)
{
    (void)state;
    const char *yes[] = {"0", "8", "-8", "0.01", "0.00999999978", "1e-05", "-1.5E+3", "10", "-0"};
    const char *no[] = {"", " 8", "8 ", "+8", "08", "-", "1.", ".5", "1e", "1e+", "0x10",
                        "inf", "nan", "1,5", "--1", "1..2", "1e5.0"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!nb_json_number_text(yes[i]))
            fail_msg("'%s' is a JSON number", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (nb_json_number_text(no[i]))
            fail_msg("'%s' is no JSON number", no[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_object_prefix),
        cmocka_unit_test(test_number_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
