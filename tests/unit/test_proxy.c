/*
 * test_proxy.c - the PROXY protocol header parser: exact v1 and v2 vectors,
 * every vector cut short at every byte, and malformed headers refused at
 * the first byte that shows it.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "proxy.h"

/* Every strict prefix of a header of `hlen` bytes must ask for more, with
 * a lower bound that is neither already met nor beyond the header. */
static void check_prefixes(const void *buf, size_t hlen)
{
    struct proxy_result r;
    for (size_t k = 0; k < hlen; k++) {
        enum proxy_status st = proxy_parse(buf, k, &r);
        if (st != PROXY_NEED_MORE)
            fail_msg("prefix %zu of %zu: status %d (%s)", k, hlen, st,
                     r.error ? r.error : "");
        assert_true(r.need > k);
        assert_true(r.need <= hlen);
    }
}

/* Parse a whole vector (header + trailing data), expecting DONE with
 * `hlen` bytes consumed, and check every prefix of the header. */
static struct proxy_result done(const void *buf, size_t len, size_t hlen)
{
    struct proxy_result r;
    enum proxy_status st = proxy_parse(buf, len, &r);
    if (st != PROXY_DONE)
        fail_msg("status %d (%s)", st, r.error ? r.error : "");
    assert_int_equal(r.consumed, hlen);
    assert_null(r.error);
    check_prefixes(buf, hlen);
    /* Longer input changes nothing. */
    for (size_t k = hlen; k <= len; k++) {
        struct proxy_result r2;
        assert_int_equal(proxy_parse(buf, k, &r2), PROXY_DONE);
        assert_memory_equal(&r, &r2, sizeof(r));
    }
    return r;
}

/* Expect ERROR with `why`, first reported at prefix length `at`. */
static void error_at(const void *buf, size_t len, size_t at, const char *why)
{
    struct proxy_result r;
    for (size_t k = 0; k <= len; k++) {
        enum proxy_status st = proxy_parse(buf, k, &r);
        if (k < at) {
            if (st != PROXY_NEED_MORE)
                fail_msg("prefix %zu: status %d (%s), want more before %zu",
                         k, st, r.error ? r.error : "", at);
        } else {
            if (st != PROXY_ERROR)
                fail_msg("prefix %zu: status %d, want error from %zu", k, st,
                         at);
            assert_string_equal(r.error, why);
            assert_int_equal(r.consumed, 0);
        }
    }
}
#define ERROR_AT(lit, at, why) error_at(lit, sizeof(lit) - 1, at, why)

