/* test_filter.c -- Qdrant filters: table-driven cases for every condition
 * (missing keys, type mismatches, arrays, nulls, nested), error messages for
 * malformed filters, payload paths, with_payload selectors, payload
 * set/delete, datetime/geo/siphash helpers, and a randomised comparison
 * against a naive evaluator written here.
 *
 * JSON in the tables uses ' for " (converted by q()) to stay readable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "filter/filter.h"
#include "filter/values.h"
#include "t.h"

static char *q(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

static json_t *js(const char *s)
{
    char *t = q(s);
    json_error_t e;
    json_t *j = json_loads(t, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) printf("    bad test JSON: %s (%s)\n", t, e.text);
    free(t);
    return j;
}

/* -1 on compile error, else the match result. */
static int run(const char *filter, const char *payload, const ny_point_id *id)
{
    char *f = q(filter);
    ny_fexpr *fx = NULL;
    int rc = ny_filter_compile(f, &fx);
    free(f);
    if (rc != NY_OK) {
        printf("    compile error: %s\n", ny_errmsg());
        return -1;
    }
    json_t *p = payload ? js(payload) : NULL;
    int m = ny_filter_match(fx, id, p);
    json_decref(p);
    ny_filter_free(fx);
    return m;
}

typedef struct { const char *filter, *payload; int want; } mcase;

static void run_table(const mcase *t, size_t n)
{
    ny_point_id id = {0, 7, {0}};
    for (size_t i = 0; i < n; i++) {
        int got = run(t[i].filter, t[i].payload, &id);
        CHECKF(got == t[i].want, "case %zu: filter %s on %s: got %d, want %d", i, t[i].filter,
               t[i].payload ? t[i].payload : "NULL", got, t[i].want);
    }
}

#define TABLE(t) run_table(t, sizeof(t) / sizeof((t)[0]))

/* ===== Clauses ============================================================ */

#define P1 "{'city': 'London', 'color': 'red', 'n': 5}"
#define LONDON "{'key': 'city', 'match': {'value': 'London'}}"
#define BERLIN "{'key': 'city', 'match': {'value': 'Berlin'}}"
#define RED "{'key': 'color', 'match': {'value': 'red'}}"
#define BLUE "{'key': 'color', 'match': {'value': 'blue'}}"
#define N6 "{'key': 'n', 'match': {'value': 6}}"

TEST(clauses)
{
    static const mcase t[] = {
        {"{}", P1, 1},
        {"null", P1, 1},
        {"{}", NULL, 1},
        {"{'must': [" LONDON "]}", P1, 1},
        {"{'must': " LONDON "}", P1, 1},
        {"{'must': [" LONDON ", " RED "]}", P1, 1},
        {"{'must': [" LONDON ", " BLUE "]}", P1, 0},
        {"{'must': []}", P1, 1},
        {"{'must': null}", P1, 1},
        {"{'should': [" BERLIN ", " RED "]}", P1, 1},
        {"{'should': [" BERLIN ", " BLUE "]}", P1, 0},
        {"{'should': " BERLIN "}", P1, 0},
        {"{'should': []}", P1, 0},
        {"{'must_not': [" RED "]}", P1, 0},
        {"{'must_not': [" BLUE "]}", P1, 1},
        {"{'must_not': [" BLUE ", " LONDON "]}", P1, 0},
        {"{'must_not': []}", P1, 1},
        {"{'must_not': " BLUE "}", P1, 1},
        {"{'must': [" LONDON "], 'must_not': [" BLUE "], 'should': [" RED ", " BERLIN "]}", P1, 1},
        {"{'must': [" LONDON "], 'must_not': [" RED "], 'should': [" RED "]}", P1, 0},
        {"{'must': [" LONDON "], 'should': [" BERLIN "]}", P1, 0},
        {"{'min_should': {'conditions': [" LONDON ", " RED ", " N6 "], 'min_count': 2}}", P1, 1},
        {"{'min_should': {'conditions': [" LONDON ", " RED ", " N6 "], 'min_count': 3}}", P1, 0},
        {"{'min_should': {'conditions': [" BERLIN ", " BLUE ", " N6 "], 'min_count': 1}}", P1, 0},
        {"{'min_should': {'conditions': [], 'min_count': 1}}", P1, 0},
        {"{'min_should': {'conditions': [" LONDON "], 'min_count': 2}}", P1, 0},
        {"{'should': [" LONDON "], 'min_should': {'conditions': [" RED ", " N6 "], 'min_count': 2}}", P1, 0},
        {"{'should': [" LONDON "], 'min_should': {'conditions': [" RED ", " N6 "], 'min_count': 1}}", P1, 1},
        /* nested filters as conditions */
        {"{'must': [{'should': [" BERLIN ", " RED "]}]}", P1, 1},
        {"{'must': [{'should': [" BERLIN ", " BLUE "]}]}", P1, 0},
        {"{'must_not': [{'must': [" LONDON ", " RED "]}]}", P1, 0},
        {"{'must_not': [{'must': [" LONDON ", " BLUE "]}]}", P1, 1},
        {"{'must': [{}]}", P1, 1},
        {"{'must': [{'should': []}]}", P1, 0},
        {"{'must_not': [{'should': []}]}", P1, 1},
        {"{'should': [{'must_not': [" BLUE "]}]}", P1, 1},
        {"{'must': [{'must': [{'must': [{'should': [" RED "]}]}]}]}", P1, 1},
    };
    TABLE(t);
}

/* ===== match ============================================================== */

TEST(match_value)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': 'x'}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': 'X'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': 'xy'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': ''}}]}", "{'a': ''}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': ''}}]}", "{'a': 'x'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'b': 'x'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': null}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': ['y', 'x']}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': ['y', 'z']}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': [['x']]}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': {'x': 'x'}}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': []}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", NULL, 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 5}}]}", "{'a': 5}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 5}}]}", "{'a': 5.0}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 5}}]}", "{'a': '5'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 5}}]}", "{'a': 6}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 5}}]}", "{'a': [1, 5]}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': -3}}]}", "{'a': -3}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 9223372036854775807}}]}", "{'a': 9223372036854775807}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 1}}]}", "{'a': true}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': true}}]}", "{'a': true}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': true}}]}", "{'a': false}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': false}}]}", "{'a': false}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': true}}]}", "{'a': 1}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': true}}]}", "{'a': 'true'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': true}}]}", "{'a': [false, true]}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 'x'}}]}", "{'a': 'x\\u0000y'}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 'caf\\u00e9'}}]}", "{'a': 'café'}", 1},
        /* must_not with a missing key matches (nothing at the key to match) */
        {"{'must_not': [{'key': 'a', 'match': {'value': 'x'}}]}", "{}", 1},
    };
    TABLE(t);
}

TEST(match_any_except)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{'a': 'y'}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{'a': 'z'}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{'a': ['z', 'x']}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{'a': 1}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': []}}]}", "{'a': 'x'}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': []}}]}", "{'a': 1}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': [1, 2, 3]}}]}", "{'a': 2}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': [1, 2, 3]}}]}", "{'a': 2.0}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': [1, 2, 3]}}]}", "{'a': '2'}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': [1, 2, 3]}}]}", "{'a': [7, 3]}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': [1, 2, 3]}}]}", "{'a': 4}", 0},
        /* long lists take the sorted/binary-search path */
        {"{'must': [{'key': 'a', 'match': {'any': [20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1]}}]}",
         "{'a': 13}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': [20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1]}}]}",
         "{'a': 21}", 0},
        {"{'must': [{'key': 'a', 'match': {'any': ['k','j','i','h','g','f','e','d','c','b','a','aa','ab']}}]}",
         "{'a': 'ab'}", 1},
        {"{'must': [{'key': 'a', 'match': {'any': ['k','j','i','h','g','f','e','d','c','b','a','aa','ab']}}]}",
         "{'a': 'ac'}", 0},
        /* except: a value exists and is not listed */
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': 'z'}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': 'x'}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': null}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': 5}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': true}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': {'b': 1}}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': ['x', 'z']}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': ['x', 'y']}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': []}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': [null]}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': ['x', 'y']}}]}", "{'a': [['x']]}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': []}}]}", "{'a': 'x'}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': 3}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': 1}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': 1.5}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': 'x'}", 1},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': [1, 2]}", 0},
        {"{'must': [{'key': 'a', 'match': {'except': [1, 2]}}]}", "{'a': null}", 0},
        /* must_not any: also matches points without the key (unlike except) */
        {"{'must_not': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{}", 1},
        {"{'must_not': [{'key': 'a', 'match': {'any': ['x', 'y']}}]}", "{'a': 'x'}", 0},
    };
    TABLE(t);
}

TEST(match_text)
{
    static const mcase t[] = {
        {"{'must': [{'key': 't', 'match': {'text': 'quick'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'text': 'Quick'}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'text': 'k b'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'text': 'quick'}}]}", "{'t': ['slow', 'so quick']}", 1},
        {"{'must': [{'key': 't', 'match': {'text': 'quick'}}]}", "{'t': 5}", 0},
        {"{'must': [{'key': 't', 'match': {'text': ''}}]}", "{'t': 'abc'}", 1},
        {"{'must': [{'key': 't', 'match': {'text': ''}}]}", "{}", 0},
        {"{'must': [{'key': 't', 'match': {'phrase': 'quick brown'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'phrase': 'brown quick'}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'text_any': 'cat quick'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'text_any': ' cat  dog '}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'text_any': ''}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'text_any': 'dog\\tfox'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'prefix': 'The q'}}]}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': [{'key': 't', 'match': {'prefix': 'quick'}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'prefix': 'The quick brown fox!'}}]}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': [{'key': 't', 'match': {'prefix': ''}}]}", "{'t': ''}", 1},
        {"{'must': [{'key': 't', 'match': {'prefix': 'a'}}]}", "{'t': ['b', 'ab']}", 1},
    };
    TABLE(t);
}

static int run_schema(const char *filter, const char *schema, const char *payload)
{
    char *f = q(filter);
    json_t *sc = js(schema);
    ny_fexpr *fx = NULL;
    int rc = ny_filter_compile_schema(f, sc, &fx);
    free(f);
    json_decref(sc);
    if (rc != NY_OK) {
        printf("    compile error: %s\n", ny_errmsg());
        return -1;
    }
    json_t *p = js(payload);
    int m = ny_filter_match(fx, NULL, p);
    json_decref(p);
    ny_filter_free(fx);
    return m;
}

