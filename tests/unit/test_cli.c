/*
 * test_cli.c - stampcli's pure half (tools/cli.c): how replies are shown
 * on a terminal, the --http request and response head, the -n summary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

static void expect_escaped(const char *in, size_t n, const char *want)
{
    struct sbuf b = { 0 };
    cli_escape(&b, in, n);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.buf, want, b.len);
    sbuf_free(&b);
}

/* lit: a string literal, its bytes without the NUL. */
#define ESC(lit, want) expect_escaped(lit, sizeof(lit) - 1, want)

static void test_escape(void **state)
{
    (void)state;
    ESC("[x] plain text\n", "[x] plain text\n");
    /* ESC [ 2 J (clear screen) and a cursor move cannot act. */
    ESC("a\x1b[2Jb\n", "a\\x1b[2Jb\n");
    ESC("cr\rtab\tdel\x7f\n", "cr\\x0dtab\\x09del\\x7f\n");
    ESC("nul\0x\n", "nul\\x00x\n");
    /* No final LF: nothing added. */
    ESC("\x07", "\\x07");
    /* Only the last LF is the line break. */
    ESC("a\nb\n", "a\\x0ab\n");
    /* UTF-8 passes; C1 controls (U+009B, the 8-bit CSI), broken and
     * overlong sequences and surrogates are escaped byte by byte. */
    ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n");
    ESC("\xc2\x9b" "1m\n", "\\xc2\\x9b1m\n");
    ESC("\xc3(\n", "\\xc3(\n");
    ESC("\xe0\x80\xaf\n", "\\xe0\\x80\\xaf\n");
    ESC("\xed\xa0\x80\n", "\\xed\\xa0\\x80\n");
    ESC("\xff\xfe\n", "\\xff\\xfe\n");
    ESC("\xe2\x82", "\\xe2\\x82");       /* cut short */
}

static void test_http_request(void **state)
{
    (void)state;
    struct sbuf b = { 0 };
    cli_http_request(&b, "127.0.0.1:8080", "hi there", 8);
    static const char want[] =
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: stampcli\r\n"
        "Content-Type: text/plain\r\nContent-Length: 8\r\n\r\nhi there";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.buf, want, b.len);
    sbuf_free(&b);
}

static void test_http_head(void **state)
{
    (void)state;
    int status;
    size_t off;
    long long len;
    static const char ok[] = "HTTP/1.1 200 OK\r\nServer: stampd\r\n"
                             "content-length: 29\r\n\r\n[Thu Nov 26 10:00:00 2026] x\n";
    /* Every prefix short of the blank line asks for more. */
    size_t head = (size_t)(strstr(ok, "\r\n\r\n") - ok) + 4;
    for (size_t n = 0; n < head; n++)
        assert_int_equal(cli_http_head(ok, n, &status, &off, &len), 1);
    assert_int_equal(cli_http_head(ok, sizeof(ok) - 1, &status, &off, &len), 0);
    assert_int_equal(status, 200);
    assert_int_equal(off, head);
    assert_int_equal(len, 29);

    static const char nolen[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
    assert_int_equal(cli_http_head(nolen, sizeof(nolen) - 1, &status, &off, &len), 0);
    assert_int_equal(status, 400);
    assert_int_equal(len, -1);
    static const char bad1[] = "HTTP/2 200 OK\r\n\r\n";
    static const char bad2[] = "HTTP/1.1 2x0 OK\r\n\r\n";
    static const char bad3[] = "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n";
    static const char bad4[] = "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n";
    assert_int_equal(cli_http_head(bad1, sizeof(bad1) - 1, &status, &off, &len), -1);
    assert_int_equal(cli_http_head(bad2, sizeof(bad2) - 1, &status, &off, &len), -1);
    assert_int_equal(cli_http_head(bad3, sizeof(bad3) - 1, &status, &off, &len), -1);
    assert_int_equal(cli_http_head(bad4, sizeof(bad4) - 1, &status, &off, &len), -1);
}

static void test_rtt_summary(void **state)
{
    (void)state;
    double v[200];
    struct cli_rtt s;
    for (int i = 0; i < 200; i++)
        v[i] = (double)(200 - i);     /* 200 .. 1, unsorted */
    cli_rtt_summary(v, 200, &s);
    assert_true(s.min == 1 && s.max == 200);
    assert_true(s.avg == 100.5);
    assert_true(s.p99 == 198);        /* the 198th of 200 */
    double one[1] = { 42 };
    cli_rtt_summary(one, 1, &s);
    assert_true(s.min == 42 && s.max == 42 && s.avg == 42 && s.p99 == 42);
    double three[3] = { 5, 1, 3 };
    cli_rtt_summary(three, 3, &s);
    assert_true(s.p99 == 5 && s.avg == 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_http_head),
        cmocka_unit_test(test_rtt_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