static void assert_in4(const struct sockaddr_storage *ss, const char *ip,
                       int port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    char buf[INET_ADDRSTRLEN];
    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_in6(const struct sockaddr_storage *ss, const char *ip,
                       int port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    char buf[INET6_ADDRSTRLEN];
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* --- version 1 -------------------------------------------------------- */

#define V1_TCP4 "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"

static void test_v1_tcp4(void **state)
{
    (void)state;
    static const char in[] = V1_TCP4 "GET / HTTP/1.1\r\n";
    struct proxy_result r = done(in, sizeof(in) - 1, sizeof(V1_TCP4) - 1);
    assert_int_equal(r.consumed, 47);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.command, PROXY_CMD_PROXY);
    assert_int_equal(r.keep_addr, 0);
    assert_int_equal(r.transport, SOCK_STREAM);
    assert_in4(&r.src, "192.168.0.1", 56324);
    assert_in4(&r.dst, "192.168.0.11", 443);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    static const char in[] = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\nx";
    struct proxy_result r = done(in, sizeof(in) - 1, sizeof(in) - 2);
    assert_in6(&r.src, "2001:db8::1", 65535);
    assert_in6(&r.dst, "::1", 0);
    /* The longest TCP6 line: 104 bytes. */
    static const char big[] =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65534\r\n";
    assert_int_equal(sizeof(big) - 1, 104);
    r = done(big, sizeof(big) - 1, 104);
    assert_in6(&r.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    assert_in6(&r.dst, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65534);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    static const char in[] = "PROXY UNKNOWN\r\nhello\n";
    struct proxy_result r = done(in, sizeof(in) - 1, 15);
    assert_int_equal(r.keep_addr, 1);
    assert_int_equal(r.command, PROXY_CMD_PROXY);
    assert_int_equal(r.src.ss_family, 0);
    /* The spec's worst case, 107 bytes: the rest of the line is ignored. */
    static const char worst[] =
        "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535 "
        "and some more padding up to the limit..........\r\n";
    assert_int_equal(sizeof(worst) - 1, PROXY_V1_MAX);
    r = done(worst, sizeof(worst) - 1, PROXY_V1_MAX);
    assert_int_equal(r.keep_addr, 1);
}

static void test_v1_malformed(void **state)
{
    (void)state;
    /* Not a PROXY header: refused at the first byte that differs. */
    ERROR_AT("GET / HTTP/1.1\r\n", 1, "not a PROXY header");
    ERROR_AT("PROXX TCP4", 5, "not a PROXY header");
    ERROR_AT("proxy TCP4", 1, "not a PROXY header");
    /* Bad protocol token: as soon as no protocol can match. */
    ERROR_AT("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10, "bad v1 header");
    ERROR_AT("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8, "bad v1 header");
    ERROR_AT("PROXY UNKNOWNX\r\n", 16, "bad v1 protocol");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nX", 31, "bad v1 header");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 32, "bad v1 line end");
    ERROR_AT("PROXY TCP4 1.2.3.4 x.6.7.8 1 2\r\n", 20, "bad v1 header");
    /* Fields, checked once the line is whole. */
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", 36, "bad v1 port");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n", 37, "bad v1 port");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", 31, "bad v1 port");
    ERROR_AT("PROXY TCP4 ::1 ::2 1 2\r\n", 24, "bad v1 address");
    ERROR_AT("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", 32, "bad v1 address");
    ERROR_AT("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 33, "too many v1 fields");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 30, "too few v1 fields");
    ERROR_AT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 33, "too many v1 fields");
    ERROR_AT("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", 34, "bad v1 address");
    ERROR_AT("PROXY \r\n", 8, "bad v1 protocol");
    ERROR_AT("PROXY UNKNOWN x\ny\r\n", 16, "bad v1 header");
}

static void test_v1_too_long(void **state)
{
    (void)state;
    char line[PROXY_V1_MAX + 8];
    memset(line, 'f', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    /* No CR within the limit: refused once the limit is reached. */
    error_at(line, sizeof(line), PROXY_V1_MAX, "v1 line too long");
    /* CR as byte 107 would make a 108-byte line. */
    line[PROXY_V1_MAX - 1] = '\r';
    line[PROXY_V1_MAX] = '\n';
    error_at(line, sizeof(line), PROXY_V1_MAX, "v1 line too long");
}

/* --- version 2 -------------------------------------------------------- */

#define SIG "\r\n\r\n\0\r\nQUIT\n"

static void test_v2_ipv4(void **state)
{
    (void)state;
    static const char in[] = SIG "\x21\x11\x00\x0c"
        "\x0a\x00\x00\x01" "\x7f\x00\x00\x02" "\x04\xd2" "\x1f\x49"
        "data";
    struct proxy_result r = done(in, sizeof(in) - 1, 28);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.command, PROXY_CMD_PROXY);
    assert_int_equal(r.keep_addr, 0);
    assert_int_equal(r.transport, SOCK_STREAM);
    assert_in4(&r.src, "10.0.0.1", 1234);
    assert_in4(&r.dst, "127.0.0.2", 8009);
    /* UDP over IPv4 says DGRAM. */
    static const char udp[] = SIG "\x21\x12\x00\x0c"
        "\x0a\x00\x00\x01" "\x7f\x00\x00\x02" "\x04\xd2" "\x1f\x49";
    r = done(udp, sizeof(udp) - 1, 28);
    assert_int_equal(r.transport, SOCK_DGRAM);
}

static void test_v2_ipv6(void **state)
{
    (void)state;
    static const char in[] = SIG "\x21\x21\x00\x24"
        "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
        "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
        "\xff\xff" "\x00\x50";
    struct proxy_result r = done(in, sizeof(in) - 1, 52);
    assert_in6(&r.src, "2001:db8::1", 65535);
    assert_in6(&r.dst, "::1", 80);
}

static void test_v2_unix(void **state)
{
    (void)state;
    char in[16 + 216];
    memcpy(in, SIG "\x21\x31\x00\xd8", 16);
    memset(in + 16, 0, 216);
    memcpy(in + 16 + 1, "client", 6);            /* abstract: "\0client" */
    memcpy(in + 16 + 108, "/run/stampd.sock", 16);
    struct proxy_result r = done(in, sizeof(in), sizeof(in));
    const struct sockaddr_un *s = (const struct sockaddr_un *)&r.src;
    const struct sockaddr_un *d = (const struct sockaddr_un *)&r.dst;
    assert_int_equal(s->sun_family, AF_UNIX);
    assert_memory_equal(s->sun_path, "\0client", 8);
    assert_string_equal(d->sun_path, "/run/stampd.sock");
}

static void test_v2_local(void **state)
{
    (void)state;
    /* HAProxy's health check: LOCAL, UNSPEC, no block. */
    static const char in[] = SIG "\x20\x00\x00\x00" "PING\n";
    struct proxy_result r = done(in, sizeof(in) - 1, 16);
    assert_int_equal(r.command, PROXY_CMD_LOCAL);
    assert_int_equal(r.keep_addr, 1);
    assert_int_equal(r.src.ss_family, 0);
    /* LOCAL with a block: skipped whole, its family ignored. */
    static const char blk[] = SIG "\x20\x11\x00\x0c" "0123456789ab" "x";
    r = done(blk, sizeof(blk) - 1, 28);
    assert_int_equal(r.command, PROXY_CMD_LOCAL);
    assert_int_equal(r.keep_addr, 1);
    static const char odd[] = SIG "\x20\x77\x00\x03" "abc";
    r = done(odd, sizeof(odd) - 1, 19);
    assert_int_equal(r.keep_addr, 1);
}

static void test_v2_unspec(void **state)
{
    (void)state;
    static const char in[] = SIG "\x21\x00\x00\x05" "\x04\x00\x02zz" "x";
    struct proxy_result r = done(in, sizeof(in) - 1, 21);
    assert_int_equal(r.command, PROXY_CMD_PROXY);
    assert_int_equal(r.keep_addr, 1);
    assert_int_equal(r.src.ss_family, 0);
}

static void test_v2_tlvs(void **state)
{
    (void)state;
    /* ALPN "h2", an empty NOOP, an AWS-style custom TLV (0xEA). */
    static const char in[] = SIG "\x21\x11\x00\x24"
        "\xc0\x00\x02\x01" "\xc0\x00\x02\x02" "\x30\x39" "\x01\xbb"
        "\x01\x00\x02" "h2"
        "\x04\x00\x00"
        "\xea\x00\x0d" "\x01" "vpce-0123456"
        "after";
    struct proxy_result r = done(in, sizeof(in) - 1, 16 + 12 + 5 + 3 + 16);
    assert_in4(&r.src, "192.0.2.1", 12345);
    assert_in4(&r.dst, "192.0.2.2", 443);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    ERROR_AT(SIG "\x11\x11\x00\x0c", 13, "bad v2 version");
    ERROR_AT(SIG "\x22\x11\x00\x0c", 13, "bad v2 command");
    ERROR_AT(SIG "\x21\x13\x00\x0c", 14, "bad v2 address family");
    ERROR_AT(SIG "\x21\x10\x00\x0c", 14, "bad v2 address family");
    ERROR_AT(SIG "\x21\x41\x00\x0c", 14, "bad v2 address family");
    ERROR_AT(SIG "\x21\x01\x00\x00", 14, "bad v2 address family");
    ERROR_AT(SIG "\x21\x11\x00\x0b" "0123456789a", 16,
             "v2 address block too short");
    ERROR_AT(SIG "\x21\x21\x00\x0c" "0123456789ab", 16,
             "v2 address block too short");
    ERROR_AT(SIG "\x21\x11\xff\xff", 16, "v2 header too long");
    /* A TLV whose length runs past the block, and a TLV head cut short. */
    ERROR_AT(SIG "\x21\x11\x00\x11" "0123456789ab" "\x01\x00\x05" "h2",
             33, "bad v2 TLV length");
    ERROR_AT(SIG "\x21\x11\x00\x0e" "0123456789ab" "\x01\x00", 30,
             "bad v2 TLV length");
    /* The signature differs at its 12th byte. */
    ERROR_AT("\r\n\r\n\0\r\nQUIX\n\x21\x11", 11, "not a PROXY header");
    ERROR_AT("\r\n\r\n\0\r\nQUIT\r\x21\x11", 12, "not a PROXY header");
}

static void test_v2_length_bound(void **state)
{
    (void)state;
    static char in[PROXY_MAX_LEN + 1];
    size_t blen = PROXY_MAX_LEN - 16;
    memcpy(in, SIG "\x21\x11", 14);
    in[14] = (char)(blen >> 8);
    in[15] = (char)(blen & 0xff);
    memset(in + 16, 0, 12);
    /* One TLV filling the rest exactly. */
    size_t vlen = blen - 12 - 3;
    in[28] = 0x04;
    in[29] = (char)(vlen >> 8);
    in[30] = (char)(vlen & 0xff);
    struct proxy_result r = done(in, PROXY_MAX_LEN, PROXY_MAX_LEN);
    assert_int_equal(r.src.ss_family, AF_INET);
    blen++;
    in[14] = (char)(blen >> 8);
    in[15] = (char)(blen & 0xff);
    error_at(in, PROXY_MAX_LEN + 1, 16, "v2 header too long");
}

/* --- --proxy-from ----------------------------------------------------- */

static struct sockaddr_storage peer(int family, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    void *dst = family == AF_INET
        ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
        : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    assert_int_equal(inet_pton(family, ip, dst), 1);
    return ss;
}

static void test_peer_allowed(void **state)
{
    (void)state;
    struct cidr from[2];
    char err[128];
    assert_int_equal(cidr_parse(&from[0], "127.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(cidr_parse(&from[1], "2001:db8::/32", err, sizeof(err)), 0);
    struct sockaddr_storage a = peer(AF_INET, "127.0.0.5");
    assert_int_equal(proxy_peer_allowed(from, 2, (struct sockaddr *)&a), 1);
    a = peer(AF_INET, "10.0.0.1");
    assert_int_equal(proxy_peer_allowed(from, 2, (struct sockaddr *)&a), 0);
    a = peer(AF_INET6, "2001:db8:1::7");
    assert_int_equal(proxy_peer_allowed(from, 2, (struct sockaddr *)&a), 1);
    a = peer(AF_INET6, "::ffff:127.0.0.1");
    assert_int_equal(proxy_peer_allowed(from, 2, (struct sockaddr *)&a), 1);
    a = peer(AF_INET6, "::1");
    assert_int_equal(proxy_peer_allowed(from, 2, (struct sockaddr *)&a), 0);
    /* No list: nobody over IP; a Unix-socket peer is local, always. */
    a = peer(AF_INET, "127.0.0.1");
    assert_int_equal(proxy_peer_allowed(from, 0, (struct sockaddr *)&a), 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    assert_int_equal(proxy_peer_allowed(from, 0, (struct sockaddr *)&un), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v1_too_long),
        cmocka_unit_test(test_v2_ipv4),
        cmocka_unit_test(test_v2_ipv6),
        cmocka_unit_test(test_v2_unix),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_unspec),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_v2_length_bound),
        cmocka_unit_test(test_peer_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
