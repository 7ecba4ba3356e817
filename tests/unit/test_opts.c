/*
 * test_opts.c - the command line (src/opts.c) and listen addresses
 * (src/addr.c): defaults, every bad value, exact messages, address forms,
 * size suffixes, listener collisions, --help/--version, repeated parsing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "unit.h"
#include "addr.h"
#include "opchannel.h"
#include "opts.h"

static char err[512];

/* Parse a NULL-terminated argument list (argv[0] is added). */
static enum opts_result parse_v(struct opts *o, int ncpus, const char *const *args)
{
    char *argv[64];
    int argc = 0;

    argv[argc++] = (char *)"stampd";
    for (; *args; args++) {
        assert_true(argc < 63);
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    memset(err, 'Z', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    return opts_parse(o, argc, argv, ncpus, err, sizeof(err));
}

#define PARSE(o, ...) parse_v((o), 4, (const char *const[]){ __VA_ARGS__, NULL })

/* An error: one line, naming the option. */
static void expect_error(const char *opt, const char *const *args)
{
    struct opts o;

    if (parse_v(&o, 4, args) != OPTS_ERROR)
        fail_msg("%s %s: accepted", args[0], args[1] ? args[1] : "");
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) > 0);
    if (strncmp(err, opt, strlen(opt)) != 0 || err[strlen(opt)] != ':')
        fail_msg("'%s' does not start with '%s:'", err, opt);
}

#define BAD(opt, ...) expect_error((opt), (const char *const[]){ __VA_ARGS__, NULL })

static void expect_message(const char *want, const char *const *args)
{
    struct opts o;

    assert_int_equal(parse_v(&o, 4, args), OPTS_ERROR);
    assert_string_equal(err, want);
}

#define MSG(want, ...) expect_message((want), (const char *const[]){ __VA_ARGS__, NULL })

/* --- defaults ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(parse_v(&o, 4, (const char *const[]){ NULL }), OPTS_OK);
    assert_string_equal(err, "");
    assert_int_equal(o.nlisten, 1);
    assert_string_equal(o.listen[0].text, "0.0.0.0:8009");
    assert_int_equal(o.listen[0].family, AF_INET);
    assert_int_equal(o.nudp, 0);
    assert_int_equal(o.nhttp, 0);
    assert_int_equal(o.admin_on, 1);
    assert_string_equal(o.admin.text, "127.0.0.1:8010");
    assert_int_equal(o.workers, 4);
    assert_int_equal(o.pin, 0);
    assert_int_equal(o.reply, REPLY_STAMP);
    assert_int_equal(o.time_format, TIME_CTIME);
    assert_int_equal(o.max_line, 65536);
    assert_int_equal(o.line_timeout, 30);
    assert_int_equal(o.max_conns, 10000);
    assert_int_equal(o.idle_timeout, 60);
    assert_int_equal(o.max_output, 1048576);
    assert_int_equal(o.shutdown_timeout, 10);
    assert_int_equal(o.log_level, LOG_INFO);

    /* The worker default follows the CPU count, within 1..256. */
    const char *const none[] = { NULL };
    assert_int_equal(parse_v(&o, 1, none), OPTS_OK);
    assert_int_equal(o.workers, 1);
    assert_int_equal(parse_v(&o, 0, none), OPTS_OK);
    assert_int_equal(o.workers, 1);
    assert_int_equal(parse_v(&o, -3, none), OPTS_OK);
    assert_int_equal(o.workers, 1);
    assert_int_equal(parse_v(&o, 1000, none), OPTS_OK);
    assert_int_equal(o.workers, OPTS_MAX_WORKERS);
}

static void test_every_option_set(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:1", "--udp", "127.0.0.1:2",
                           "--http", "[::1]:3", "--admin", "127.0.0.1:4",
                           "--workers", "7", "--pin", "--reply", "upper",
                           "--time-format", "iso8601", "--max-line", "1k",
                           "--line-timeout", "0", "--max-conns", "1000000",
                           "--idle-timeout", "86400", "--max-output", "1g",
                           "--shutdown-timeout", "3600", "--log-level", "debug"),
                     OPTS_OK);
    assert_int_equal(o.nlisten, 1);
    assert_string_equal(o.listen[0].text, "127.0.0.1:1");
    assert_int_equal(o.nudp, 1);
    assert_string_equal(o.udp[0].text, "127.0.0.1:2");
    assert_int_equal(o.nhttp, 1);
    assert_string_equal(o.http[0].text, "[::1]:3");
    assert_string_equal(o.admin.text, "127.0.0.1:4");
    assert_int_equal(o.workers, 7);
    assert_int_equal(o.pin, 1);
    assert_int_equal(o.reply, REPLY_UPPER);
    assert_int_equal(o.time_format, TIME_ISO8601);
    assert_int_equal(o.max_line, 1024);
    assert_int_equal(o.line_timeout, 0);
    assert_int_equal(o.max_conns, 1000000);
    assert_int_equal(o.idle_timeout, 86400);
    assert_int_equal(o.max_output, (size_t)1 << 30);
    assert_int_equal(o.shutdown_timeout, 3600);
    assert_int_equal(o.log_level, LOG_DEBUG);

    /* "--opt=value", unique prefixes, the other enum values. */
    assert_int_equal(PARSE(&o, "--reply=echo", "--time=ctime", "--log-level=error",
                           "--admin=off", "--workers=1", "--max-l", "64m"), OPTS_OK);
    assert_int_equal(o.reply, REPLY_ECHO);
    assert_int_equal(o.time_format, TIME_CTIME);
    assert_int_equal(o.log_level, LOG_ERROR);
    assert_int_equal(o.admin_on, 0);
    assert_int_equal(o.workers, 1);
    assert_int_equal(o.max_line, (size_t)64 << 20);
    assert_int_equal(PARSE(&o, "--reply", "stamp", "--log-level", "warn"), OPTS_OK);
    assert_int_equal(o.reply, REPLY_STAMP);
    assert_int_equal(o.log_level, LOG_WARN);
    /* The last value wins; --admin can come back after off. */
    assert_int_equal(PARSE(&o, "--workers", "2", "--workers", "3", "--admin", "off",
                           "--admin", "127.0.0.1:9"), OPTS_OK);
    assert_int_equal(o.workers, 3);
    assert_int_equal(o.admin_on, 1);
    assert_string_equal(o.admin.text, "127.0.0.1:9");
}