TEST(match_text_with_full_text_index)
{
    static const struct { const char *filter, *schema, *payload; int want; } t[] = {
        /* all query tokens present, in any order, case-folded */
        {"{'must': {'key': 't', 'match': {'text': 'fox quick'}}}", "{'t': 'text'}", "{'t': 'The Quick brown fox!'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'fox quick'}}}", "{}", "{'t': 'The Quick brown fox!'}", 0},
        {"{'must': {'key': 't', 'match': {'text': 'QUICK'}}}", "{'t': 'text'}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'quick dog'}}}", "{'t': 'text'}", "{'t': 'The quick brown fox'}", 0},
        /* tokens, not substrings */
        {"{'must': {'key': 't', 'match': {'text': 'qui'}}}", "{'t': 'text'}", "{'t': 'The quick brown fox'}", 0},
        {"{'must': {'key': 't', 'match': {'text': 'qui'}}}", "{}", "{'t': 'The quick brown fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'qui'}}}", "{'t': {'type': 'text', 'tokenizer': 'prefix'}}",
         "{'t': 'The quick brown fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'QUICK'}}}", "{'t': {'type': 'text', 'lowercase': false}}",
         "{'t': 'The quick brown fox'}", 0},
        {"{'must': {'key': 't', 'match': {'text': 'Quick'}}}", "{'t': {'type': 'text', 'lowercase': false}}",
         "{'t': 'The Quick brown fox'}", 1},
        /* whitespace tokenizer keeps punctuation inside tokens */
        {"{'must': {'key': 't', 'match': {'text': 'fox'}}}", "{'t': {'type': 'text', 'tokenizer': 'whitespace'}}",
         "{'t': 'the fox!'}", 0},
        {"{'must': {'key': 't', 'match': {'text': 'fox!'}}}", "{'t': {'type': 'text', 'tokenizer': 'whitespace'}}",
         "{'t': 'the fox!'}", 1},
        /* token length limits apply to the query and to the text */
        {"{'must': {'key': 't', 'match': {'text': 'a fox'}}}", "{'t': {'type': 'text', 'min_token_len': 2}}",
         "{'t': 'the fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'a'}}}", "{'t': {'type': 'text', 'min_token_len': 2}}", "{'t': 'a fox'}", 0},
        {"{'must': {'key': 't', 'match': {'text': 'fox'}}}", "{'t': {'type': 'text', 'max_token_len': 2}}", "{'t': 'fox'}", 0},
        /* text_any and phrase */
        {"{'must': {'key': 't', 'match': {'text_any': 'cat FOX'}}}", "{'t': 'text'}", "{'t': 'the fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text_any': 'cat dog'}}}", "{'t': 'text'}", "{'t': 'the fox'}", 0},
        {"{'must': {'key': 't', 'match': {'phrase': 'Brown, fox'}}}", "{'t': 'text'}", "{'t': 'the quick brown fox'}", 1},
        {"{'must': {'key': 't', 'match': {'phrase': 'fox brown'}}}", "{'t': 'text'}", "{'t': 'the quick brown fox'}", 0},
        {"{'must': {'key': 't', 'match': {'phrase': 'quick fox'}}}", "{'t': 'text'}", "{'t': 'the quick brown fox'}", 0},
        {"{'must': {'key': 't', 'match': {'phrase': 'a a b'}}}", "{'t': 'text'}", "{'t': 'a a a b'}", 1},
        {"{'must': {'key': 't', 'match': {'phrase': 'a b c'}}}", "{'t': 'text'}", "{'t': 'x a b'}", 0},
        {"{'must': {'key': 't', 'match': {'text': '...'}}}", "{'t': 'text'}", "{'t': 'anything'}", 0},
        /* other schema forms; other index types keep substring semantics */
        {"{'must': {'key': 't', 'match': {'text': 'fox quick'}}}", "{'t': {'data_type': 'text', 'params': {'type': 'text'}}}",
         "{'t': 'quick fox'}", 1},
        {"{'must': {'key': 't', 'match': {'text': 'fox quick'}}}", "{'t': 'keyword'}", "{'t': 'quick fox'}", 0},
        /* arrays of strings: any element */
        {"{'must': {'key': 't', 'match': {'text': 'fox quick'}}}", "{'t': 'text'}", "{'t': ['slow fox', 'quick fox']}", 1},
        /* inside nested, the index is looked up under '<key>[].<inner key>' */
        {"{'must': {'nested': {'key': 'd', 'filter': {'must': {'key': 't', 'match': {'text': 'fox quick'}}}}}}",
         "{'d[].t': 'text'}", "{'d': [{'t': 'quick fox'}]}", 1},
        {"{'must': {'nested': {'key': 'd', 'filter': {'must': {'key': 't', 'match': {'text': 'fox quick'}}}}}}",
         "{'t': 'text'}", "{'d': [{'t': 'quick fox'}]}", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = run_schema(t[i].filter, t[i].schema, t[i].payload);
        CHECKF(got == t[i].want, "case %zu: %s with schema %s on %s: got %d", i, t[i].filter, t[i].schema, t[i].payload, got);
    }
}

/* ===== range ============================================================== */

TEST(range_numbers)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'n', 'range': {'gt': 4}}]}", "{'n': 5}", 1},
        {"{'must': [{'key': 'n', 'range': {'gt': 5}}]}", "{'n': 5}", 0},
        {"{'must': [{'key': 'n', 'range': {'gte': 5}}]}", "{'n': 5}", 1},
        {"{'must': [{'key': 'n', 'range': {'lt': 5}}]}", "{'n': 5}", 0},
        {"{'must': [{'key': 'n', 'range': {'lte': 5}}]}", "{'n': 5}", 1},
        {"{'must': [{'key': 'n', 'range': {'gt': 4.5, 'lt': 5.5}}]}", "{'n': 5}", 1},
        {"{'must': [{'key': 'n', 'range': {'gte': 5.0, 'lte': 5.0}}]}", "{'n': 5}", 1},
        {"{'must': [{'key': 'n', 'range': {'gte': 5, 'lte': 6}}]}", "{'n': 5.5}", 1},
        {"{'must': [{'key': 'n', 'range': {'gte': 5, 'lte': 6}}]}", "{'n': 6.0001}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': -10, 'lt': -1}}]}", "{'n': -3}", 1},
        {"{'must': [{'key': 'n', 'range': {'gt': 4}}]}", "{'n': '5'}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': 0}}]}", "{'n': true}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': 4}}]}", "{'n': null}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': 4}}]}", "{}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': 5}}]}", "{'n': [1, 10]}", 1},
        {"{'must': [{'key': 'n', 'range': {'gt': 5}}]}", "{'n': [1, 2]}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': 5, 'lt': 8}}]}", "{'n': [1, 10]}", 0},
        {"{'must': [{'key': 'n', 'range': {}}]}", "{'n': 1}", 1},
        {"{'must': [{'key': 'n', 'range': {}}]}", "{'n': 'x'}", 0},
        {"{'must': [{'key': 'n', 'range': {'gt': null, 'lt': 3}}]}", "{'n': 1}", 1},
        {"{'must': [{'key': 'n', 'range': {'gte': 9007199254740993}}]}", "{'n': 9007199254740993}", 1},
        {"{'must': [{'key': 'n', 'range': {'lt': 1e300}}]}", "{'n': -1e300}", 1},
        {"{'must_not': [{'key': 'n', 'range': {'gt': 4}}]}", "{}", 1},
    };
    TABLE(t);
}

TEST(range_datetime)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'd', 'range': {'gte': '2020-02-01T00:00:00Z', 'lt': '2020-03-01T00:00:00Z'}}]}",
         "{'d': '2020-02-15T00:00:00Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gte': '2020-03-01T00:00:00Z', 'lt': '2020-04-01T00:00:00Z'}}]}",
         "{'d': '2020-02-15T00:00:00Z'}", 0},
        /* 23:30 at UTC-1 is 00:30 UTC on March 1 */
        {"{'must': [{'key': 'd', 'range': {'lt': '2020-03-01T00:00:00Z'}}]}", "{'d': '2020-02-29T23:30:00-01:00'}", 0},
        {"{'must': [{'key': 'd', 'range': {'lt': '2020-03-01T00:00:00Z'}}]}", "{'d': '2020-02-29T23:30:00+01:00'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-03-01T00:00:00+05:30'}}]}", "{'d': '2020-02-29T19:00:00Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-03-01T00:00:00+0530'}}]}", "{'d': '2020-02-29T18:30:00Z'}", 0},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-03-01T00:00:00+05'}}]}", "{'d': '2020-02-29T19:00:01Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gte': '2020-02-15', 'lte': '2020-02-15'}}]}", "{'d': '2020-02-15T00:00:00Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gte': '2020-02-15T00:00:00Z'}}]}", "{'d': '2020-02-15'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-01-01T00:00:00Z'}}]}", "{'d': '2020-01-01T00:00:00.5Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-01-01T00:00:00Z'}}]}", "{'d': '2020-01-01T00:00:00.000000001Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-01-01T00:00:00Z'}}]}", "{'d': '2020-01-01T00:00:00.0000000001Z'}", 0},
        {"{'must': [{'key': 'd', 'range': {'lt': '2020-01-01T00:00:00.25Z'}}]}", "{'d': '2020-01-01T00:00:00.2499Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-01-01 10:00'}}]}", "{'d': '2020-01-01 10:00:01'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2020-01-01T10:00:00'}}]}", "{'d': '2020-01-01t10:00:00z'}", 0},
        {"{'must': [{'key': 'd', 'range': {'gt': '1969-12-31T23:59:59Z'}}]}", "{'d': '1970-01-01T00:00:00Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'lt': '0001-01-01T00:00:01Z'}}]}", "{'d': '0001-01-01T00:00:00Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '9999-12-31T23:59:58Z'}}]}", "{'d': '9999-12-31T23:59:59Z'}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2000-01-01'}}]}", "{'d': 'hello'}", 0},
        {"{'must': [{'key': 'd', 'range': {'gt': '2000-01-01'}}]}", "{'d': '2020-02-30'}", 0},
        {"{'must': [{'key': 'd', 'range': {'gt': '2000-01-01'}}]}", "{'d': 1700000000}", 0},
        {"{'must': [{'key': 'd', 'range': {'gt': '2000-01-01'}}]}", "{'d': ['1999-01-01', '2001-01-01']}", 1},
        {"{'must': [{'key': 'd', 'range': {'gt': '2000-01-01'}}]}", "{}", 0},
        {"{'must': [{'key': 'd', 'range': {'gte': '2024-02-29T00:00:00Z', 'lt': '2024-03-01'}}]}",
         "{'d': '2024-02-29T23:59:59.999Z'}", 1},
    };
    TABLE(t);
}

/* ===== geo ================================================================ */

#define BERLIN_BOX "{'top_left': {'lon': 13.08835, 'lat': 52.67551}, 'bottom_right': {'lon': 13.76116, 'lat': 52.33826}}"
#define LOC_BERLIN "{'location': {'lon': 13.404954, 'lat': 52.520008}}"
#define SQUARE "{'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 10, 'lat': 0}, {'lon': 10, 'lat': 10}, " \
               "{'lon': 0, 'lat': 10}, {'lon': 0, 'lat': 0}]}"
#define HOLE ", 'interiors': [{'points': [{'lon': 4, 'lat': 4}, {'lon': 6, 'lat': 4}, {'lon': 6, 'lat': 6}, " \
             "{'lon': 4, 'lat': 6}, {'lon': 4, 'lat': 4}]}]"

