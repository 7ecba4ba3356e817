/*
 * test_reply.c - building one reply (src/reply.c): the three modes, the
 * terminator, upper mode touching only ASCII a-z, the mode names.
 */
#include <string.h>

#include "unit.h"
#include "clock.h"
#include "reply.h"

static const char prefix[] = "[Mon Sep  5 22:29:12 2016] ";

/* Build into a buffer with a guard area; check length, bytes and guard. */
static void expect_reply(enum reply_mode mode, const char *payload, size_t plen,
                         const char *term, size_t tlen, const char *want,
                         size_t wlen)
{
    char dst[512];
    char copy[256];

    assert_true(plen <= sizeof(copy));
    memcpy(copy, payload, plen);
    memset(dst, 0x5a, sizeof(dst));
    assert_int_equal(reply_size(mode, CLOCK_PREFIX_LEN, plen, tlen), wlen);
    assert_int_equal(reply_build(dst, mode, prefix, CLOCK_PREFIX_LEN, payload, plen,
                                 term, tlen), wlen);
    assert_memory_equal(dst, want, wlen);
    for (size_t i = wlen; i < sizeof(dst); i++)
        assert_int_equal((unsigned char)dst[i], 0x5a);   /* nothing past the end */
    assert_memory_equal(payload, copy, plen);            /* the request is not altered */
}

#define EXPECT(mode, payload, term, want) \
    expect_reply((mode), (payload), sizeof(payload) - 1, (term), sizeof(term) - 1, \
                 (want), sizeof(want) - 1)

static void test_modes(void **state)
{
    (void)state;
    assert_int_equal(sizeof(prefix) - 1, CLOCK_PREFIX_LEN);

    EXPECT(REPLY_STAMP, "hello python", "\n",
           "[Mon Sep  5 22:29:12 2016] hello python\n");
    EXPECT(REPLY_STAMP, "hello", "\r\n", "[Mon Sep  5 22:29:12 2016] hello\r\n");
    EXPECT(REPLY_STAMP, "", "\n", "[Mon Sep  5 22:29:12 2016] \n");
    EXPECT(REPLY_STAMP, "a\0b\r\xff", "\r\n",
           "[Mon Sep  5 22:29:12 2016] a\0b\r\xff\r\n");
    EXPECT(REPLY_ECHO, "Hello, World", "\n", "Hello, World\n");
    EXPECT(REPLY_ECHO, "x\0\xff", "\r\n", "x\0\xff\r\n");
    EXPECT(REPLY_ECHO, "", "\r\n", "\r\n");
    EXPECT(REPLY_UPPER, "hello, world az {`@[ 09", "\n",
           "HELLO, WORLD AZ {`@[ 09\n");
    /* Non-ASCII letters (UTF-8 ö, Latin-1 é) and control bytes stay. */
    EXPECT(REPLY_UPPER, "w\xc3\xb6rld \xe9t\xe9\r\0q", "\r\n",
           "W\xc3\xb6RLD \xe9T\xe9\r\0Q\r\n");
    EXPECT(REPLY_UPPER, "", "\n", "\n");
    /* No terminator at all (a UDP datagram without one). */
    EXPECT(REPLY_STAMP, "dgram", "", "[Mon Sep  5 22:29:12 2016] dgram");
    EXPECT(REPLY_ECHO, "dgram", "", "dgram");
}

static void test_upcase_every_byte(void **state)
{
    (void)state;
    char s[256], t[256];

    for (int i = 0; i < 256; i++)
        s[i] = (char)i;
    memcpy(t, s, sizeof(t));
    reply_upcase(t, sizeof(t));
    for (int i = 0; i < 256; i++) {
        int want = i >= 'a' && i <= 'z' ? i - 32 : i;
        if ((unsigned char)t[i] != want)
            fail_msg("byte 0x%02x became 0x%02x", i, (unsigned char)t[i]);
    }
    /* Length 0 touches nothing; the length is honoured exactly. */
    memcpy(t, "abc", 3);
    reply_upcase(t, 0);
    assert_memory_equal(t, "abc", 3);
    reply_upcase(t, 2);
    assert_memory_equal(t, "ABc", 3);

    /* reply_build in upper mode agrees with reply_upcase on every byte. */
    char dst[300];
    assert_int_equal(reply_build(dst, REPLY_UPPER, prefix, CLOCK_PREFIX_LEN, s, 256,
                                 "\n", 1), 257);
    memcpy(t, s, sizeof(t));
    reply_upcase(t, sizeof(t));
    assert_memory_equal(dst, t, 256);
    assert_int_equal(dst[256], '\n');
}

static void test_mode_names(void **state)
{
    (void)state;
    assert_int_equal(reply_mode_parse("stamp"), REPLY_STAMP);
    assert_int_equal(reply_mode_parse("echo"), REPLY_ECHO);
    assert_int_equal(reply_mode_parse("upper"), REPLY_UPPER);
    assert_int_equal(reply_mode_parse("Upper"), -1);
    assert_int_equal(reply_mode_parse("up"), -1);
    assert_int_equal(reply_mode_parse(""), -1);
    assert_int_equal(reply_mode_parse("stamp\n"), -1);
    assert_string_equal(reply_mode_name(REPLY_STAMP), "stamp");
    assert_string_equal(reply_mode_name(REPLY_ECHO), "echo");
    assert_string_equal(reply_mode_name(REPLY_UPPER), "upper");
    assert_int_equal(reply_mode_parse("ok"), REPLY_OK);
    assert_int_equal(reply_mode_parse("none"), REPLY_NONE);
    assert_string_equal(reply_mode_name(REPLY_OK), "ok");
    assert_string_equal(reply_mode_name(REPLY_NONE), "none");
    assert_string_equal(reply_mode_name((enum reply_mode)REPLY_NMODES), "?");
    assert_string_equal(reply_mode_name((enum reply_mode)-1), "?");
    for (int m = REPLY_STAMP; m < REPLY_NMODES; m++)
        assert_int_equal(reply_mode_parse(reply_mode_name((enum reply_mode)m)), m);
}

/* ok answers "OK" and the terminator whatever the payload; none answers
 * nothing, not even a terminator. */
static void test_ok_none(void **state)
{
    (void)state;
    char out[64];

    memset(out, 'Z', sizeof(out));
    assert_int_equal(reply_build(out, REPLY_OK, "[x] ", 4, "hello", 5, "\r\n", 2), 4);
    assert_memory_equal(out, "OK\r\n", 4);
    assert_int_equal(reply_build(out, REPLY_OK, "[x] ", 4, "", 0, "", 0), 2);
    assert_memory_equal(out, "OK", 2);
    memset(out, 'Z', sizeof(out));
    assert_int_equal(reply_build(out, REPLY_NONE, "[x] ", 4, "hello", 5, "\n", 1), 0);
    assert_int_equal(out[0], 'Z');
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(reply_size(REPLY_STAMP, 27, 0, 1), 28);
    assert_int_equal(reply_size(REPLY_STAMP, 27, 100, 2), 129);
    assert_int_equal(reply_size(REPLY_ECHO, 27, 100, 2), 102);
    assert_int_equal(reply_size(REPLY_UPPER, 27, 100, 1), 101);
    assert_int_equal(reply_size(REPLY_OK, 27, 100, 2), 4);
    assert_int_equal(reply_size(REPLY_NONE, 27, 100, 2), 0);
    assert_int_equal(reply_size(REPLY_ECHO, 27, 0, 0), 0);
    assert_int_equal(reply_size(REPLY_STAMP, 27, 65535, 1), 65563);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_upcase_every_byte),
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_ok_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