/* --- errors --------------------------------------------------------------- */

static void test_bad_values(void **state)
{
    (void)state;
    BAD("--workers", "--workers", "0");
    BAD("--workers", "--workers", "257");
    BAD("--workers", "--workers", "-1");
    BAD("--workers", "--workers", "+2");
    BAD("--workers", "--workers", "2x");
    BAD("--workers", "--workers", "");
    BAD("--workers", "--workers", " 2");
    BAD("--workers", "--workers", "99999999999999999999999");
    BAD("--workers", "--workers");
    BAD("--reply", "--reply", "STAMP");
    BAD("--reply", "--reply", "");
    BAD("--reply", "--reply");
    BAD("--time-format", "--time-format", "iso");
    BAD("--max-line", "--max-line", "0");
    BAD("--max-line", "--max-line", "67108865");
    BAD("--max-line", "--max-line", "65m");
    BAD("--max-line", "--max-line", "1t");
    BAD("--max-line", "--max-line", "k");
    BAD("--max-line", "--max-line", "1kb");
    BAD("--max-line", "--max-line", "-1");
    BAD("--max-line", "--max-line", "0x10");
    BAD("--line-timeout", "--line-timeout", "86401");
    BAD("--line-timeout", "--line-timeout", "-1");
    BAD("--line-timeout", "--line-timeout", "1.5");
    BAD("--max-conns", "--max-conns", "0");
    BAD("--max-conns", "--max-conns", "1000001");
    BAD("--idle-timeout", "--idle-timeout", "1m");
    BAD("--idle-timeout", "--idle-timeout", "86401");
    BAD("--max-output", "--max-output", "0");
    BAD("--max-output", "--max-output", "1025m");
    BAD("--max-output", "--max-output", "18446744073709551616");
    BAD("--shutdown-timeout", "--shutdown-timeout", "3601");
    BAD("--shutdown-timeout", "--shutdown-timeout", "x");
    BAD("--log-level", "--log-level", "verbose");
    BAD("--listen", "--listen", "nope");
    BAD("--listen", "--listen", "");
    BAD("--udp", "--udp", "1.2.3.4");
    BAD("--http", "--http", "[::1]");
    BAD("--admin", "--admin", "example.com:80");
    BAD("--admin", "--admin", "OFF");
    BAD("--pin", "--pin=1");
    BAD("--help", "--help=x");
    /* A control byte in the value must not break the single line. */
    BAD("--reply", "--reply", "a\nb");
    BAD("--listen", "--listen", "x\r\n:1");
}

static void test_exact_messages(void **state)
{
    (void)state;
    MSG("--workers: invalid value '0' (expected an integer from 1 to 256)",
        "--workers", "0");
    MSG("--max-conns: invalid value '1000001' (expected an integer from 1 to 1000000)",
        "--max-conns=1000001");
    MSG("--max-line: invalid value '0' (expected a size in bytes from 1 to 64m, "
        "k/m/g suffix allowed)", "--max-line", "0");
    MSG("--max-output: invalid value '2g' (expected a size in bytes from 1 to 1g, "
        "k/m/g suffix allowed)", "--max-output", "2g");
    MSG("--line-timeout: invalid value '86401' (expected seconds from 0 to 86400, "
        "0 = never)", "--line-timeout", "86401");
    MSG("--shutdown-timeout: invalid value '-5' (expected seconds from 0 to 3600)",
        "--shutdown-timeout", "-5");
    MSG("--reply: invalid value 'loud' (expected stamp, echo, upper, ok, none or "
        "operator)",
        "--reply", "loud");
    MSG("--time-format: invalid value 'unix' (expected ctime or iso8601)",
        "--time-format", "unix");
    MSG("--log-level: invalid value 'trace' (expected debug, info, warn or error)",
        "--log-level", "trace");
    MSG("--listen: invalid address 'example.com:80' (expected HOST:PORT, "
        "[HOST]:PORT or unix:PATH; host names other than localhost are not resolved)",
        "--listen", "example.com:80");
    MSG("--listen: invalid address '::1:8009' (an IPv6 address needs brackets, "
        "as in [::1]:8009)", "--listen", "::1:8009");
    MSG("--admin: invalid address 'x' (expected HOST:PORT, [HOST]:PORT or "
        "unix:PATH) (or 'off')", "--admin", "x");
    MSG("--workers: missing value", "--workers");
    MSG("--pin: takes no value", "--pin=yes");
    MSG("unknown option '--frobnicate' (try --help)", "--frobnicate");
    MSG("unknown option '--frobnicate' (try --help)", "--frobnicate=1");
    MSG("unknown option '-x' (try --help)", "-x");
    MSG("ambiguous option '--max' (could be --max-line --max-conns --max-output "
        "--max-buffered)",
        "--max", "1");
    MSG("ambiguous option '--li' (could be --listen --line-timeout)", "--li=1");
    MSG("unexpected argument 'foo' (stampd takes options only)", "foo");
    MSG("unexpected argument '--workers' (stampd takes options only)",
        "--", "--workers", "2");
    MSG("--reply: invalid value 'a?b' (expected stamp, echo, upper, ok, none or operator)",
        "--reply", "a\nb");

    /* A short buffer truncates, never overflows, and stays terminated. */
    struct opts o;
    char small[12];
    char *argv[] = { (char *)"stampd", (char *)"--workers", (char *)"0", NULL };
    memset(small, 'Z', sizeof(small));
    assert_int_equal(opts_parse(&o, 3, argv, 4, small, sizeof(small)), OPTS_ERROR);
    assert_string_equal(small, "--workers: ");
}

