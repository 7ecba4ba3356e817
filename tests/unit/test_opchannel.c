/*
 * test_opchannel.c - the operator console's messages and text
 * (src/opchannel.c): packets round-trip and malformed ones are refused,
 * ids map to worker slots, the operator's lines parse, event lines read as
 * documented, and the chat channel's admission rules.
 */
#include <string.h>

#include "unit.h"
#include "opchannel.h"

static void roundtrip(const struct opmsg *m, struct opmsg *out, char *pkt,
                      size_t *n)
{
    *n = opmsg_encode(pkt, m);
    assert_true(*n <= OPMSG_MAX);
    assert_int_equal(opmsg_decode(pkt, *n, out), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    static char pkt[OPMSG_MAX], big[OPMSG_DATA_MAX + 100];
    struct opmsg m = { .type = OPM_LINE, .id = 77, .data = "hi\r\0x", .len = 5 };
    struct opmsg out;
    size_t n;

    strcpy(m.addr, "[::1]:5000");
    roundtrip(&m, &out, pkt, &n);
    assert_int_equal(out.type, OPM_LINE);
    assert_int_equal(out.id, 77);
    assert_string_equal(out.addr, "[::1]:5000");
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "hi\r\0x", 5);
    assert_int_equal(out.full_len, 5);

    /* A long line is cut for the console; its length is kept. */
    memset(big, 'a', sizeof(big));
    m.data = big;
    m.len = sizeof(big);
    roundtrip(&m, &out, pkt, &n);
    assert_int_equal(n, OPMSG_HEAD + strlen("[::1]:5000") + OPMSG_DATA_MAX + 4);
    /* The largest packet fits OPMSG_MAX. */
    memset(m.addr, 'x', sizeof(m.addr) - 1);
    m.addr[sizeof(m.addr) - 1] = '\0';
    roundtrip(&m, &out, pkt, &n);
    assert_int_equal(n, OPMSG_MAX - 1);
    assert_int_equal(out.len, OPMSG_DATA_MAX);
    assert_int_equal(out.full_len, sizeof(big));

    struct opmsg r = { .type = OPM_REPLY, .id = 3, .data = "ok", .len = 2 };
    roundtrip(&r, &out, pkt, &n);
    assert_int_equal(out.type, OPM_REPLY);
    assert_string_equal(out.addr, "");
    assert_memory_equal(out.data, "ok", 2);

    struct opmsg d = { .type = OPM_DETACH };
    roundtrip(&d, &out, pkt, &n);
    assert_int_equal(n, OPMSG_HEAD);
}

static void test_malformed(void **state)
{
    (void)state;
    char pkt[OPMSG_MAX];
    struct opmsg m = { .type = OPM_CONNECT, .id = 1 }, out;

    strcpy(m.addr, "127.0.0.1:1");
    size_t n = opmsg_encode(pkt, &m);
    for (size_t k = 0; k < n; k++)   /* every truncation */
        assert_int_equal(opmsg_decode(pkt, k, &out), -1);
    assert_int_equal(opmsg_decode(pkt, n + 1, &out), -1);
    pkt[0] = 0;                       /* unknown types */
    assert_int_equal(opmsg_decode(pkt, n, &out), -1);
    pkt[0] = OPM_NTYPES;
    assert_int_equal(opmsg_decode(pkt, n, &out), -1);
    pkt[0] = OPM_CONNECT;
    pkt[1] = OPMSG_ADDR_MAX;          /* an address that cannot fit */
    assert_int_equal(opmsg_decode(pkt, n, &out), -1);
    pkt[1] = (char)strlen(m.addr);
    assert_int_equal(opmsg_decode(pkt, n, &out), 0);
    pkt[OPMSG_HEAD + 3] = '\0';       /* a NUL inside the address */
    assert_int_equal(opmsg_decode(pkt, n, &out), -1);
}

static void test_ids(void **state)
{
    (void)state;
    /* Two workers: slot 0 has 1, 3, 5; slot 1 has 2, 4, 6. */
    assert_int_equal(opchan_id(0, 1, 2), 1);
    assert_int_equal(opchan_id(1, 1, 2), 2);
    assert_int_equal(opchan_id(0, 3, 2), 5);
    assert_int_equal(opchan_id(4, 9, 1 + 4), 45);
    for (unsigned w = 1; w < 9; w++)
        for (unsigned s = 0; s < w; s++)
            for (uint32_t n = 1; n < 50; n++)
                assert_int_equal(opchan_slot(opchan_id(s, n, w), w), s);
}