TEST(geo)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}", LOC_BERLIN, 1},
        {"{'must': [{'key': 'location', 'geo_bounding_box': {'top_left': {'lon': 37.0366, 'lat': 56.1859}, "
         "'bottom_right': {'lon': 38.2532, 'lat': 55.317}}}]}", LOC_BERLIN, 0},
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}",
         "{'location': [{'lon': 0, 'lat': 0}, {'lon': 13.5, 'lat': 52.5}]}", 1},
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}", "{'location': {'lon': 13.5}}", 0},
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}", "{'location': 'Berlin'}", 0},
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}", "{'location': {'lon': '13.5', 'lat': 52.5}}", 0},
        {"{'must': [{'key': 'location', 'geo_bounding_box': " BERLIN_BOX "}]}", "{}", 0},
        /* edges are exclusive */
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 0, 'lat': 10}, 'bottom_right': {'lon': 10, 'lat': 0}}}]}",
         "{'l': {'lon': 0, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 0, 'lat': 10}, 'bottom_right': {'lon': 10, 'lat': 0}}}]}",
         "{'l': {'lon': 5, 'lat': 5}}", 1},
        /* a box across the antimeridian */
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 170, 'lat': 10}, 'bottom_right': {'lon': -170, 'lat': -10}}}]}",
         "{'l': {'lon': 175, 'lat': 0}}", 1},
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 170, 'lat': 10}, 'bottom_right': {'lon': -170, 'lat': -10}}}]}",
         "{'l': {'lon': -175, 'lat': 0}}", 1},
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 170, 'lat': 10}, 'bottom_right': {'lon': -170, 'lat': -10}}}]}",
         "{'l': {'lon': 0, 'lat': 0}}", 0},
        /* radius: Paris-London is 343530 m (haversine, R = 6371008.8 m) */
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 2.3522, 'lat': 48.8566}, 'radius': 343600}}]}",
         "{'l': {'lon': -0.1276, 'lat': 51.5072}}", 1},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 2.3522, 'lat': 48.8566}, 'radius': 343500}}]}",
         "{'l': {'lon': -0.1276, 'lat': 51.5072}}", 0},
        {"{'must': [{'key': 'location', 'geo_radius': {'center': {'lon': 13.423637, 'lat': 52.511}, 'radius': 2000}}]}",
         "{'location': [{'lat': 52.52197645, 'lon': 13.413637435864272}, {'lat': 55.7536283, 'lon': 37.62137960067377}]}", 1},
        {"{'must': [{'key': 'location', 'geo_radius': {'center': {'lon': 20.423637, 'lat': 52.511}, 'radius': 2000}}]}",
         "{'location': [{'lat': 52.52197645, 'lon': 13.413637435864272}, {'lat': 55.7536283, 'lon': 37.62137960067377}]}", 0},
        /* across the antimeridian: 1 degree of longitude on the equator */
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 179.5, 'lat': 0}, 'radius': 111200}}]}",
         "{'l': {'lon': -179.5, 'lat': 0}}", 1},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 179.5, 'lat': 0}, 'radius': 111190}}]}",
         "{'l': {'lon': -179.5, 'lat': 0}}", 0},
        /* polygon */
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE "}}]}", "{'l': {'lon': 5, 'lat': 5}}", 1},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE "}}]}", "{'l': {'lon': 15, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE "}}]}", "{'l': {'lon': 0, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE "}}]}", "{'l': {'lon': 10, 'lat': 10}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE "}}]}", "{'l': {'lon': 9.999, 'lat': 0.001}}", 1},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE HOLE "}}]}", "{'l': {'lon': 5, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE HOLE "}}]}", "{'l': {'lon': 3, 'lat': 3}}", 1},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE HOLE "}}]}", "{'l': {'lon': 4, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE HOLE "}}]}", "{'l': [{'lon': 5, 'lat': 5}, {'lon': 8, 'lat': 8}]}", 1},
        /* a concave (L-shaped) polygon */
        {"{'must': [{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 10, 'lat': 0}, "
         "{'lon': 10, 'lat': 2}, {'lon': 2, 'lat': 2}, {'lon': 2, 'lat': 10}, {'lon': 0, 'lat': 10}, {'lon': 0, 'lat': 0}]}}}]}",
         "{'l': {'lon': 5, 'lat': 5}}", 0},
        {"{'must': [{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 10, 'lat': 0}, "
         "{'lon': 10, 'lat': 2}, {'lon': 2, 'lat': 2}, {'lon': 2, 'lat': 10}, {'lon': 0, 'lat': 10}, {'lon': 0, 'lat': 0}]}}}]}",
         "{'l': {'lon': 1, 'lat': 9}}", 1},
        {"{'must': [{'key': 'l', 'geo_polygon': " SQUARE ", 'interiors': null}}]}", "{'l': {'lon': 5, 'lat': 5}}", 1},
    };
    TABLE(t);
}

/* ===== values_count, is_empty, is_null ==================================== */

TEST(values_count)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'r', 'values_count': {'gte': 10}}]}", "{'r': [3, 7, 9, 9]}", 0},
        {"{'must': [{'key': 'r', 'values_count': {'lt': 5}}]}", "{'r': [3, 7, 9, 9]}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gt': 3}}]}", "{'r': [3, 7, 9, 9]}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'lte': 3}}]}", "{'r': [3, 7, 9, 9]}", 0},
        {"{'must': [{'key': 'r', 'values_count': {'gte': 4, 'lte': 4}}]}", "{'r': [3, 7, 9, 9]}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gt': 1}}]}", "{'r': [{'c': 'DE'}, {'c': 'FR'}]}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gt': 2}}]}", "{'r': [{'c': 'DE'}, {'c': 'FR'}]}", 0},
        {"{'must': [{'key': 'r', 'values_count': {'lt': 2}}]}", "{'r': 'x'}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gt': 1}}]}", "{'r': 'x'}", 0},
        {"{'must': [{'key': 'r', 'values_count': {'gte': 1}}]}", "{'r': {'a': 1, 'b': 2}}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'lte': 0}}]}", "{'r': null}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'lte': 0}}]}", "{'r': []}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gte': 1}}]}", "{'r': []}", 0},
        /* a missing key has 0 values (Qdrant's documented semantics) */
        {"{'must': [{'key': 'r', 'values_count': {'lt': 1}}]}", "{}", 1},
        {"{'must': [{'key': 'r', 'values_count': {'gt': 0}}]}", "{}", 0},
        /* several values at the path: any of them */
        {"{'must': [{'key': 'a[].r', 'values_count': {'gte': 3}}]}", "{'a': [{'r': [1]}, {'r': [1, 2, 3]}]}", 1},
        {"{'must': [{'key': 'a[].r', 'values_count': {'gte': 4}}]}", "{'a': [{'r': [1]}, {'r': [1, 2, 3]}]}", 0},
        {"{'must': [{'key': 'r', 'values_count': {'lt': 3.0}}]}", "{'r': [1, 2]}", 1},
    };
    TABLE(t);
}

TEST(is_empty_is_null)
{
    static const mcase t[] = {
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{}", 1},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", NULL, 1},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': null}", 1},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': []}", 1},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': [null]}", 0},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': ''}", 0},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': {}}", 0},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': 0}", 0},
        {"{'must': [{'is_empty': {'key': 'a'}}]}", "{'a': false}", 0},
        {"{'must': [{'is_empty': {'key': 'a[].b'}}]}", "{'a': [{'c': 1}, {'b': null}, {'b': []}]}", 1},
        {"{'must': [{'is_empty': {'key': 'a[].b'}}]}", "{'a': [{'b': 1}, {'b': null}]}", 0},
        {"{'must': [{'is_empty': {'key': 'a.b'}}]}", "{'a': {'b': [1]}}", 0},
        {"{'must_not': [{'is_empty': {'key': 'a'}}]}", "{'a': [1]}", 1},
        {"{'must': [{'key': 'a', 'is_empty': true}]}", "{}", 1},
        {"{'must': [{'key': 'a', 'is_empty': true}]}", "{'a': [1]}", 0},
        {"{'must': [{'key': 'a', 'is_empty': false}]}", "{'a': [1]}", 1},
        {"{'must': [{'key': 'a', 'is_empty': false}]}", "{'a': []}", 0},
        {"{'must': [{'key': 'a', 'is_empty': false}]}", "{}", 0},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{'a': null}", 1},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{}", 0},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{'a': []}", 0},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{'a': [null]}", 0},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{'a': 1}", 0},
        {"{'must': [{'is_null': {'key': 'a'}}]}", "{'a': 'null'}", 0},
        {"{'must': [{'is_null': {'key': 'a[]'}}]}", "{'a': [1, null]}", 1},
        {"{'must': [{'is_null': {'key': 'a[].b'}}]}", "{'a': [{'b': 1}, {'b': null}]}", 1},
        {"{'must': [{'is_null': {'key': 'a[].b'}}]}", "{'a': [{'b': 1}, {'b': 2}]}", 0},
        {"{'must': [{'key': 'a', 'is_null': true}]}", "{'a': null}", 1},
        {"{'must': [{'key': 'a', 'is_null': false}]}", "{'a': null}", 0},
        {"{'must': [{'key': 'a', 'is_null': false}]}", "{'a': 3}", 1},
        {"{'must': [{'key': 'a', 'is_null': false}]}", "{}", 1},
    };
    TABLE(t);
}

/* ===== ids, vectors, slices =============================================== */