static void test_listen_repeat(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:9001"), OPTS_OK);
    assert_int_equal(o.nlisten, 1);   /* the default is replaced, not kept */
    assert_string_equal(o.listen[0].text, "127.0.0.1:9001");

    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:9001", "--listen", "[::]:9001",
                           "--listen", "unix:/tmp/s.sock", "--listen", "9002"),
                     OPTS_OK);
    assert_int_equal(o.nlisten, 4);
    assert_string_equal(o.listen[0].text, "127.0.0.1:9001");
    assert_string_equal(o.listen[1].text, "[::]:9001");
    assert_string_equal(o.listen[2].text, "unix:/tmp/s.sock");
    assert_string_equal(o.listen[3].text, "0.0.0.0:9002");

    /* At most OPTS_MAX_ADDRS. */
    const char *args[2 * OPTS_MAX_ADDRS + 3];
    char ports[OPTS_MAX_ADDRS + 1][16];
    int n = 0;
    for (int i = 0; i <= OPTS_MAX_ADDRS; i++) {
        snprintf(ports[i], sizeof(ports[i]), "%d", 10000 + i);
        args[n++] = "--listen";
        args[n++] = ports[i];
    }
    args[n - 2] = NULL;
    assert_int_equal(parse_v(&o, 4, args), OPTS_OK);
    assert_int_equal(o.nlisten, OPTS_MAX_ADDRS);
    args[n - 2] = "--listen";
    args[n] = NULL;
    assert_int_equal(parse_v(&o, 4, args), OPTS_ERROR);
    assert_string_equal(err, "--listen: too many addresses (at most 16)");
}

static void test_collisions(void **state)
{
    (void)state;
    struct opts o;

    MSG("--listen: 127.0.0.1:8010 is also the --admin address",
        "--listen", "127.0.0.1:8010");
    MSG("--listen: 0.0.0.0:8009 is also the --admin address", "--admin", "8009");
    MSG("--listen: 1.2.3.4:5 given twice", "--listen", "1.2.3.4:5", "--listen",
        "1.2.3.4:5");
    MSG("--listen: [::1]:5 given twice", "--listen", "[::1]:5", "--listen",
        "[0:0::1]:5");
    MSG("--http: 0.0.0.0:8009 is also the --listen address", "--http", ":8009");
    MSG("--http: 127.0.0.1:8009 overlaps --listen 0.0.0.0:8009 (same port)",
        "--http", "localhost:8009");
    MSG("--http: unix:/tmp/a is also the --listen address", "--listen", "unix:/tmp/a",
        "--http", "unix:/tmp/a");
    MSG("--udp: unix:/tmp/a is also the --listen address", "--listen", "unix:/tmp/a",
        "--udp", "unix:/tmp/a");
    MSG("--udp: 127.0.0.1:7 given twice", "--udp", "127.0.0.1:7", "--udp",
        "127.0.0.1:7");

    /* Not collisions: UDP and TCP on one port, port 0, one protocol over
     * a wildcard and a host, IPv4 and IPv6 wildcards, admin off. */
    assert_int_equal(PARSE(&o, "--udp", "0.0.0.0:8009"), OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "0", "--listen", "0", "--http", "0"), OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:9", "--listen", "0.0.0.0:9"),
                     OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "[::]:8009"), OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "0.0.0.0:8009", "--listen", "[::]:8009"),
                     OPTS_OK);
    assert_int_equal(PARSE(&o, "--admin", "off", "--listen", "127.0.0.1:8010"), OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:5", "--http", "127.0.0.2:5"),
                     OPTS_OK);
    assert_int_equal(PARSE(&o, "--listen", "unix:/tmp/a", "--http", "unix:/tmp/b"),
                     OPTS_OK);
}