static void expect_parse(const char *line, int rc, uint32_t id, const char *text)
{
    uint32_t got = 0;
    const char *t = NULL;
    size_t tl = 0;

    assert_int_equal(opconsole_parse(line, strlen(line), &got, &t, &tl), rc);
    if (rc < 0)
        return;
    if (rc == 1)
        assert_int_equal(got, id);
    assert_int_equal(tl, strlen(text));
    assert_memory_equal(t, text, tl);
}

static void test_parse(void **state)
{
    (void)state;
    expect_parse("12 hello there", 1, 12, "hello there");
    expect_parse("#12 hello", 1, 12, "hello");
    expect_parse("12", 1, 12, "");
    expect_parse("12 ", 1, 12, "");
    expect_parse("7 x\r", 1, 7, "x");
    expect_parse("hello", 0, 0, "hello");
    expect_parse("12abc", 0, 0, "12abc");
    expect_parse("# 12", 0, 0, "# 12");
    expect_parse("0 zero", 0, 0, "0 zero");        /* no id 0 */
    expect_parse("99999999999 big", 0, 0, "99999999999 big");
    expect_parse(". 42 is the answer", 0, 0, "42 is the answer");
    expect_parse(".x", 0, 0, ".x");
    expect_parse("", -1, 0, "");
    expect_parse("\r", -1, 0, "");
}

static void expect_format(const struct opmsg *m, const char *want)
{
    struct sbuf b = { 0 };
    opconsole_format(&b, m);
    assert_int_equal(b.len, strlen(want));
    if (b.len)
        assert_memory_equal(b.buf, want, b.len);
    sbuf_free(&b);
}

static void test_format(void **state)
{
    (void)state;
    struct opmsg m = { .type = OPM_CONNECT, .id = 12 };

    strcpy(m.addr, "127.0.0.1:5555");
    expect_format(&m, "+ #12 connected from 127.0.0.1:5555\n");
    m.type = OPM_LINE;
    m.data = "hello";
    m.len = 5;
    m.full_len = 5;
    expect_format(&m, "[#12 127.0.0.1:5555] hello\n");
    m.full_len = 9000;
    expect_format(&m, "[#12 127.0.0.1:5555] hello ...(9000 bytes)\n");
    m.type = OPM_CLOSED;
    expect_format(&m, "- #12 closed\n");
    m.type = OPM_TIMEOUT;
    expect_format(&m, "! #12 timed out: sent \"ERR no operator\"\n");
    m.type = OPM_FULL;
    expect_format(&m, "! #12 queue full: sent \"ERR operator queue full\"\n");
    m.type = OPM_NOLINE;
    expect_format(&m, "? #12 has no waiting line\n");
    m.type = OPM_ATTACH;
    expect_format(&m, "");
}

static void test_admit(void **state)
{
    (void)state;
    struct addr lo4, lo6, any, ext, un;
    char err[128];
    const char *why = NULL;

    assert_int_equal(addr_parse(&lo4, "127.0.0.2:8010", err, sizeof(err)), 0);
    assert_int_equal(addr_parse(&lo6, "[::1]:8010", err, sizeof(err)), 0);
    assert_int_equal(addr_parse(&any, "0.0.0.0:8010", err, sizeof(err)), 0);
    assert_int_equal(addr_parse(&ext, "[2001:db8::1]:8010", err, sizeof(err)), 0);
    assert_int_equal(addr_parse(&un, "unix:/run/stampd-admin.sock", err, sizeof(err)), 0);

    assert_int_equal(opchan_admit(&lo4, "", NULL, &why), 0);
    assert_int_equal(opchan_admit(&lo6, "", NULL, &why), 0);
    assert_int_equal(opchan_admit(&un, "", NULL, &why), 0);
    assert_int_equal(opchan_admit(&any, "", NULL, &why), 403);
    assert_non_null(strstr(why, "unix or loopback"));
    assert_int_equal(opchan_admit(&ext, "", "Bearer x", &why), 403);
    /* A token, once set, is needed everywhere. */
    assert_int_equal(opchan_admit(&ext, "tok", "Bearer tok", &why), 0);
    assert_int_equal(opchan_admit(&any, "tok", "bearer tok", &why), 0);
    assert_int_equal(opchan_admit(&lo4, "tok", NULL, &why), 403);
    assert_int_equal(opchan_admit(&lo4, "tok", "Bearer to", &why), 403);
    assert_string_equal(why, "wrong admin token");
    assert_int_equal(opchan_admit(&lo4, "tok", "Bearer tokk", &why), 403);
    assert_int_equal(opchan_admit(&lo4, "tok", "Bearer ", &why), 403);
    assert_int_equal(opchan_admit(&lo4, "tok", "Basic tok", &why), 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_admit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