TEST(has_id_has_vector)
{
    ny_point_id n2 = {0, 2, {0}}, n4 = {0, 4, {0}}, big = {0, 18446744073709551615ULL, {0}}, u;
    REQUIRE(ny_point_id_parse("550e8400-e29b-41d4-a716-446655440000", &u) == NY_OK);
    const char *f = "{'must': [{'has_id': [1, 2, 3, '550e8400-e29b-41d4-a716-446655440000']}]}";
    CHECK(run(f, "{}", &n2) == 1);
    CHECK(run(f, "{}", &n4) == 0);
    CHECK(run(f, "{}", &u) == 1);
    CHECK(run(f, "{}", NULL) == 0);
    CHECK(run("{'must': [{'has_id': []}]}", "{}", &n2) == 0);
    CHECK(run("{'must_not': [{'has_id': [2]}]}", "{}", &n2) == 0);
    CHECK(run("{'must_not': [{'has_id': [2]}]}", "{}", &n4) == 1);
    CHECK(run("{'must': [{'has_id': ['550E8400E29B41D4A716446655440000']}]}", "{}", &u) == 1);
    CHECK(run("{'must': [{'has_id': [550]}]}", "{}", &u) == 0);
    CHECK(run("{'must': [{'has_id': [9223372036854775807]}]}", "{}", &big) == 0);
    /* many ids: binary search */
    char buf[8192] = "{'must': [{'has_id': [";
    for (int i = 0; i < 500; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%d", i ? "," : "", 997 * i % 1009);
    strcat(buf, "]}]}");
    int bad = 0;
    for (uint64_t x = 0; x < 1100; x++) {
        ny_point_id id = {0, x, {0}};
        int want = 0;
        for (int i = 0; i < 500; i++) want |= (uint64_t)(997 * i % 1009) == x;
        bad += run(buf, "{}", &id) != want;
    }
    CHECK(bad == 0);
    CHECK(run("{'must': [{'has_vector': ''}]}", "{}", &n2) == 1);
    CHECK(run("{'must': [{'has_vector': 'image'}]}", "{}", &n2) == 0);
    CHECK(run("{'must_not': [{'has_vector': ''}]}", "{}", &n2) == 0);
}

TEST(filter_ids_and_match_all)
{
    static const struct { const char *f; int found; size_t n; } t[] = {
        {"{}", 0, 0},
        {"{'must': [{'has_id': [3, 1, 2]}]}", 1, 3},
        {"{'must': {'has_id': [5]}}", 1, 1},
        {"{'must': [{'has_id': [3, 1, 2]}, {'must': [{'has_id': [9, 8]}]}]}", 1, 2},
        {"{'should': [{'has_id': [3, 1, 2]}]}", 0, 0},
        {"{'must_not': [{'has_id': [3, 1, 2]}]}", 0, 0},
        {"{'must': [{'should': [{'has_id': [1]}]}]}", 0, 0},
        {"{'must': [{'has_id': []}]}", 1, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *s = q(t[i].f);
        ny_fexpr *f = NULL;
        REQUIRE(ny_filter_compile(s, &f) == NY_OK);
        const ny_point_id *ids = (const ny_point_id *)1;
        size_t n = 99;
        int found = ny_filter_ids(f, &ids, &n);
        CHECKF(found == t[i].found && n == t[i].n, "case %zu: found %d n %zu", i, found, n);
        if (!found) CHECK(ids == NULL);
        for (size_t j = 1; j < n; j++) CHECK(ny_point_id_cmp(&ids[j - 1], &ids[j]) < 0);
        ny_filter_free(f);
        free(s);
    }
    static const struct { const char *f; int all; } m[] = {
        {"{}", 1}, {"null", 1}, {"{'must': null, 'should': null}", 1}, {"{'must': [], 'must_not': []}", 1},
        {"{'should': []}", 0}, {"{'must': [{}]}", 0},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        char *s = q(m[i].f);
        ny_fexpr *f = NULL;
        REQUIRE(ny_filter_compile(s, &f) == NY_OK);
        CHECKF(ny_filter_is_match_all(f) == m[i].all, "case %zu", i);
        ny_filter_free(f);
        free(s);
    }
    ny_fexpr *f = NULL;
    REQUIRE(ny_filter_compile(NULL, &f) == NY_OK);
    CHECK(ny_filter_is_match_all(f) && ny_filter_match(f, NULL, NULL) == 1);
    ny_filter_free(f);
    CHECK(ny_filter_is_match_all(NULL) && ny_filter_match(NULL, NULL, NULL) == 1);
}

TEST(siphash_vectors)
{
    /* Reference vectors of SipHash-2-4: key 00..0f, message 00..len-1. */
    static const struct { size_t len; uint64_t h; } v[] = {
        {0, 0x726fdb47dd0e0e31ULL}, {1, 0x74f839c593dc67fdULL}, {7, 0xab0200f58b01d137ULL},
        {8, 0x93f5f5799a932462ULL}, {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL},
    };
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++) msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CHECKF(ny_siphash24(key, msg, v[i].len) == v[i].h, "len %zu: %016llx", v[i].len,
               (unsigned long long)ny_siphash24(key, msg, v[i].len));
}

TEST(slice)
{
    /* For a fixed total, slices are disjoint and cover every id; nested
     * totals are contained (slice 0 of 4 within slice 0 of 2). */
    enum { T = 4, N = 4000 };
    ny_fexpr *f[T], *half;
    char buf[128];
    for (int s = 0; s < T; s++) {
        snprintf(buf, sizeof buf, "{\"must\": {\"slice\": {\"index\": %d, \"total\": %d}}}", s, T);
        REQUIRE(ny_filter_compile(buf, &f[s]) == NY_OK);
    }
    REQUIRE(ny_filter_compile("{\"must\": {\"slice\": {\"index\": 0, \"total\": 2}}}", &half) == NY_OK);
    int count[T] = {0}, bad = 0;
    unsigned long long seed = 5;
    for (int i = 0; i < N; i++) {
        ny_point_id id;
        memset(&id, 0, sizeof id);
        if (i % 2) {
            id.is_uuid = 1;
            for (int j = 0; j < 16; j++) id.uuid[j] = (unsigned char)(t_rand(&seed) >> 7);
        } else {
            id.num = (uint64_t)i;
        }
        int hits = 0, which = -1;
        for (int s = 0; s < T; s++)
            if (ny_filter_match(f[s], &id, NULL)) { hits++; which = s; }
        bad += hits != 1;
        if (which >= 0) count[which]++;
        if (which == 0 && !ny_filter_match(half, &id, NULL)) bad++;
        /* the definition: SipHash-2-4 with a zero key over the canonical bytes */
        static const uint8_t zero[16];
        uint8_t le[8];
        for (int b = 0; b < 8; b++) le[b] = (uint8_t)(id.num >> (8 * b));
        uint64_t h = id.is_uuid ? ny_siphash24(zero, id.uuid, 16) : ny_siphash24(zero, le, 8);
        bad += (int)(h % T) != which;
    }
    CHECK(bad == 0);
    for (int s = 0; s < T; s++) CHECKF(count[s] > N / T * 8 / 10 && count[s] < N / T * 12 / 10, "slice %d: %d", s, count[s]);
    CHECK(ny_filter_match(f[0], NULL, NULL) == 0);
    for (int s = 0; s < T; s++) ny_filter_free(f[s]);
    ny_filter_free(half);
}

/* ===== paths and nested =================================================== */

TEST(paths)
{
    static const mcase t[] = {
        {"{'must': [{'key': 'a.b', 'match': {'value': 1}}]}", "{'a': {'b': 1}}", 1},
        {"{'must': [{'key': 'a.b', 'match': {'value': 1}}]}", "{'a': {'b': [2, 1]}}", 1},
        {"{'must': [{'key': 'a.b', 'match': {'value': 1}}]}", "{'a': [{'b': 1}]}", 0},
        {"{'must': [{'key': 'a[].b', 'match': {'value': 1}}]}", "{'a': [{'b': 2}, {'b': 1}]}", 1},
        {"{'must': [{'key': 'a[].b', 'match': {'value': 1}}]}", "{'a': {'b': 1}}", 0},
        {"{'must': [{'key': 'a[1].b', 'match': {'value': 1}}]}", "{'a': [{'b': 2}, {'b': 1}]}", 1},
        {"{'must': [{'key': 'a[0].b', 'match': {'value': 1}}]}", "{'a': [{'b': 2}, {'b': 1}]}", 0},
        {"{'must': [{'key': 'a[5]', 'match': {'value': 1}}]}", "{'a': [1]}", 0},
        {"{'must': [{'key': 'a[0]', 'match': {'value': 1}}]}", "{'a': [1]}", 1},
        {"{'must': [{'key': 'a[0]', 'match': {'value': 1}}]}", "{'a': [[0, 1]]}", 1},
        {"{'must': [{'key': 'a[]', 'match': {'value': 1}}]}", "{'a': [[0, 1]]}", 1},
        {"{'must': [{'key': 'a[][]', 'match': {'value': 1}}]}", "{'a': [[0, 1]]}", 1},
        {"{'must': [{'key': 'a[].b[].c', 'match': {'value': 5}}]}", "{'a': [{'b': [{'c': 1}]}, {'b': [{'c': 3}, {'c': 5}]}]}", 1},
        {"{'must': [{'key': 'a[].b[].c', 'match': {'value': 4}}]}", "{'a': [{'b': [{'c': 1}]}, {'b': [{'c': 3}, {'c': 5}]}]}", 0},
        {"{'must': [{'key': '\\'a.b\\'', 'match': {'value': 1}}]}", "{'a.b': 1}", 1},
        {"{'must': [{'key': '\\'a.b\\'', 'match': {'value': 1}}]}", "{'a': {'b': 1}}", 0},
        {"{'must': [{'key': 'x.\\'y z\\'[0]', 'match': {'value': 1}}]}", "{'x': {'y z': [1]}}", 1},
        {"{'must': [{'key': 'città', 'match': {'value': 'Roma'}}]}", "{'città': 'Roma'}", 1},
        {"{'must': [{'key': 'a-b_c9', 'match': {'value': 1}}]}", "{'a-b_c9': 1}", 1},
        {"{'must': [{'key': 'a.b.c', 'match': {'value': 1}}]}", "{'a': {'b': 'c'}}", 0},
    };
    TABLE(t);
}

TEST(nested)
{
    static const mcase t[] = {
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must': [{'key': 'food', 'match': {'value': 'meat'}}, "
         "{'key': 'likes', 'match': {'value': true}}]}}}]}",
         "{'diet': [{'food': 'meat', 'likes': false}, {'food': 'meat', 'likes': true}]}", 1},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must': [{'key': 'food', 'match': {'value': 'meat'}}, "
         "{'key': 'likes', 'match': {'value': true}}]}}}]}",
         "{'diet': [{'food': 'meat', 'likes': false}, {'food': 'veg', 'likes': true}]}", 0},
        /* without nested, the two conditions may hold on different elements */
        {"{'must': [{'key': 'diet[].food', 'match': {'value': 'meat'}}, {'key': 'diet[].likes', 'match': {'value': true}}]}",
         "{'diet': [{'food': 'meat', 'likes': false}, {'food': 'veg', 'likes': true}]}", 1},
        {"{'must': [{'nested': {'key': 'diet[]', 'filter': {'must': [{'key': 'food', 'match': {'value': 'veg'}}]}}}]}",
         "{'diet': [{'food': 'meat'}, {'food': 'veg'}]}", 1},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must': [{'key': 'food', 'match': {'value': 'veg'}}]}}}]}",
         "{'diet': {'food': 'veg'}}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {}}}]}", "{'diet': [1, {'x': 1}]}", 1},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {}}}]}", "{'diet': [1, 2]}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {}}}]}", "{'diet': []}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {}}}]}", "{}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must_not': [{'key': 'likes', 'match': {'value': true}}]}}}]}",
         "{'diet': [{'likes': true}, {'likes': true}]}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must_not': [{'key': 'likes', 'match': {'value': true}}]}}}]}",
         "{'diet': [{'likes': true}, {'likes': false}]}", 1},
        {"{'must': [{'nested': {'key': 'p.items', 'filter': {'must': [{'key': 'q', 'range': {'gt': 2}}]}}}]}",
         "{'p': {'items': [{'q': 1}, {'q': 3}]}}", 1},
        /* nested within nested */
        {"{'must': [{'nested': {'key': 'a', 'filter': {'must': [{'nested': {'key': 'b', 'filter': {'must': ["
         "{'key': 'x', 'match': {'value': 1}}, {'key': 'y', 'match': {'value': 2}}]}}}]}}}]}",
         "{'a': [{'b': [{'x': 1, 'y': 1}]}, {'b': [{'x': 2, 'y': 2}, {'x': 1, 'y': 2}]}]}", 1},
        {"{'must': [{'nested': {'key': 'a', 'filter': {'must': [{'nested': {'key': 'b', 'filter': {'must': ["
         "{'key': 'x', 'match': {'value': 1}}, {'key': 'y', 'match': {'value': 2}}]}}}]}}}]}",
         "{'a': [{'b': [{'x': 1, 'y': 1}]}, {'b': [{'x': 2, 'y': 2}, {'x': 1, 'y': 3}]}]}", 0},
        /* has_id and has_vector never match inside nested (as in Qdrant) */
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must': [{'has_id': [7]}]}}}]}", "{'diet': [{'a': 1}]}", 0},
        {"{'must': [{'nested': {'key': 'diet', 'filter': {'must': [{'has_vector': ''}]}}}]}", "{'diet': [{'a': 1}]}", 0},
        {"{'must': [{'has_id': [7]}]}", "{}", 1},
    };
    TABLE(t);
}

TEST(field_condition_combinations)
{
    /* Several conditions in one field condition: any of them (Qdrant ORs). */
    static const mcase t[] = {
        {"{'must': [{'key': 'a', 'match': {'value': 1}, 'range': {'gt': 10}}]}", "{'a': 1}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 1}, 'range': {'gt': 10}}]}", "{'a': 11}", 1},
        {"{'must': [{'key': 'a', 'match': {'value': 1}, 'range': {'gt': 10}}]}", "{'a': 5}", 0},
        {"{'must': [{'key': 'a', 'match': {'value': 1}, 'is_empty': true}]}", "{}", 1},
        {"{'must': [{'key': 'a', 'match': null, 'range': {'gt': 1}, 'geo_radius': null}]}", "{'a': 2}", 1},
    };
    TABLE(t);
}

/* ===== error messages ===================================================== */