static void test_help_version(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(PARSE(&o, "--help"), OPTS_HELP);
    assert_int_equal(PARSE(&o, "-h"), OPTS_HELP);
    assert_int_equal(PARSE(&o, "--he"), OPTS_HELP);
    assert_int_equal(PARSE(&o, "--version"), OPTS_VERSION);
    assert_int_equal(PARSE(&o, "-V"), OPTS_VERSION);
    assert_int_equal(PARSE(&o, "--workers", "2", "--help", "--bogus"), OPTS_HELP);
    assert_int_equal(PARSE(&o, "-Vh"), OPTS_VERSION);
    /* An error before --help wins: options are applied in order. */
    assert_int_equal(PARSE(&o, "--workers", "0", "--help"), OPTS_ERROR);

    /* The usage text names every option. */
    static const char *const names[] = {
        "--listen ADDR", "--udp ADDR", "--http ADDR", "--admin ADDR|off",
        "--workers N", "--pin", "--reply stamp|echo|upper",
        "--time-format ctime|iso8601", "--max-line BYTES", "--line-timeout SECONDS",
        "--max-conns N", "--idle-timeout SECONDS", "--max-output BYTES",
        "--shutdown-timeout SECONDS", "--log-level debug|info|warn|error",
        "-h, --help", "-V, --version",
    };
    const char *u = opts_usage();
    assert_int_equal(strncmp(u, "Usage: stampd", 13), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(u, names[i]))
            fail_msg("usage lacks '%s'", names[i]);
    assert_int_equal(u[strlen(u) - 1], '\n');
}

/* getopt keeps global state; opts_parse must start afresh every time,
 * including after stopping in the middle of a group of short options. */
static void test_parse_twice(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(PARSE(&o, "--workers", "3", "--pin", "--reply", "echo",
                           "--listen", "127.0.0.1:1"), OPTS_OK);
    assert_int_equal(o.workers, 3);
    assert_int_equal(PARSE(&o, "--max-line", "100"), OPTS_OK);
    /* Nothing carried over from the first call. */
    assert_int_equal(o.workers, 4);
    assert_int_equal(o.pin, 0);
    assert_int_equal(o.reply, REPLY_STAMP);
    assert_int_equal(o.nlisten, 1);
    assert_string_equal(o.listen[0].text, "0.0.0.0:8009");
    assert_int_equal(o.max_line, 100);

    assert_int_equal(PARSE(&o, "-Vh"), OPTS_VERSION);       /* stops mid-group */
    assert_int_equal(PARSE(&o, "-hV"), OPTS_HELP);
    assert_int_equal(PARSE(&o, "--workers", "5"), OPTS_OK);
    assert_int_equal(o.workers, 5);
    assert_int_equal(PARSE(&o, "-x"), OPTS_ERROR);
    assert_int_equal(PARSE(&o, "stray"), OPTS_ERROR);
    assert_int_equal(PARSE(&o, "--workers", "6"), OPTS_OK);
    assert_int_equal(o.workers, 6);
    for (int i = 0; i < 100; i++)
        assert_int_equal(PARSE(&o, "--reply", i % 2 ? "upper" : "x"),
                         i % 2 ? OPTS_OK : OPTS_ERROR);
}

/* --- sizes ------------------------------------------------------------------ */

