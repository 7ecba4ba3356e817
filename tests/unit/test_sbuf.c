/*
 * test_sbuf.c - the text buffer (src/sbuf.c): growth, printf past its
 * 256-byte fast path, JSON string escaping, reset and the sticky failure.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "sbuf.h"

static void test_append_and_grow(void **state)
{
    (void)state;
    struct sbuf b = { 0 };
    char chunk[100];

    sbuf_puts(&b, "abc");
    assert_int_equal(b.len, 3);
    assert_string_equal(b.buf, "abc");
    assert_int_equal(b.cap, 256);
    sbuf_append(&b, "\0x", 2);          /* binary bytes are kept */
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.buf, "abc\0x", 6);

    /* Growing past 256 doubles and keeps every byte. */
    for (int i = 0; i < 100; i++)
        chunk[i] = (char)('A' + i % 26);
    for (int k = 0; k < 30; k++)
        sbuf_append(&b, chunk, sizeof(chunk));
    assert_int_equal(b.len, 3005);
    assert_int_equal(b.cap, 4096);
    for (int k = 0; k < 30; k++)
        assert_memory_equal(b.buf + 5 + 100 * k, chunk, 100);
    assert_int_equal(b.buf[b.len], '\0');
    assert_false(sbuf_failed(&b));

    /* Exactly filling the capacity (the NUL needs one more byte). */
    sbuf_reset(&b);
    char big[4096];
    memset(big, 'q', sizeof(big));
    sbuf_append(&b, big, 4095);
    assert_int_equal(b.cap, 4096);
    sbuf_append(&b, big, 1);
    assert_int_equal(b.cap, 8192);
    assert_int_equal(b.len, 4096);
    assert_int_equal(b.buf[4096], '\0');
    sbuf_free(&b);
    assert_null(b.buf);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_printf(void **state)
{
    (void)state;
    struct sbuf b = { 0 };
    char want[4000], word[1500];

    sbuf_printf(&b, "%s=%d;", "x", 42);
    assert_string_equal(b.buf, "x=42;");

    /* Longer than the 256-byte stack buffer: formatted in place. */
    memset(word, 'w', sizeof(word) - 1);
    word[sizeof(word) - 1] = '\0';
    sbuf_printf(&b, "[%s|%05d|%s]", word, 7, "end");
    snprintf(want, sizeof(want), "x=42;[%s|00007|end]", word);
    assert_string_equal(b.buf, want);
    assert_int_equal(b.len, strlen(want));

    /* The boundary: 255 bytes use the fast path, 256 the slow one. */
    for (int n = 250; n <= 260; n++) {
        sbuf_reset(&b);
        sbuf_puts(&b, "<");
        sbuf_printf(&b, "%0*d", n, 1);
        sbuf_puts(&b, ">");
        assert_int_equal(b.len, (size_t)n + 2);
        assert_int_equal(b.buf[0], '<');
        assert_int_equal(b.buf[n], '1');
        assert_int_equal(b.buf[n - 1], '0');
        assert_int_equal(b.buf[n + 1], '>');
        assert_int_equal(b.buf[n + 2], '\0');
    }

    /* A long printf into an empty, unallocated buffer. */
    struct sbuf c = { 0 };
    sbuf_printf(&c, "%s", word);
    assert_int_equal(c.len, sizeof(word) - 1);
    assert_string_equal(c.buf, word);
    assert_int_equal(c.cap, 2048);
    sbuf_free(&c);

    /* An empty result appends nothing. */
    size_t len = b.len;
    sbuf_printf(&b, "%s", "");
    assert_int_equal(b.len, len);
    sbuf_free(&b);
}

static void test_json(void **state)
{
    (void)state;
    struct sbuf b = { 0 };

    sbuf_json_str(&b, "plain text 123");
    assert_string_equal(b.buf, "plain text 123");
    sbuf_reset(&b);
    sbuf_json_str(&b, "q\"b\\s/");
    assert_string_equal(b.buf, "q\\\"b\\\\s/");
    sbuf_reset(&b);
    sbuf_json_str(&b, "\x01\n\r\t\x1f ~\x7f");
    assert_string_equal(b.buf, "\\u0001\\u000a\\u000d\\u0009\\u001f ~\x7f");
    sbuf_reset(&b);
    /* UTF-8 passes through as bytes. */
    sbuf_json_str(&b, "\xc3\xb6\xe2\x82\xac");
    assert_string_equal(b.buf, "\xc3\xb6\xe2\x82\xac");
    sbuf_reset(&b);
    sbuf_json_str(&b, "");
    assert_int_equal(b.len, 0);

    /* Every byte 1..255 once: only '"', '\\' and < 0x20 change. */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    sbuf_reset(&b);
    sbuf_json_str(&b, all);
    assert_int_equal(b.len, 31 * 6 + 2 * 2 + (255 - 31 - 2));
    sbuf_free(&b);
}

static void test_reset_and_failure(void **state)
{
    (void)state;
    struct sbuf b = { 0 };

    sbuf_reset(&b);                    /* on an unallocated buffer */
    assert_int_equal(b.len, 0);
    sbuf_puts(&b, "hello");
    char *mem = b.buf;
    size_t cap = b.cap;
    sbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.buf, mem);      /* memory kept for the next render */
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.buf, "");
    sbuf_puts(&b, "again");
    assert_string_equal(b.buf, "again");

    /* Once failed, appends do nothing until freed. */
    b.failed = 1;
    sbuf_puts(&b, "more");
    sbuf_printf(&b, "%d", 5);
    sbuf_printf(&b, "%0300d", 5);
    sbuf_json_str(&b, "x\"");
    assert_true(sbuf_failed(&b));
    assert_int_equal(b.len, 5);
    assert_string_equal(b.buf, "again");
    sbuf_free(&b);
    assert_false(sbuf_failed(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_reset_and_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