TEST(errors)
{
    static const struct { const char *filter, *msg; } t[] = {
        {"{'must': [{'key': 'a', 'range': {'gt': 'x'}}]}", "filter.must[0].range.gt: invalid datetime 'x'"},
        {"{'must': [{'key': 'a', 'range': {'gt': true}}]}", "filter.must[0].range.gt: expected a number"},
        {"{'must': [{'key': 'a', 'range': {'gt': 1, 'lt': '2020-01-01'}}]}", "filter.must[0].range: bounds mix numbers"},
        {"{'must': [{'key': 'a', 'range': {'gtt': 1}}]}", "filter.must[0].range: unknown field 'gtt' in range"},
        {"{'must': [{'key': 'a', 'range': [1, 2]}]}", "filter.must[0].range: expected an object"},
        {"{'must': [{'key': 'a', 'match': {'value': 1.5}}]}", "filter.must[0].match.value: expected a string, an integer or a boolean, got a float"},
        {"{'must': [{'key': 'a', 'match': {'value': null}}]}", "filter.must[0].match: expected one of value"},
        {"{'must': [{'key': 'a', 'match': {'value': [1]}}]}", "filter.must[0].match.value: expected a string, an integer or a boolean, got an array"},
        {"{'must': [{'key': 'a', 'match': {'value': 1, 'any': [1]}}]}", "filter.must[0].match: expected exactly one of"},
        {"{'must': [{'key': 'a', 'match': {'valu': 1}}]}", "filter.must[0].match: unknown field 'valu' in match"},
        {"{'must': [{'key': 'a', 'match': {'any': ['x', 1]}}]}", "filter.must[0].match.any[1]: expected a string"},
        {"{'must': [{'key': 'a', 'match': {'any': [1.5]}}]}", "filter.must[0].match.any[0]: expected an integer"},
        {"{'must': [{'key': 'a', 'match': {'except': 'x'}}]}", "filter.must[0].match.except: expected an array"},
        {"{'must': [{'key': 'a', 'match': {'text': 5}}]}", "filter.must[0].match.text: expected a string"},
        {"{'must': [{'key': 'a'}]}", "filter.must[0]: a field condition needs one of"},
        {"{'must': [{'key': 5, 'match': {'value': 1}}]}", "filter.must[0].key: expected a string"},
        {"{'must': [{'key': 'a..b', 'match': {'value': 1}}]}", "filter.must[0].key: invalid path 'a..b'"},
        {"{'must': [{'key': '', 'match': {'value': 1}}]}", "filter.must[0].key: path is empty"},
        {"{'must': [{'key': 'a[x]', 'match': {'value': 1}}]}", "filter.must[0].key: invalid path 'a[x]'"},
        {"{'must': [{'key': 'a b', 'match': {'value': 1}}]}", "filter.must[0].key: invalid path 'a b'"},
        {"{'must': [{'key': '\\'a', 'match': {'value': 1}}]}", "unterminated quoted key"},
        {"{'must': [{'key': 'a', 'match': {'value': 1}, 'mach': 1}]}", "filter.must[0]: unknown field 'mach' in field condition"},
        {"{'must': [{'foo': 1}]}", "filter.must[0]: unknown condition 'foo'"},
        {"{'must': [{'must': [], 'foo': 1}]}", "filter.must[0]: unknown condition 'foo'"},
        {"{'mus': []}", "filter: unknown field 'mus' in filter"},
        {"{'must': 5}", "filter.must: expected a condition object, got an integer"},
        {"{'should': [{'key': 'a', 'match': {'value': 1}}, 'x']}", "filter.should[1]: expected a condition object, got a string"},
        {"{'must_not': {'key': 'a', 'range': {'lt': 'nope'}}}", "filter.must_not.range.lt: invalid datetime"},
        {"[1]", "filter: expected a filter object, got an array"},
        {"{'must': [", "filter: invalid JSON"},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 0, 'lat': 100}, 'radius': 5}}]}",
         "filter.must[0].geo_radius.center: lat 100 is outside [-90, 90]"},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 200, 'lat': 0}, 'radius': 5}}]}",
         "filter.must[0].geo_radius.center: lon 200 is outside [-180, 180]"},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 0, 'lat': 0}}}]}", "filter.must[0].geo_radius.radius: expected a number"},
        {"{'must': [{'key': 'l', 'geo_radius': {'center': {'lon': 0}, 'radius': 1}}]}", "filter.must[0].geo_radius.center: 'lat' must be a number"},
        {"{'must': [{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 0, 'lat': 0}}}]}", "filter.must[0].geo_bounding_box.bottom_right: missing"},
        {"{'must': [{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 1, 'lat': 0}, {'lon': 0, 'lat': 0}]}}}]}",
         "filter.must[0].geo_polygon.exterior.points: a polygon ring needs at least 4 points"},
        {"{'must': [{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 1, 'lat': 0}, {'lon': 1, 'lat': 1}, {'lon': 0, 'lat': 1}]}}}]}",
         "filter.must[0].geo_polygon.exterior.points: the first and the last points must be the same"},
        {"{'must': [{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 1, 'lat': 0}, {'lon': 1, 'lat': 1}, {'lon': 0, 'lat': 0}]}, "
         "'interiors': [{'points': [{'lon': 0, 'lat': 0}, {'lon': 1, 'lat': 0}, {'lon': 1, 'lat': 1}, {'lon': 0, 'lat': 'x'}]}]}}]}",
         "filter.must[0].geo_polygon.interiors[0].points[3]: 'lat' must be a number"},
        {"{'must': [{'key': 'a', 'values_count': {'lt': -1}}]}", "filter.must[0].values_count.lt: expected a non-negative integer"},
        {"{'must': [{'key': 'a', 'values_count': {'lt': 1.5}}]}", "filter.must[0].values_count.lt: expected a non-negative integer"},
        {"{'must': [{'key': 'a', 'is_empty': 'yes'}]}", "filter.must[0].is_empty: expected a boolean"},
        {"{'must': [{'has_id': [1, 'abc']}]}", "filter.must[0].has_id[1]: invalid point id 'abc'"},
        {"{'must': [{'has_id': [1, '42']}]}", "filter.must[0].has_id[1]: invalid point id '42'"},
        {"{'must': [{'has_id': [-1]}]}", "filter.must[0].has_id[0]: expected an unsigned integer or a UUID string"},
        {"{'must': [{'has_id': 5}]}", "filter.must[0].has_id: expected an array of point ids"},
        {"{'must': [{'has_vector': 5}]}", "filter.must[0].has_vector: expected a vector name"},
        {"{'must': [{'is_empty': 'a'}]}", "filter.must[0].is_empty: expected {\"key\""},
        {"{'must': [{'is_null': {'key': 'a', 'x': 1}}]}", "filter.must[0].is_null: unknown field 'x' in is_null"},
        {"{'must': [{'is_empty': {'key': 'a'}, 'x': 1}]}", "filter.must[0]: unexpected field 'x' next to 'is_empty'"},
        {"{'must': [{'nested': {'key': 'a'}}]}", "filter.must[0].nested.filter: missing (required)"},
        {"{'must': [{'nested': {'filter': {}}}]}", "filter.must[0].nested.key: missing (required)"},
        {"{'must': [{'is_empty': {}}]}", "filter.must[0].is_empty.key: expected a string (payload key), got nothing"},
        {"{'must': [{'nested': {'key': 'a', 'filter': {'must': [{'key': 'b', 'range': {'gt': []}}]}}}]}",
         "filter.must[0].nested.filter.must[0].range.gt: expected a number"},
        {"{'min_should': {'conditions': [], 'min_count': 0}}", "filter.min_should.min_count: must be at least 1"},
        {"{'min_should': {'conditions': {}, 'min_count': 1}}", "filter.min_should.conditions: expected an array"},
        {"{'min_should': {'min_count': 1}}", "filter.min_should.conditions: expected an array of conditions, got nothing"},
        {"{'min_should': {'conditions': [{'x': 1}], 'min_count': 1}}", "filter.min_should.conditions[0]: unknown condition 'x'"},
        {"{'must': [{'slice': {'index': 4, 'total': 4}}]}", "filter.must[0].slice.index: must be less than total (4)"},
        {"{'must': [{'slice': {'index': 0, 'total': 0}}]}", "filter.must[0].slice.total: must be at least 1"},
        {"{'must': [{'slice': {'index': 0}}]}", "filter.must[0].slice.total: missing (required)"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *f = q(t[i].filter);
        ny_fexpr *fx = (ny_fexpr *)1;
        int rc = ny_filter_compile(f, &fx);
        CHECKF(rc == NY_EINVAL && fx == NULL, "case %zu (%s): rc %d", i, f, rc);
        CHECKF(strstr(ny_errmsg(), t[i].msg) != NULL, "case %zu (%s):\n      got  %s\n      want %s", i, f,
               ny_errmsg(), t[i].msg);
        if (rc == NY_OK) ny_filter_free(fx);
        free(f);
    }
    /* Deep nesting is refused, not a stack overflow. */
    size_t depth = 500;
    char *deep = malloc(depth * 12 + 16), *p = deep;
    for (size_t i = 0; i < depth; i++) p += sprintf(p, "{\"must\": ");
    p += sprintf(p, "{}");
    for (size_t i = 0; i < depth; i++) *p++ = '}';
    *p = '\0';
    ny_fexpr *fx = NULL;
    CHECK_RC(ny_filter_compile(deep, &fx), NY_EINVAL);
    CHECKF(strstr(ny_errmsg(), "nested more than") != NULL, "%s", ny_errmsg());
    free(deep);
    CHECK_RC(ny_filter_compile("{}", NULL), NY_EINVAL);
}

/* ===== ny_path_check / ny_path_foreach ==================================== */

static int collect(const json_t *v, void *ctx)
{
    json_array_append((json_t *)ctx, (json_t *)v);
    return 0;
}

static int stop_at_2(const json_t *v, void *ctx)
{
    (*(int *)ctx)++;
    return json_is_integer(v) && json_integer_value(v) == 2 ? 42 : 0;
}

TEST(path_api)
{
    static const char *good[] = {"a", "a.b", "a[]", "a[0]", "a[12].b[].c", "\"a.b\"", "a.\"\"", "x-y_z", "a[0][1]", "é.ü"};
    static const char *bad[] = {"", ".a", "a.", "a..b", "[0]", "a[", "a[]]", "a[-1]", "a b", "a[0", "\"a", "a.\"b\\\"c\"", "a$"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) CHECKF(ny_path_check(good[i]) == NY_OK, "%s: %s", good[i], ny_errmsg());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(ny_path_check(bad[i]) == NY_EINVAL, "'%s' accepted", bad[i]);
        CHECKF(strstr(ny_errmsg(), "path") != NULL, "%s", ny_errmsg());
    }
    CHECK(ny_path_check(NULL) == NY_EINVAL);

    static const struct { const char *payload, *path, *want; } t[] = {
        {"{'a': [1, 2]}", "a", "[1, 2]"},
        {"{'a': [[1], 2]}", "a", "[[1], 2]"},
        {"{'a': [[1], 2]}", "a[]", "[1, 2]"},
        {"{'a': 3}", "a", "[3]"},
        {"{'a': null}", "a", "[null]"},
        {"{'a': []}", "a", "[]"},
        {"{}", "a", "[]"},
        {"{'a': {'b': [{'c': 1}, {'c': [2, 3]}, {'d': 4}]}}", "a.b[].c", "[1, 2, 3]"},
        {"{'a': {'b': [{'c': 1}, {'c': [2, 3]}]}}", "a.b[1].c", "[2, 3]"},
        {"{'a': {'b': [{'c': 1}]}}", "a.b.c", "[]"},
        {"{'a': {'b': 1}}", "a", "[{'b': 1}]"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_t *p = js(t[i].payload), *got = json_array(), *want = js(t[i].want);
        CHECK_RC(ny_path_foreach(p, t[i].path, collect, got), 0);
        char *g = json_dumps(got, JSON_COMPACT);
        CHECKF(json_equal(got, want), "case %zu: %s at %s gave %s", i, t[i].payload, t[i].path, g);
        free(g);
        json_decref(p);
        json_decref(got);
        json_decref(want);
    }
    json_t *p = js("{'a': [1, 2, 3]}");
    int calls = 0;
    CHECK(ny_path_foreach(p, "a", stop_at_2, &calls) == 42 && calls == 2);
    CHECK(ny_path_foreach(p, "a..", stop_at_2, &calls) == NY_EINVAL);
    json_decref(p);
}