static void test_sizes(void **state)
{
    (void)state;
    size_t v;

    assert_int_equal(opts_parse_size("0", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(opts_parse_size("123", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(opts_parse_size("64k", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(opts_parse_size("64K", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(opts_parse_size("3m", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(opts_parse_size("2G", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, (size_t)2 << 30);
    assert_int_equal(opts_parse_size("007", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(opts_parse_size("18446744073709551615", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, SIZE_MAX);
    assert_int_equal(opts_parse_size("17179869183g", 0, SIZE_MAX, &v), 0);
    assert_int_equal(v, (size_t)17179869183 << 30);

    /* Overflow and malformed input leave *out alone and fail. */
    v = 42;
    static const char *const bad[] = {
        "18446744073709551616", "17179869184g", "18014398509481984k",
        "99999999999999999999999999", "", "k", "1kk", "1 ", " 1", "-1", "+1",
        "1.5k", "0x10", "1e3", "1b", "1t",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (opts_parse_size(bad[i], 0, SIZE_MAX, &v) != -1)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(v, 42);

    /* Bounds are inclusive. */
    assert_int_equal(opts_parse_size("1k", 1024, 1024, &v), 0);
    assert_int_equal(opts_parse_size("1023", 1024, 2048, &v), -1);
    assert_int_equal(opts_parse_size("2049", 1024, 2048, &v), -1);
    assert_int_equal(opts_parse_size("2k", 1024, 2048, &v), 0);
    assert_int_equal(v, 2048);
}

/* --- addresses --------------------------------------------------------------- */

static void expect_inet(const char *s, const char *text, int port)
{
    struct addr a;
    char why[256];

    if (addr_parse(&a, s, why, sizeof(why)) != 0)
        fail_msg("'%s' refused: %s", s, why);
    assert_string_equal(a.text, text);
    assert_int_equal(addr_port(&a), port);
    assert_int_equal(a.family, text[0] == '[' ? AF_INET6 : AF_INET);
    assert_int_equal(a.ss.ss_family, a.family);
    assert_int_equal(a.len, a.family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in));
}

static void test_addr_forms(void **state)
{
    (void)state;
    struct addr a;
    char why[256];

    expect_inet("127.0.0.1:8009", "127.0.0.1:8009", 8009);
    expect_inet("0.0.0.0:0", "0.0.0.0:0", 0);
    expect_inet("255.255.255.255:65535", "255.255.255.255:65535", 65535);
    expect_inet("localhost:80", "127.0.0.1:80", 80);
    expect_inet(":9000", "0.0.0.0:9000", 9000);
    expect_inet("9000", "0.0.0.0:9000", 9000);
    expect_inet("0", "0.0.0.0:0", 0);
    expect_inet("08009", "0.0.0.0:8009", 8009);
    expect_inet("[::]:8009", "[::]:8009", 8009);
    expect_inet("[::1]:1", "[::1]:1", 1);
    expect_inet("[2001:DB8:0:0::1]:443", "[2001:db8::1]:443", 443);
    expect_inet("[::ffff:127.0.0.1]:5", "[::ffff:127.0.0.1]:5", 5);

    /* The bytes the kernel will see. */
    assert_int_equal(addr_parse(&a, "10.1.2.3:258", why, sizeof(why)), 0);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
    assert_int_equal(sin->sin_port, htons(258));
    assert_int_equal(sin->sin_addr.s_addr, htonl(0x0a010203));
    assert_int_equal(addr_parse(&a, "[::1]:258", why, sizeof(why)), 0);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
    assert_int_equal(sin6->sin6_port, htons(258));
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));

    /* addr_set_port + addr_format, as after binding port 0. */
    assert_int_equal(addr_parse(&a, "[::]:0", why, sizeof(why)), 0);
    addr_set_port(&a, 40000);
    addr_format(&a);
    assert_string_equal(a.text, "[::]:40000");
    assert_int_equal(addr_port(&a), 40000);
    assert_int_equal(addr_parse(&a, "127.0.0.1:0", why, sizeof(why)), 0);
    addr_set_port(&a, 65535);
    addr_format(&a);
    assert_string_equal(a.text, "127.0.0.1:65535");
}

static void test_addr_unix(void **state)
{
    (void)state;
    struct addr a;
    char why[512], s[256], path[200];

    assert_int_equal(addr_parse(&a, "unix:/run/stampd.sock", why, sizeof(why)), 0);
    assert_int_equal(a.family, AF_UNIX);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.ss;
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/stampd.sock");
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 17);
    assert_string_equal(a.text, "unix:/run/stampd.sock");
    assert_int_equal(addr_port(&a), -1);
    assert_int_equal(addr_parse(&a, "unix:rel", why, sizeof(why)), 0);
    assert_string_equal(a.text, "unix:rel");

    /* 107 bytes fit sun_path with its NUL; 108 do not. */
    memset(path, 'p', sizeof(path));
    path[107] = '\0';
    snprintf(s, sizeof(s), "unix:%s", path);
    assert_int_equal(addr_parse(&a, s, why, sizeof(why)), 0);
    assert_int_equal(strlen(a.text), 5 + 107);
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 108);
    path[107] = 'p';
    path[108] = '\0';
    snprintf(s, sizeof(s), "unix:%s", path);
    assert_int_equal(addr_parse(&a, s, why, sizeof(why)), -1);
    char want[512];
    snprintf(want, sizeof(want), "invalid address '%s' (unix socket path is 108 "
             "bytes, at most 107 fit)", s);
    assert_string_equal(why, want);

    assert_int_equal(addr_parse(&a, "unix:", why, sizeof(why)), -1);
    assert_string_equal(why, "invalid address 'unix:' (empty unix socket path)");
}

static void test_addr_refused(void **state)
{
    (void)state;
    struct addr a;
    char why[256];
    static const struct {
        const char *in, *why;
    } cases[] = {
        { "", "expected HOST:PORT, [HOST]:PORT or unix:PATH" },
        { "example.com:80", "expected HOST:PORT, [HOST]:PORT or unix:PATH; host names "
                            "other than localhost are not resolved" },
        { "LOCALHOST:80", "expected HOST:PORT, [HOST]:PORT or unix:PATH; host names "
                          "other than localhost are not resolved" },
        { "127.1:80", "expected HOST:PORT, [HOST]:PORT or unix:PATH; host names "
                      "other than localhost are not resolved" },
        { "256.0.0.1:80", "expected HOST:PORT, [HOST]:PORT or unix:PATH; host names "
                          "other than localhost are not resolved" },
        { "1.2.3.4", "expected HOST:PORT, [HOST]:PORT or unix:PATH" },
        { "::1:8009", "an IPv6 address needs brackets, as in [::1]:8009" },
        { "::", "an IPv6 address needs brackets, as in [::1]:8009" },
        { "[::1]", "expected HOST:PORT, [HOST]:PORT or unix:PATH" },
        { "[::1]8009", "expected HOST:PORT, [HOST]:PORT or unix:PATH" },
        { "[::1:8009", "expected HOST:PORT, [HOST]:PORT or unix:PATH" },
        { "[]:80", "not an IPv6 address literal" },
        { "[1.2.3.4]:80", "not an IPv6 address literal" },
        { "[fe80::1%lo]:80", "not an IPv6 address literal" },
        { "[::1]:", "port must be a number from 0 to 65535" },
        { "[::1]:65536", "port must be a number from 0 to 65535" },
        { "1.2.3.4:", "port must be a number from 0 to 65535" },
        { "1.2.3.4:-1", "port must be a number from 0 to 65535" },
        { "1.2.3.4: 80", "port must be a number from 0 to 65535" },
        { "1.2.3.4:80 ", "port must be a number from 0 to 65535" },
        { "1.2.3.4:http", "port must be a number from 0 to 65535" },
        { "65536", "port must be a number from 0 to 65535" },
        { "99999999999999999999", "port must be a number from 0 to 65535" },
        { ":", "port must be a number from 0 to 65535" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[300];
        memset(&a, 0x5a, sizeof(a));
        if (addr_parse(&a, cases[i].in, why, sizeof(why)) != -1)
            fail_msg("'%s' accepted as %s", cases[i].in, a.text);
        snprintf(want, sizeof(want), "invalid address '%s' (%s)", cases[i].in,
                 cases[i].why);
        assert_string_equal(why, want);
    }
    /* A NULL address and a zero-length error buffer are tolerated. */
    assert_int_equal(addr_parse(&a, NULL, why, sizeof(why)), -1);
    assert_int_equal(addr_parse(&a, "x", why, 0), -1);
}

/* --- the options added by the operations features ------------------------------ */

static void test_operation_options(void **state)
{
    (void)state;
    struct opts o;

    assert_int_equal(PARSE(&o, "--max-buffered", "512m", "--worker-timeout", "0",
                           "--drain-delay", "3", "--pid-file", "/run/s.pid",
                           "--user", "nobody", "--log-file", "/var/log/s.log",
                           "--log-requests",
                           "--clock-max-error", "250ms", "--require-synced-clock",
                           "--greeting", "hello world", "--reply", "none", "-t"),
                     OPTS_OK);
    assert_int_equal(o.max_buffered, (size_t)512 << 20);
    assert_int_equal(o.worker_timeout, 0);
    assert_int_equal(o.drain_delay, 3);
    assert_string_equal(o.pid_file, "/run/s.pid");
    assert_string_equal(o.user, "nobody");
    assert_string_equal(o.log_file, "/var/log/s.log");
    assert_int_equal(o.log_requests, 1);
    assert_int_equal(o.clock_max_error_us, 250000);
    assert_int_equal(o.require_synced_clock, 1);
    assert_string_equal(o.greeting, "hello world");
    assert_int_equal(o.reply, REPLY_NONE);
    assert_int_equal(o.check_config, 1);

    /* Defaults. */
    assert_int_equal(PARSE(&o, "--pin"), OPTS_OK);
    assert_int_equal(o.max_buffered, (size_t)256 << 20);
    assert_int_equal(o.worker_timeout, 5);
    assert_int_equal(o.clock_max_error_us, 100000);
    assert_int_equal(o.check_config, 0);
    assert_string_equal(o.config, "");

    /* Durations. */
    assert_int_equal(PARSE(&o, "--clock-max-error", "0.1"), OPTS_OK);
    assert_int_equal(o.clock_max_error_us, 100000);
    assert_int_equal(PARSE(&o, "--clock-max-error", "2s"), OPTS_OK);
    assert_int_equal(o.clock_max_error_us, 2000000);
    assert_int_equal(PARSE(&o, "--clock-max-error", "1.5ms"), OPTS_OK);
    assert_int_equal(o.clock_max_error_us, 1500);
    assert_int_equal(PARSE(&o, "--clock-max-error", "7us"), OPTS_OK);
    assert_int_equal(o.clock_max_error_us, 7);
    BAD("--clock-max-error", "--clock-max-error", "0");
    BAD("--clock-max-error", "--clock-max-error", "1.");
    BAD("--clock-max-error", "--clock-max-error", "0.0000001");
    BAD("--clock-max-error", "--clock-max-error", "3601");
    BAD("--clock-max-error", "--clock-max-error", "1h");
    BAD("--max-buffered", "--max-buffered", "1k");
    BAD("--worker-timeout", "--worker-timeout", "3601");

    /* Strings have a bound. */
    char longv[OPTS_PATH_MAX + 1];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    MSG("--pid-file: value too long (256 bytes, at most 255)", "--pid-file", longv);
}

static void test_listener_suffixes(void **state)
{
    (void)state;
    struct opts o;
    char buf[160];

    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:1,proxy", "--listen",
                           "127.0.0.1:2,chunk", "--listen", "127.0.0.1:3,proxy,chunk",
                           "--listen", "unix:/tmp/a,b", "--http", "[::1]:4,proxy",
                           "--proxy-from", "10.0.0.0/8", "--proxy-from", "::1"),
                     OPTS_OK);
    assert_int_equal(o.listen[0].flags, ADDR_PROXY);
    assert_string_equal(o.listen[0].text, "127.0.0.1:1");
    assert_int_equal(o.listen[1].flags, ADDR_CHUNK);
    assert_int_equal(o.listen[2].flags, ADDR_PROXY | ADDR_CHUNK);
    assert_int_equal(o.listen[3].flags, 0);
    assert_string_equal(o.listen[3].text, "unix:/tmp/a,b");  /* part of the path */
    assert_int_equal(o.http[0].flags, ADDR_PROXY);
    assert_int_equal(o.nproxy_from, 2);
    assert_string_equal(o.proxy_from[0].text, "10.0.0.0/8");
    assert_string_equal(o.proxy_from[1].text, "::1/128");
    addr_describe(&o.listen[2], buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:3,proxy,chunk");

    MSG("--http: '127.0.0.1:5,chunk': this listener does not take ',chunk'",
        "--http", "127.0.0.1:5,chunk");
    MSG("--udp: '127.0.0.1:5,proxy': this listener does not take ',proxy'",
        "--udp", "127.0.0.1:5,proxy");
    MSG("--listen: invalid address '127.0.0.1:5,fast' (unknown suffix 'fast')",
        "--listen", "127.0.0.1:5,fast");
    MSG("--proxy-from: a ',proxy' listener needs at least one --proxy-from CIDR "
        "naming the load balancers", "--listen", "127.0.0.1:5,proxy");
    MSG("--proxy-from: invalid network '10.0.0.1/8' (host bits set after the prefix)",
        "--proxy-from", "10.0.0.1/8");
    MSG("--proxy-from: invalid network '10.0.0.0/33' (prefix length is at most 32)",
        "--proxy-from", "10.0.0.0/33");
    MSG("--proxy-from: invalid network 'lb.example/8' (not an IPv4 or IPv6 address "
        "literal)", "--proxy-from", "lb.example/8");
}

static void test_cidr_match(void **state)
{
    (void)state;
    struct cidr c;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    char why[128];

    assert_int_equal(cidr_parse(&c, "127.0.0.0/8", why, sizeof(why)), 0);
    inet_pton(AF_INET, "127.9.8.7", &sin.sin_addr);
    assert_true(cidr_match(&c, (struct sockaddr *)&sin));
    inet_pton(AF_INET, "128.0.0.1", &sin.sin_addr);
    assert_false(cidr_match(&c, (struct sockaddr *)&sin));
    inet_pton(AF_INET6, "::ffff:127.0.0.2", &sin6.sin6_addr);
    assert_true(cidr_match(&c, (struct sockaddr *)&sin6));   /* v4-mapped */
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    assert_false(cidr_match(&c, (struct sockaddr *)&sin6));

    assert_int_equal(cidr_parse(&c, "fd00::/7", why, sizeof(why)), -1);  /* host bits */
    assert_int_equal(cidr_parse(&c, "fc00::/7", why, sizeof(why)), 0);
    inet_pton(AF_INET6, "fd12::1", &sin6.sin6_addr);
    assert_true(cidr_match(&c, (struct sockaddr *)&sin6));
    inet_pton(AF_INET6, "fe00::1", &sin6.sin6_addr);
    assert_false(cidr_match(&c, (struct sockaddr *)&sin6));
    assert_int_equal(cidr_parse(&c, "0.0.0.0/0", why, sizeof(why)), 0);
    inet_pton(AF_INET, "1.2.3.4", &sin.sin_addr);
    assert_true(cidr_match(&c, (struct sockaddr *)&sin));
    assert_int_equal(cidr_parse(&c, "10.1.2.3/31", why, sizeof(why)), -1);
    assert_int_equal(cidr_parse(&c, "10.1.2.2/31", why, sizeof(why)), 0);
    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    assert_true(cidr_match(&c, (struct sockaddr *)&sin));
    inet_pton(AF_INET, "10.1.2.4", &sin.sin_addr);
    assert_false(cidr_match(&c, (struct sockaddr *)&sin));
    assert_int_equal(cidr_parse(&c, "10.0.0.0/", why, sizeof(why)), -1);
    assert_int_equal(cidr_parse(&c, "", why, sizeof(why)), -1);
}

/* --- the config file ----------------------------------------------------------- */

static enum opts_result parse_file(struct opts *o, const char *text,
                                   const char *const *args)
{
    char *argv[16];
    int argc = 0;

    argv[argc++] = (char *)"stampd";
    for (; args && *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return opts_parse_with_file(o, argc, argv, 4, "s.conf", text, err, sizeof(err));
}

static void test_config_file(void **state)
{
    (void)state;
    struct opts o;
    static const char text[] =
        "# stampd example\n"
        "\n"
        "listen 127.0.0.1:9001\n"
        "  listen   127.0.0.1:9002,chunk   \n"
        "--max-conns 20000\r\n"
        "pin\n"
        "log-requests off\n"
        "greeting  hello there  \n"
        "http 127.0.0.1:9003\n"
        "\t# indented comment\n"
        "reply upper";

    assert_int_equal(parse_file(&o, text, NULL), OPTS_OK);
    assert_int_equal(o.nlisten, 2);
    assert_string_equal(o.listen[0].text, "127.0.0.1:9001");
    assert_int_equal(o.listen[1].flags, ADDR_CHUNK);
    assert_int_equal(o.max_conns, 20000);
    assert_int_equal(o.pin, 1);
    assert_int_equal(o.log_requests, 0);
    assert_string_equal(o.greeting, "hello there");
    assert_int_equal(o.nhttp, 1);
    assert_int_equal(o.reply, REPLY_UPPER);
    assert_string_equal(o.config, "s.conf");

    /* The command line overrides the file; a list given there replaces the
     * file's list instead of adding to it. */
    assert_int_equal(parse_file(&o, text, (const char *const[]){
                         "--listen", "127.0.0.1:9100", "--max-conns", "5",
                         "--reply", "echo", NULL }), OPTS_OK);
    assert_int_equal(o.nlisten, 1);
    assert_string_equal(o.listen[0].text, "127.0.0.1:9100");
    assert_int_equal(o.max_conns, 5);
    assert_int_equal(o.reply, REPLY_ECHO);
    assert_int_equal(o.nhttp, 1);   /* not on the command line: the file's */

    /* Errors name the file and the line. */
    assert_int_equal(parse_file(&o, "pin\nmax-conns 0\n", NULL), OPTS_ERROR);
    assert_string_equal(err, "s.conf:2: --max-conns: invalid value '0' (expected an "
                        "integer from 1 to 1000000)");
    assert_int_equal(parse_file(&o, "\n\nfrobnicate 1\n", NULL), OPTS_ERROR);
    assert_string_equal(err, "s.conf:3: unknown option 'frobnicate'");
    assert_int_equal(parse_file(&o, "max-c 1\n", NULL), OPTS_ERROR);  /* no prefixes */
    assert_string_equal(err, "s.conf:1: unknown option 'max-c'");
    assert_int_equal(parse_file(&o, "workers\n", NULL), OPTS_ERROR);
    assert_string_equal(err, "s.conf:1: --workers: missing value");
    assert_int_equal(parse_file(&o, "pin maybe\n", NULL), OPTS_ERROR);
    assert_string_equal(err, "s.conf:1: --pin: invalid value 'maybe' (expected no "
                        "value, on or off)");
    assert_int_equal(parse_file(&o, "config other.conf\n", NULL), OPTS_ERROR);
    assert_string_equal(err, "s.conf:1: --config: not allowed in a config file");
    assert_int_equal(parse_file(&o, "help\n", NULL), OPTS_ERROR);
    assert_int_equal(parse_file(&o, "listen 127.0.0.1:1\nlisten 127.0.0.1:1\n", NULL),
                     OPTS_ERROR);
    assert_string_equal(err, "--listen: 127.0.0.1:1 given twice");
    /* A control byte in the file cannot split the one-line message. */
    assert_int_equal(parse_file(&o, "reply a\x1b[2Jb\n", NULL), OPTS_ERROR);
    assert_null(strchr(err, 0x1b));
    /* An empty file is the defaults. */
    assert_int_equal(parse_file(&o, "", NULL), OPTS_OK);
    assert_int_equal(o.nlisten, 1);
    assert_string_equal(o.listen[0].text, "0.0.0.0:8009");
}

/* --- the dump that /stats shows ------------------------------------------------------- */

struct seen { int options, listen_items; char listen0[64]; };

static void visit(void *ctx, const char *key, enum opts_kind kind,
                  const char *const *items, int n)
{
    struct seen *s = ctx;

    s->options++;
    if (strcmp(key, "listen") == 0) {
        assert_int_equal(kind, OPTS_LIST);
        s->listen_items = n;
        snprintf(s->listen0, sizeof(s->listen0), "%s", items[0]);
    }
    assert_null(strchr(key, '-'));
}

static void test_visit(void **state)
{
    (void)state;
    struct opts o;
    struct seen s = { 0 };

    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:7,proxy",
                           "--proxy-from", "127.0.0.1"), OPTS_OK);
    opts_visit(&o, visit, &s);
    assert_true(s.options > 25);
    assert_int_equal(s.listen_items, 1);
    assert_string_equal(s.listen0, "127.0.0.1:7,proxy");
}

/* Operator mode: the reply mode, the listener suffix, the queue bound,
 * the admin token (never shown) and the combinations it cannot serve. */
static void secret_visit(void *ctx, const char *key, enum opts_kind kind,
                         const char *const *items, int n)
{
    (void)kind;
    if (strcmp(key, "admin_token") == 0 && n == 1)
        snprintf(ctx, 32, "%s", items[0]);
}

static void test_operator_options(void **state)
{
    (void)state;
    struct opts o;
    char shown[32] = "";
    char buf[160];

    assert_int_equal(parse_v(&o, 4, (const char *const[]){ NULL }), OPTS_OK);
    assert_int_equal(o.operator_queue, 1024);
    assert_string_equal(o.admin_token, "");
    assert_int_equal(opchan_wanted(&o), 0);
    assert_int_equal(PARSE(&o, "--reply", "operator", "--operator-queue", "7",
                           "--admin-token", "hunter2"), OPTS_OK);
    assert_int_equal(o.reply, REPLY_OPERATOR);
    assert_int_equal(o.operator_queue, 7);
    assert_int_equal(opchan_wanted(&o), 1);
    opts_visit(&o, secret_visit, shown);
    assert_string_equal(shown, "(set)");
    assert_int_equal(PARSE(&o, "--listen", "127.0.0.1:1,chunk,operator"), OPTS_OK);
    assert_int_equal(o.listen[0].flags, ADDR_CHUNK | ADDR_OPERATOR);
    assert_int_equal(opchan_wanted(&o), 1);
    addr_describe(&o.listen[0], buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:1,chunk,operator");
    BAD("--operator-queue", "--operator-queue", "0");
    MSG("--http: '127.0.0.1:5,operator': this listener does not take ',operator'",
        "--http", "127.0.0.1:5,operator");
    MSG("--reply operator: applies to line listeners only; with --http or --udp, "
        "write --listen ADDR,operator instead",
        "--reply", "operator", "--udp", "127.0.0.1:5");
    MSG("--admin: operator mode needs the admin port (the console attaches "
        "there); --admin off is not possible",
        "--listen", "127.0.0.1:5,operator", "--admin", "off");
    /* The config file takes the same text. */
    assert_int_equal(parse_file(&o, "listen 127.0.0.1:9,operator\n"
                                "operator-queue 5\nadmin-token abc\n", NULL),
                     OPTS_OK);
    assert_int_equal(o.listen[0].flags, ADDR_OPERATOR);
    assert_int_equal(o.operator_queue, 5);
    assert_string_equal(o.admin_token, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_option_set),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_exact_messages),
        cmocka_unit_test(test_listen_repeat),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_parse_twice),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_addr_forms),
        cmocka_unit_test(test_addr_unix),
        cmocka_unit_test(test_addr_refused),
        cmocka_unit_test(test_operation_options),
        cmocka_unit_test(test_listener_suffixes),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_visit),
        cmocka_unit_test(test_operator_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
