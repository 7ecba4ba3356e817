/*
 * test_refusal.c - the bytes of a refusal (src/refusal.c): one error line
 * on line listeners, a whole Connection: close response on HTTP ones.
 */
#include <string.h>

#include "unit.h"
#include "refusal.h"

static const char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";

static void expect(enum refusal r, int http, const char *want)
{
    char buf[REFUSAL_MAX];
    size_t n = refusal_build(buf, r, http, date, sizeof(date) - 1);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
}

static void test_line(void **state)
{
    (void)state;
    expect(REFUSE_TOO_MANY, 0, "ERR too many connections\n");
    expect(REFUSE_BAD_PROXY, 0, "ERR bad proxy header\n");
}

static void test_http(void **state)
{
    (void)state;
    expect(REFUSE_TOO_MANY, 1,
           "HTTP/1.1 503 Service Unavailable\r\nServer: stampd\r\n"
           "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
           "Content-Type: text/plain\r\nContent-Length: 21\r\n"
           "Connection: close\r\n\r\ntoo many connections\n");
    expect(REFUSE_BAD_PROXY, 1,
           "HTTP/1.1 400 Bad Request\r\nServer: stampd\r\n"
           "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
           "Content-Type: text/plain\r\nContent-Length: 17\r\n"
           "Connection: close\r\n\r\nbad proxy header\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