/* ===== with_payload selectors ============================================= */

TEST(payload_selector)
{
    static const char *P =
        "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}], 'e': 4}, 'f': 5, 'g': [1, 2], 'h': {'i': {'j': 6, 'k': 7}}}";
    static const struct { const char *sel, *want; } t[] = {
        {"true", "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}], 'e': 4}, 'f': 5, 'g': [1, 2], 'h': {'i': {'j': 6, 'k': 7}}}"},
        {"['f']", "{'f': 5}"},
        {"['f', 'g', 'zz']", "{'f': 5, 'g': [1, 2]}"},
        {"[]", "{}"},
        {"{'include': ['a.e', 'h.i.j']}", "{'a': {'e': 4}, 'h': {'i': {'j': 6}}}"},
        {"{'include': ['a.b[].c']}", "{'a': {'b': [{'c': 1}, {'c': 3}]}}"},
        {"{'include': ['a.b.c']}", "{'a': {'b': []}}"},
        {"{'include': ['a.b']}", "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}]}}"},
        {"{'exclude': ['a']}", "{'f': 5, 'g': [1, 2], 'h': {'i': {'j': 6, 'k': 7}}}"},
        {"{'exclude': ['a.b[].c', 'h.i.k', 'f']}", "{'a': {'b': [{'d': 2}, {}], 'e': 4}, 'g': [1, 2], 'h': {'i': {'j': 6}}}"},
        {"{'exclude': ['a.b.c']}", "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}], 'e': 4}, 'f': 5, 'g': [1, 2], 'h': {'i': {'j': 6, 'k': 7}}}"},
        {"{'exclude': ['g[]']}", "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}], 'e': 4}, 'f': 5, 'g': [], 'h': {'i': {'j': 6, 'k': 7}}}"},
        {"{'exclude': []}", "{'a': {'b': [{'c': 1, 'd': 2}, {'c': 3}], 'e': 4}, 'f': 5, 'g': [1, 2], 'h': {'i': {'j': 6, 'k': 7}}}"},
    };
    json_t *payload = js(P);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_t *sel = js(t[i].sel), *want = js(t[i].want);
        CHECK_RC(ny_payload_selector_check(sel), NY_OK);
        json_t *got = ny_payload_select(payload, sel);
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        CHECKF(got && json_equal(got, want), "case %zu (%s): got %s", i, t[i].sel, g ? g : "NULL");
        free(g);
        json_decref(got);
        json_decref(sel);
        json_decref(want);
    }
    /* the source is untouched */
    json_t *orig = js(P);
    CHECK(json_equal(orig, payload));
    json_decref(orig);

    json_t *f = json_false();
    CHECK(ny_payload_select(payload, f) == NULL);
    CHECK(ny_payload_select(payload, NULL) == NULL);
    json_t *tr = json_true(), *e = ny_payload_select(NULL, tr);
    CHECK(json_is_object(e) && json_object_size(e) == 0);
    json_decref(e);

    static const struct { const char *sel, *msg; } bad[] = {
        {"5", "with_payload: expected true, false"},
        {"'a'", "with_payload: expected true, false"},
        {"[1]", "with_payload[0]: expected a string"},
        {"['a..b']", "with_payload[0]: invalid path"},
        {"{'include': 'a'}", "with_payload.include: expected an array"},
        {"{'exclude': ['a', '']}", "with_payload.exclude[1]: path is empty"},
        {"{'include': ['a'], 'exclude': ['b']}", "with_payload: expected {\"include\""},
        {"{'fields': ['a']}", "with_payload: expected {\"include\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *sel = js(bad[i].sel);
        CHECKF(ny_payload_selector_check(sel) == NY_EINVAL, "case %zu accepted", i);
        CHECKF(strstr(ny_errmsg(), bad[i].msg) != NULL, "case %zu: %s", i, ny_errmsg());
        CHECK(ny_payload_select(payload, sel) == NULL);
        json_decref(sel);
    }
    json_decref(payload);
}

/* ===== payload writes ===================================================== */

