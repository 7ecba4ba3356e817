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
                           "--admin=off", "--work=1", "--max-l", "64m"), OPTS_OK);
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
    MSG("--reply: invalid value 'loud' (expected stamp, echo or upper)",
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
    MSG("ambiguous option '--max' (could be --max-line --max-conns --max-output)",
        "--max", "1");
    MSG("ambiguous option '--li' (could be --listen --line-timeout)", "--li=1");
    MSG("unexpected argument 'foo' (stampd takes options only)", "foo");
    MSG("unexpected argument '--workers' (stampd takes options only)",
        "--", "--workers", "2");
    MSG("--reply: invalid value 'a?b' (expected stamp, echo or upper)",
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
