/*
 * test_inherit.c - the $STAMPD_INHERIT text a master hands to its
 * successor: formatting, parsing (round trip and malformed input) and the
 * matching of handed sockets to configured addresses.
 */
#include "unit.h"

#include <string.h>

#include "addr.h"
#include "inherit.h"

static void test_round_trip(void **state)
{
    (void)state;
    char buf[256] = "";
    int w[] = { 5, 6, 7 }, one[] = { 9 }, admin[] = { 11 };
    struct inherit_set s;
    char err[128];

    assert_int_equal(inherit_format(buf, sizeof(buf), INHERIT_LINE, 0, w, 3), 0);
    assert_int_equal(inherit_format(buf, sizeof(buf), INHERIT_HTTP, 1, one, 1), 0);
    assert_int_equal(inherit_format(buf, sizeof(buf), INHERIT_ADMIN, 0, admin, 1), 0);
    assert_string_equal(buf, "line=5,6,7;http*=9;admin=11");
    assert_int_equal(inherit_parse(&s, buf, err, sizeof(err)), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.e[0].kind, INHERIT_LINE);
    assert_int_equal(s.e[0].shared, 0);
    assert_int_equal(s.e[0].nfd, 3);
    assert_int_equal(s.e[0].fds[2], 7);
    assert_int_equal(s.e[1].kind, INHERIT_HTTP);
    assert_int_equal(s.e[1].shared, 1);
    assert_int_equal(s.e[2].kind, INHERIT_ADMIN);
    assert_int_equal(s.e[2].fds[0], 11);
    assert_int_equal(inherit_parse(&s, "", err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
}

static void test_format_overflow(void **state)
{
    (void)state;
    char buf[12] = "";
    int w[] = { 100, 101, 102 };
    assert_int_equal(inherit_format(buf, sizeof(buf), INHERIT_LINE, 0, w, 3), -1);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "tcp=5", "line", "line=", "line=x", "line=5,", "line=5;;", "line=-1",
        "line=5 ", "line*5", "udp=5;admin", "line=99999999999",
    };
    struct inherit_set s;
    char err[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(inherit_parse(&s, bad[i], err, sizeof(err)), -1);
        assert_non_null(strstr(err, "STAMPD_INHERIT"));
    }
}

static void set_addr(struct inherited *e, enum inherit_kind k, const char *text)
{
    char err[128];
    memset(e, 0, sizeof(*e));
    e->kind = k;
    e->nfd = 1;
    assert_int_equal(addr_parse(&e->addr, text, err, sizeof(err)), 0);
}

static void test_take(void **state)
{
    (void)state;
    struct inherit_set s;
    struct addr a;
    char err[128];

    memset(&s, 0, sizeof(s));
    set_addr(&s.e[0], INHERIT_LINE, "127.0.0.1:8009");
    set_addr(&s.e[1], INHERIT_LINE, "127.0.0.1:8011");
    set_addr(&s.e[2], INHERIT_ADMIN, "127.0.0.1:8010");
    set_addr(&s.e[3], INHERIT_HTTP, "[::1]:8080");
    set_addr(&s.e[4], INHERIT_LINE, "unix:/run/s.sock");
    s.n = 5;

    /* Kind matters: the admin address is not a line listener. */
    assert_int_equal(addr_parse(&a, "127.0.0.1:8010", err, sizeof(err)), 0);
    assert_null(inherit_take(&s, INHERIT_LINE, &a));
    assert_ptr_equal(inherit_take(&s, INHERIT_ADMIN, &a), &s.e[2]);
    assert_null(inherit_take(&s, INHERIT_ADMIN, &a));  /* taken once */
    /* Port 0 takes the first unclaimed socket of the host, in order. */
    assert_int_equal(addr_parse(&a, "127.0.0.1:0", err, sizeof(err)), 0);
    assert_ptr_equal(inherit_take(&s, INHERIT_LINE, &a), &s.e[0]);
    assert_ptr_equal(inherit_take(&s, INHERIT_LINE, &a), &s.e[1]);
    assert_null(inherit_take(&s, INHERIT_LINE, &a));
    /* Another host or port is another socket. */
    assert_int_equal(addr_parse(&a, "[::1]:8081", err, sizeof(err)), 0);
    assert_null(inherit_take(&s, INHERIT_HTTP, &a));
    assert_int_equal(addr_parse(&a, "[::1]:8080", err, sizeof(err)), 0);
    assert_ptr_equal(inherit_take(&s, INHERIT_HTTP, &a), &s.e[3]);
    assert_int_equal(addr_parse(&a, "unix:/run/other.sock", err, sizeof(err)), 0);
    assert_null(inherit_take(&s, INHERIT_LINE, &a));
    assert_int_equal(addr_parse(&a, "unix:/run/s.sock", err, sizeof(err)), 0);
    assert_ptr_equal(inherit_take(&s, INHERIT_LINE, &a), &s.e[4]);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_int_equal(inherit_kind_parse("udp", 3), INHERIT_UDP);
    assert_int_equal(inherit_kind_parse("admin", 5), INHERIT_ADMIN);
    assert_int_equal(inherit_kind_parse("adm", 3), -1);
    assert_string_equal(inherit_kind_name(INHERIT_HTTP), "http");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_format_overflow),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