TEST(payload_set)
{
#define BASE "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': 3, 'g': ['g0', 'g1']}"
    static const struct { const char *payload, *path, *src, *want; } t[] = {
        {BASE, NULL, "{'c': 5}", "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': 3, 'g': ['g0', 'g1'], 'c': 5}"},
        {BASE, "", "{'f': null}", "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': null, 'g': ['g0', 'g1']}"},
        {BASE, "a", "{'b': 5}", "{'a': {'b': 5}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "a.b[1]", "{'c': 5}", "{'a': {'b': [{'c': 1}, {'c': 5}, {'d': {'e': 3}}]}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "a.b[1]", "{}", "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "a.b[7]", "{'c': 5}", "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "a.b[]", "{'x': 0}", "{'a': {'b': [{'c': 1, 'x': 0}, {'c': 2, 'x': 0}, {'d': {'e': 3}, 'x': 0}]}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "a.b[].d", "{'x': 0}", "{'a': {'b': [{'c': 1, 'd': {'x': 0}}, {'c': 2, 'd': {'x': 0}}, {'d': {'e': 3, 'x': 0}}]}, 'f': 3, 'g': ['g0', 'g1']}"},
        {BASE, "g[0]", "{'x': 1}", "{'a': {'b': [{'c': 1}, {'c': 2}, {'d': {'e': 3}}]}, 'f': 3, 'g': [{'x': 1}, 'g1']}"},
        {"{}", "key1.key2", "{'c': 1}", "{'key1': {'key2': {'c': 1}}}"},
        {"{}", "key1.key2[3]", "{'c': 1}", "{'key1': {'key2': []}}"},
        {"{}", "key1.key2[].key3", "{'c': 1}", "{'key1': {'key2': []}}"},
        {"{'a': 10}", "a.b.c", "{'x': 1}", "{'a': {'b': {'c': {'x': 1}}}}"},
        {"{'a': {'x': {'deep': [1]}}}", "a", "{'x': {'new': 2}}", "{'a': {'x': {'new': 2}}}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_t *p = js(t[i].payload), *src = js(t[i].src), *want = js(t[i].want);
        CHECK_RC(ny_payload_set(p, t[i].path, src), NY_OK);
        char *g = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        CHECKF(json_equal(p, want), "case %zu (%s): got %s", i, t[i].path ? t[i].path : "NULL", g);
        free(g);
        /* values are copied, not shared */
        json_t *src2 = js(t[i].src);
        CHECK(json_equal(src, src2));
        json_decref(src2);
        json_decref(p);
        json_decref(src);
        json_decref(want);
    }
    /* the copied value is independent of the source */
    json_t *p = js("{}"), *src = js("{'o': {'k': 1}}");
    CHECK_RC(ny_payload_set(p, NULL, src), NY_OK);
    json_object_set_new(json_object_get(src, "o"), "k", json_integer(2));
    CHECK(json_integer_value(json_object_get(json_object_get(p, "o"), "k")) == 1);
    CHECK_RC(ny_payload_set(p, "a..b", src), NY_EINVAL);
    CHECKF(strstr(ny_errmsg(), "invalid path 'a..b'") != NULL, "%s", ny_errmsg());
    json_t *arr = js("[1]");
    CHECK_RC(ny_payload_set(p, NULL, arr), NY_EINVAL);
    CHECK_RC(ny_payload_set(arr, NULL, src), NY_EINVAL);
    json_decref(arr);
    json_decref(p);
    json_decref(src);
}

#undef BASE

TEST(payload_delete)
{
    static const char *DBASE = "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}";
    static const struct { const char *path; int n; const char *want; } t[] = {
        {"b.c", 1, "{'a': 1, 'b': {'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"b.e.i[0].j", 1, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"b.e.i[].k", 2, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1}, {'j': 3}]}}}"},
        {"b.e.i[]", 1, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': []}}}"},
        {"b.e.f[1]", 0, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"b.e", 1, "{'a': 1, 'b': {'c': 123}}"},
        {"a", 1, "{'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"zz", 0, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"a.b", 0, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
        {"b.e.i.j", 0, "{'a': 1, 'b': {'c': 123, 'e': {'f': [1, 2, 3], 'g': 7, 'i': [{'j': 1, 'k': 2}, {'j': 3, 'k': 4}]}}}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_t *p = js(DBASE), *want = js(t[i].want);
        int n = ny_payload_delete(p, t[i].path);
        char *g = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        CHECKF(n == t[i].n && json_equal(p, want), "case %zu (%s): n=%d got %s", i, t[i].path, n, g);
        free(g);
        json_decref(p);
        json_decref(want);
    }
    json_t *p = js("{}");
    CHECK_RC(ny_payload_delete(p, "a["), NY_EINVAL);
    CHECK_RC(ny_payload_delete(p, ""), NY_EINVAL);
    json_decref(p);
}

/* ===== helpers ============================================================ */

TEST(datetime_parse)
{
    static const struct { const char *s; long long sec; int nsec; } ok[] = {
        {"1970-01-01", 0, 0},
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2020-02-15T00:00:00Z", 1581724800, 0},
        {"2020-02-15 00:00:00", 1581724800, 0},
        {"2020-02-15 00:00", 1581724800, 0},
        {"2020-02-15T01:00:00+01:00", 1581724800, 0},
        {"2020-02-14T23:00:00-0100", 1581724800, 0},
        {"2020-02-15T05:30:00+05:30", 1581724800, 0},
        {"2020-02-15T00:00:00.123456789Z", 1581724800, 123456789},
        {"2020-02-15T00:00:00.1Z", 1581724800, 100000000},
        {"2020-02-15T00:00:00.123456789999Z", 1581724800, 123456789},
        {"0001-01-01T00:00:00Z", -62135596800LL, 0},
        {"9999-12-31T23:59:59Z", 253402300799LL, 0},
        {"1600-02-29", -11670998400LL, 0},
        {"1969-12-31T23:59:59Z", -1, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ny_dt t;
        int rc = ny_dt_parse(ok[i].s, strlen(ok[i].s), &t);
        CHECKF(rc == 0 && t.sec == ok[i].sec && t.nsec == ok[i].nsec, "%s -> rc %d, %lld.%09d", ok[i].s, rc,
               (long long)t.sec, (int)t.nsec);
    }
    static const char *bad[] = {"", "2020", "2020-1-01", "2020-13-01", "2020-00-10", "2020-02-30", "2019-02-29",
                                "1900-02-29", "2020-01-01T", "2020-01-01T24:00", "2020-01-01T10:60", "2020-01-01T10:00:61",
                                "2020-01-01T10:00:00.", "2020-01-01T10:00:00+2500", "2020-01-01T10:00:00 Z",
                                "2020-01-01X10:00", "2020-01-01T10:00:00Zjunk", "20200101", "+2020-01-01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ny_dt t;
        CHECKF(ny_dt_parse(bad[i], strlen(bad[i]), &t) == -1, "'%s' accepted", bad[i]);
    }
    /* Every day from 1900 to 2100 agrees with a day counter. */
    long long day = -25567; /* 1900-01-01 */
    int bad_days = 0;
    for (int y = 1900; y <= 2100; y++) {
        for (int m = 1; m <= 12; m++) {
            static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
            int nd = dm[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
            for (int d = 1; d <= nd; d++, day++) {
                char s[48];
                snprintf(s, sizeof s, "%04d-%02d-%02d", y, m, d);
                ny_dt t;
                if (ny_dt_parse(s, strlen(s), &t) != 0 || t.sec != day * 86400) bad_days++;
            }
        }
    }
    CHECK(bad_days == 0);
}

TEST(geo_distance)
{
    CHECK(fabs(ny_geo_distance(2.3522, 48.8566, -0.1276, 51.5072) - 343530.34) < 0.1);
    CHECK(fabs(ny_geo_distance(0, 0, 1, 0) - 111195.08) < 0.01);
    CHECK(ny_geo_distance(10, 20, 10, 20) == 0);
    CHECK(fabs(ny_geo_distance(0, 90, 0, -90) - M_PI * NY_EARTH_RADIUS_M) < 1e-3);
    CHECK(fabs(ny_geo_distance(0, 0, 180, 0) - M_PI * NY_EARTH_RADIUS_M) < 1e-3);
}

/* ===== randomised comparison with a naive evaluator ======================= */

/* Payload model: fields f0..f3, each missing, null, int, float, string,
 * bool, or an array of ints/strings. */
enum { V_MISSING, V_NULL, V_INT, V_REAL, V_STR, V_BOOL, V_ARR };
typedef struct { int kind; long long i; double r; int s; int b; int n; int elem_is_str[4]; long long ev[4]; } fval;
typedef struct { fval f[4]; } rpayload;

/* Condition model: a leaf (match value / any / range on field k) or a
 * clause node (must / should / must_not over children). */
enum { L_VAL_INT, L_VAL_STR, L_ANY_INT, L_ANY_STR, L_RANGE, L_EXC_INT, L_EXC_STR, L_IS_EMPTY, L_IS_NULL, L_VCOUNT,
       N_LEAVES, N_MUST = N_LEAVES, N_SHOULD, N_MUST_NOT, N_FILTER3, N_KINDS };
typedef struct rcond {
    int kind, field;
    long long v[3];
    int nv;
    int set; double lo, hi; /* range: bit0 gt lo, bit1 gte lo, bit2 lt hi, bit3 lte hi */
    struct rcond *kids[3];
    int nkids;
} rcond;

static rcond *gen_cond(unsigned long long *seed, int depth)
{
    rcond *c = calloc(1, sizeof *c);
    int r = (int)(t_rand(seed) % (depth > 0 ? N_KINDS : N_LEAVES));
    c->field = (int)(t_rand(seed) % 4);
    if (r < N_LEAVES) {
        c->kind = r;
        c->nv = c->kind == L_ANY_INT || c->kind == L_ANY_STR || c->kind == L_EXC_INT || c->kind == L_EXC_STR
                    ? (int)(t_rand(seed) % 4) : 1;
        for (int i = 0; i < c->nv; i++) c->v[i] = (long long)(t_rand(seed) % 6) - 1;
        if (c->kind == L_RANGE || c->kind == L_VCOUNT) {
            c->set = (int)(t_rand(seed) % 16);
            c->lo = (double)(t_rand(seed) % 12) / 2 - 1;
            c->hi = (double)(t_rand(seed) % 12) / 2 - 1;
        }
    } else {
        c->kind = r;
        c->nkids = (int)(t_rand(seed) % 4);
        if (c->kind == N_FILTER3) c->nkids = 3; /* must, should, must_not in one filter */
        for (int i = 0; i < c->nkids; i++) c->kids[i] = gen_cond(seed, depth - 1);
    }
    return c;
}

static void free_rcond(rcond *c)
{
    for (int i = 0; i < c->nkids; i++) free_rcond(c->kids[i]);
    free(c);
}

static void emit(rcond *c, char **p)
{
    int k = c->kind;
    if (k == L_VAL_INT) *p += sprintf(*p, "{\"key\": \"f%d\", \"match\": {\"value\": %lld}}", c->field, c->v[0]);
    else if (k == L_VAL_STR) *p += sprintf(*p, "{\"key\": \"f%d\", \"match\": {\"value\": \"s%lld\"}}", c->field, c->v[0]);
    else if (k == L_ANY_INT || k == L_ANY_STR || k == L_EXC_INT || k == L_EXC_STR) {
        int ints = k == L_ANY_INT || k == L_EXC_INT;
        *p += sprintf(*p, "{\"key\": \"f%d\", \"match\": {\"%s\": [", c->field,
                      k == L_ANY_INT || k == L_ANY_STR ? "any" : "except");
        for (int i = 0; i < c->nv; i++)
            *p += ints ? sprintf(*p, "%s%lld", i ? ", " : "", c->v[i]) : sprintf(*p, "%s\"s%lld\"", i ? ", " : "", c->v[i]);
        *p += sprintf(*p, "]}}");
    } else if (k == L_IS_EMPTY || k == L_IS_NULL) {
        *p += sprintf(*p, "{\"%s\": {\"key\": \"f%d\"}}", k == L_IS_EMPTY ? "is_empty" : "is_null", c->field);
    } else if (k == L_RANGE || k == L_VCOUNT) {
        *p += sprintf(*p, "{\"key\": \"f%d\", \"%s\": {", c->field, k == L_RANGE ? "range" : "values_count");
        if (k == L_VCOUNT) { /* counts are integers */
            c->lo = c->lo < 0 ? 0 : floor(c->lo);
            c->hi = c->hi < 0 ? 0 : floor(c->hi);
        }
        int first = 1;
        if (c->set & 1) { *p += sprintf(*p, "%s\"gt\": %g", first ? "" : ", ", c->lo); first = 0; }
        if (c->set & 2) { *p += sprintf(*p, "%s\"gte\": %g", first ? "" : ", ", c->lo); first = 0; }
        if (c->set & 4) { *p += sprintf(*p, "%s\"lt\": %g", first ? "" : ", ", c->hi); first = 0; }
        if (c->set & 8) { *p += sprintf(*p, "%s\"lte\": %g", first ? "" : ", ", c->hi); first = 0; }
        *p += sprintf(*p, "}}");
    } else if (k == N_FILTER3) {
        static const char *names[3] = {"must", "should", "must_not"};
        *p += sprintf(*p, "{");
        for (int i = 0; i < 3; i++) {
            *p += sprintf(*p, "%s\"%s\": ", i ? ", " : "", names[i]);
            emit(c->kids[i], p); /* a single condition, not an array */
        }
        *p += sprintf(*p, "}");
    } else {
        *p += sprintf(*p, "{\"%s\": [", k == N_MUST ? "must" : k == N_SHOULD ? "should" : "must_not");
        for (int i = 0; i < c->nkids; i++) {
            if (i) *p += sprintf(*p, ", ");
            emit(c->kids[i], p);
        }
        *p += sprintf(*p, "]}");
    }
}

/* Leaf against one scalar (kind, int value, real value, string index). */
static int naive_scalar(const rcond *c, int kind, long long iv, double rv, int sv)
{
    switch (c->kind) {
    case L_VAL_INT: return kind == V_INT && iv == c->v[0];
    case L_VAL_STR: return kind == V_STR && sv == c->v[0];
    case L_ANY_INT:
        for (int i = 0; i < c->nv; i++) if (kind == V_INT && iv == c->v[i]) return 1;
        return 0;
    case L_ANY_STR:
        for (int i = 0; i < c->nv; i++) if (kind == V_STR && sv == c->v[i]) return 1;
        return 0;
    case L_EXC_INT:
        if (kind == V_NULL) return 0;
        for (int i = 0; i < c->nv; i++) if (kind == V_INT && iv == c->v[i]) return 0;
        return 1;
    case L_EXC_STR:
        if (kind == V_NULL) return 0;
        for (int i = 0; i < c->nv; i++) if (kind == V_STR && sv == c->v[i]) return 0;
        return 1;
    default: {
        if (kind != V_INT && kind != V_REAL) return 0;
        double x = kind == V_INT ? (double)iv : rv;
        return (!(c->set & 1) || x > c->lo) && (!(c->set & 2) || x >= c->lo) && (!(c->set & 4) || x < c->hi) &&
               (!(c->set & 8) || x <= c->hi);
    }
    }
}

static int naive(const rcond *c, const rpayload *p)
{
    if (c->kind == N_FILTER3) {
        return naive(c->kids[0], p) && naive(c->kids[1], p) && !naive(c->kids[2], p);
    }
    if (c->kind >= N_MUST) {
        int any = 0, all = 1;
        for (int i = 0; i < c->nkids; i++) {
            int m = naive(c->kids[i], p);
            any |= m;
            all &= m;
        }
        return c->kind == N_MUST ? all : c->kind == N_SHOULD ? any : !any;
    }
    const fval *f = &p->f[c->field];
    if (c->kind == L_IS_EMPTY) return f->kind == V_MISSING || f->kind == V_NULL || (f->kind == V_ARR && f->n == 0);
    if (c->kind == L_IS_NULL) return f->kind == V_NULL;
    if (c->kind == L_VCOUNT) {
        double x = f->kind == V_MISSING || f->kind == V_NULL ? 0 : f->kind == V_ARR ? f->n : 1;
        return (!(c->set & 1) || x > c->lo) && (!(c->set & 2) || x >= c->lo) && (!(c->set & 4) || x < c->hi) &&
               (!(c->set & 8) || x <= c->hi);
    }
    if (f->kind == V_MISSING) return 0;
    if (f->kind == V_ARR) {
        for (int i = 0; i < f->n; i++)
            if (naive_scalar(c, f->elem_is_str[i] ? V_STR : V_INT, f->ev[i], 0, (int)f->ev[i])) return 1;
        return 0;
    }
    return naive_scalar(c, f->kind, f->i, f->r, f->s);
}

static json_t *payload_json(const rpayload *p)
{
    json_t *o = json_object();
    for (int k = 0; k < 4; k++) {
        const fval *f = &p->f[k];
        char name[16];
        snprintf(name, sizeof name, "f%d", k);
        char s[16];
        switch (f->kind) {
        case V_MISSING: break;
        case V_NULL: json_object_set_new(o, name, json_null()); break;
        case V_INT: json_object_set_new(o, name, json_integer(f->i)); break;
        case V_REAL: json_object_set_new(o, name, json_real(f->r)); break;
        case V_STR: snprintf(s, sizeof s, "s%d", f->s); json_object_set_new(o, name, json_string(s)); break;
        case V_BOOL: json_object_set_new(o, name, json_boolean(f->b)); break;
        default: {
            json_t *a = json_array();
            for (int i = 0; i < f->n; i++) {
                snprintf(s, sizeof s, "s%lld", f->ev[i]);
                json_array_append_new(a, f->elem_is_str[i] ? json_string(s) : json_integer(f->ev[i]));
            }
            json_object_set_new(o, name, a);
        }
        }
    }
    return o;
}

TEST(random_vs_naive)
{
    unsigned long long seed = 20240601;
    size_t nfilters = t_n(400, 50), npayloads = 200;
    rpayload *ps = calloc(npayloads, sizeof *ps);
    json_t **pj = calloc(npayloads, sizeof *pj);
    for (size_t i = 0; i < npayloads; i++) {
        for (int k = 0; k < 4; k++) {
            fval *f = &ps[i].f[k];
            f->kind = (int)(t_rand(&seed) % 7);
            f->i = (long long)(t_rand(&seed) % 6) - 1;
            f->r = (double)(t_rand(&seed) % 14) / 2 - 1.5; /* includes integral floats like 2.0 */
            f->s = (int)(t_rand(&seed) % 6) - 1;
            f->b = (int)(t_rand(&seed) % 2);
            f->n = (int)(t_rand(&seed) % 4);
            for (int e = 0; e < f->n; e++) {
                f->elem_is_str[e] = (int)(t_rand(&seed) % 2);
                f->ev[e] = (long long)(t_rand(&seed) % 6) - 1;
            }
        }
        pj[i] = payload_json(&ps[i]);
    }
    char *buf = malloc(1 << 20);
    size_t mismatches = 0, matched = 0, total = 0;
    for (size_t fi = 0; fi < nfilters; fi++) {
        rcond *root = gen_cond(&seed, 3);
        /* the root is a filter: wrap a leaf in {"must": [...]} */
        rcond wrap = {.kind = N_MUST, .nkids = 1, .kids = {root}};
        rcond *top = root->kind >= N_MUST ? root : &wrap;
        char *p = buf;
        emit(top, &p);
        ny_fexpr *f = NULL;
        if (ny_filter_compile(buf, &f) != NY_OK) {
            CHECKF(0, "compile failed: %s\n      %s", ny_errmsg(), buf);
            free_rcond(root);
            continue;
        }
        for (size_t i = 0; i < npayloads; i++) {
            ny_point_id id = {0, i, {0}};
            int got = ny_filter_match(f, &id, pj[i]), want = naive(top, &ps[i]);
            total++;
            matched += (size_t)want;
            if (got != want && mismatches++ < 5) {
                char *pjs = json_dumps(pj[i], JSON_COMPACT);
                CHECKF(0, "filter %s\n      payload %s: got %d want %d", buf, pjs, got, want);
                free(pjs);
            }
        }
        ny_filter_free(f);
        free_rcond(root);
    }
    CHECKF(mismatches == 0, "%zu mismatches", mismatches);
    /* the generator must exercise both outcomes */
    CHECKF(matched > total / 20 && matched < total * 19 / 20, "matched %zu of %zu", matched, total);
    printf("    %zu evaluations, %zu matches\n", total, matched);
    for (size_t i = 0; i < npayloads; i++) json_decref(pj[i]);
    free(pj);
    free(ps);
    free(buf);
}

/* ===== throughput (reported, and checked against a reference count) ====== */

TEST(throughput)
{
    size_t n = t_n(100000, 20000);
    json_t **pl = malloc(n * sizeof *pl);
    unsigned long long seed = 3;
    size_t want = 0;
    static const char *cities[] = {"London", "Berlin", "Paris", "Moscow", "Rome"};
    for (size_t i = 0; i < n; i++) {
        int c = (int)(t_rand(&seed) % 5), price = (int)(t_rand(&seed) % 1000);
        int tag = (int)(t_rand(&seed) % 10);
        pl[i] = json_pack("{s:s, s:i, s:[i,i], s:{s:b}}", "city", cities[c], "price", price, "tags", tag, tag + 1,
                          "meta", "active", (int)(i % 3 != 0));
        want += (c == 0 || c == 2) && price >= 100 && price < 500 && !(tag == 3 || tag + 1 == 3) && i % 3 != 0;
    }
    ny_fexpr *f = NULL;
    REQUIRE(ny_filter_compile("{\"must\": [{\"key\": \"city\", \"match\": {\"any\": [\"London\", \"Paris\"]}}, "
                              "{\"key\": \"price\", \"range\": {\"gte\": 100, \"lt\": 500}}, "
                              "{\"key\": \"meta.active\", \"match\": {\"value\": true}}], "
                              "\"must_not\": [{\"key\": \"tags\", \"match\": {\"value\": 3}}]}", &f) == NY_OK);
    double t0 = ny_now();
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        ny_point_id id = {0, i, {0}};
        got += (size_t)ny_filter_match(f, &id, pl[i]);
    }
    double dt = ny_now() - t0;
    CHECKF(got == want, "got %zu want %zu", got, want);
    printf("    %zu payloads, 4 conditions: %.1f ns per point (%zu matched)\n", n, dt * 1e9 / (double)n, got);
    ny_filter_free(f);
    for (size_t i = 0; i < n; i++) json_decref(pl[i]);
    free(pl);
}

/* ===== robustness: structurally mutated filters ========================== */

/* Counts the nodes of a JSON tree. */
static size_t count_nodes(json_t *j)
{
    size_t n = 1;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) n += count_nodes(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) n += count_nodes(v);
    }
    return n;
}

static json_t *random_value(unsigned long long *seed)
{
    static const char *const pool[] = {
        "null", "1", "-1", "0", "1.5", "true", "'x'", "''", "'2020-01-01T00:00:00Z'", "[]", "{}", "[1, 'a']",
        "['a', 'b']", "[1, 2]", "{'key': 'a'}", "{'key': 'a', 'match': {'value': 1}}", "{'lon': 1, 'lat': 2}",
        "{'must': []}", "{'points': []}", "'a..b'", "'a[].b'", "[{'lon': 0, 'lat': 0}]", "1e308", "-1e308",
        "9223372036854775807", "{'has_id': [1]}", "{'nested': {'key': 'a', 'filter': {}}}",
    };
    return js(pool[t_rand(seed) % (sizeof pool / sizeof pool[0])]);
}

/* Replaces node number *k (pre-order) below j with v (stolen); returns 1 once done. */
static int replace_node(json_t *j, size_t *k, json_t *v)
{
    if (json_is_object(j)) {
        const char *key;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(j, tmp, key, x) {
            if ((*k)-- == 0) { json_object_set_new(j, key, v); return 1; }
            if (replace_node(x, k, v)) return 1;
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            if ((*k)-- == 0) { json_array_set_new(j, i, v); return 1; }
            if (replace_node(json_array_get(j, i), k, v)) return 1;
        }
    }
    return 0;
}

TEST(mutated_filters_never_crash)
{
    static const char *const corpus[] = {
        "{'must': [{'key': 'a', 'match': {'value': 'x'}}, {'key': 'n', 'range': {'gt': 1, 'lte': 5}}], "
        "'should': [{'key': 'b', 'match': {'any': [1, 2]}}, {'key': 'c', 'match': {'except': ['q']}}], "
        "'must_not': {'has_id': [1, '550e8400-e29b-41d4-a716-446655440000']}}",
        "{'must': [{'nested': {'key': 'items', 'filter': {'must': [{'key': 'q', 'range': {'gte': '2020-01-01'}}]}}}, "
        "{'is_empty': {'key': 'e'}}, {'is_null': {'key': 'z'}}], 'min_should': {'conditions': [{'has_vector': ''}, "
        "{'key': 't', 'match': {'text': 'ab'}}], 'min_count': 1}}",
        "{'should': [{'key': 'l', 'geo_radius': {'center': {'lon': 1, 'lat': 2}, 'radius': 1000}}, "
        "{'key': 'l', 'geo_bounding_box': {'top_left': {'lon': 0, 'lat': 10}, 'bottom_right': {'lon': 10, 'lat': 0}}}, "
        "{'key': 'l', 'geo_polygon': {'exterior': {'points': [{'lon': 0, 'lat': 0}, {'lon': 1, 'lat': 0}, "
        "{'lon': 1, 'lat': 1}, {'lon': 0, 'lat': 0}]}, 'interiors': []}}, {'key': 'v', 'values_count': {'gt': 1}}, "
        "{'slice': {'index': 1, 'total': 3}}, {'key': 'w', 'is_empty': false, 'match': {'text_any': 'a b'}}]}",
    };
    json_t *payloads[3] = {
        js("{'a': 'x', 'n': 3, 'b': [1, 5], 'c': 'q', 'items': [{'q': '2021-05-05'}], 'l': {'lon': 1, 'lat': 2}, "
           "'v': [1, 2], 't': 'zabz', 'w': 'a'}"),
        js("{'a': null, 'items': {'q': 1}, 'l': [{'lon': 0.5, 'lat': 0.1}], 'e': [], 'z': null}"),
        js("{}"),
    };
    unsigned long long seed = 77;
    size_t iters = t_n(6000, 1000), compiled = 0, rejected = 0;
    json_t *schema = js("{'t': 'text', 'w': {'type': 'text', 'tokenizer': 'prefix', 'min_token_len': 1}}");
    for (size_t it = 0; it < iters; it++) {
        json_t *f = js(corpus[it % 3]);
        int muts = 1 + (int)(t_rand(&seed) % 3);
        for (int m = 0; m < muts; m++) {
            size_t k = t_rand(&seed) % count_nodes(f);
            if (k == 0) continue; /* keep the root */
            k--;
            json_t *v = random_value(&seed);
            if (!replace_node(f, &k, v)) json_decref(v);
        }
        ny_fexpr *fx = NULL;
        int rc = ny_filter_compile_schema_json(f, it % 2 ? schema : NULL, &fx);
        if (rc == NY_OK) {
            compiled++;
            for (int p = 0; p < 3; p++) {
                ny_point_id id = {0, (uint64_t)p, {0}};
                int m = ny_filter_match(fx, &id, payloads[p]);
                CHECK(m == 0 || m == 1);
            }
            ny_filter_free(fx);
        } else {
            rejected++;
            CHECKF(rc == NY_EINVAL && fx == NULL && strncmp(ny_errmsg(), "filter", 6) == 0, "rc %d: %s", rc, ny_errmsg());
        }
        json_decref(f);
    }
    CHECK(compiled > 0 && rejected > 0);
    /* and the corpus filters against structurally mutated payloads */
    ny_fexpr *fx[3];
    for (int i = 0; i < 3; i++) {
        char *t = q(corpus[i]);
        REQUIRE(ny_filter_compile_schema(t, i == 1 ? schema : NULL, &fx[i]) == NY_OK);
        free(t);
    }
    size_t hits = 0;
    for (size_t it = 0; it < iters; it++) {
        json_t *p = json_deep_copy(payloads[it % 2]);
        int muts = 1 + (int)(t_rand(&seed) % 4);
        for (int m = 0; m < muts; m++) {
            size_t k = t_rand(&seed) % count_nodes(p);
            if (k == 0) continue;
            k--;
            json_t *v = random_value(&seed);
            if (!replace_node(p, &k, v)) json_decref(v);
        }
        for (int i = 0; i < 3; i++) {
            ny_point_id id = {0, it, {0}};
            int m = ny_filter_match(fx[i], &id, p);
            CHECK(m == 0 || m == 1);
            hits += (size_t)m;
        }
        json_decref(p);
    }
    CHECK(hits > 0);
    for (int i = 0; i < 3; i++) ny_filter_free(fx[i]);
    printf("    %zu mutated filters: %zu compiled, %zu rejected\n", iters, compiled, rejected);
    for (int p = 0; p < 3; p++) json_decref(payloads[p]);
    json_decref(schema);
}
