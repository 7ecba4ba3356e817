/*
 * opts.c - the command line (see opts.h).
 *
 * Contract: opts_parse() fills every field with its default, applies argv in
 * order and either succeeds or stops at the first problem with one line in
 * err that names the option, the value and what was expected.  It prints
 * nothing and never exits, and it resets getopt's state on entry, so it can
 * be called any number of times in one process (the unit tests do).
 *
 * GNU getopt_long semantics apply: unique prefixes of long names are
 * accepted, "--opt=value" and "--opt value" are the same, and "--" ends the
 * options.  stampd takes no operands, so any left over is an error.
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "opts.h"

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define DEFAULT_LISTEN "0.0.0.0:8009"
#define DEFAULT_ADMIN "127.0.0.1:8010"
#define MAX_TIMEOUT 86400u   /* a day: longer is a typo, not a policy */
#define MAX_SHUTDOWN 3600u

enum {
    OPT_LISTEN = 256,
    OPT_UDP,
    OPT_HTTP,
    OPT_ADMIN,
    OPT_WORKERS,
    OPT_PIN,
    OPT_REPLY,
    OPT_TIME_FORMAT,
    OPT_MAX_LINE,
    OPT_LINE_TIMEOUT,
    OPT_MAX_CONNS,
    OPT_IDLE_TIMEOUT,
    OPT_MAX_OUTPUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_LOG_LEVEL,
};

static const struct option long_opts[] = {
    { "listen",           required_argument, NULL, OPT_LISTEN },
    { "udp",              required_argument, NULL, OPT_UDP },
    { "http",             required_argument, NULL, OPT_HTTP },
    { "admin",            required_argument, NULL, OPT_ADMIN },
    { "workers",          required_argument, NULL, OPT_WORKERS },
    { "pin",              no_argument,       NULL, OPT_PIN },
    { "reply",            required_argument, NULL, OPT_REPLY },
    { "time-format",      required_argument, NULL, OPT_TIME_FORMAT },
    { "max-line",         required_argument, NULL, OPT_MAX_LINE },
    { "line-timeout",     required_argument, NULL, OPT_LINE_TIMEOUT },
    { "max-conns",        required_argument, NULL, OPT_MAX_CONNS },
    { "idle-timeout",     required_argument, NULL, OPT_IDLE_TIMEOUT },
    { "max-output",       required_argument, NULL, OPT_MAX_OUTPUT },
    { "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
    { "log-level",        required_argument, NULL, OPT_LOG_LEVEL },
    { "help",             no_argument,       NULL, 'h' },
    { "version",          no_argument,       NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

/* Leading ':' makes getopt report a missing value as ':' instead of '?'. */
static const char short_opts[] = ":hV";

static const char usage_text[] =
    "Usage: stampd [OPTION]...\n"
    "Answer every line a client sends with the same line, prefixed with the\n"
    "server's time:  hello  ->  [Mon Sep  5 22:29:12 2016] hello\n"
    "\n"
    "ADDR is HOST:PORT (IPv4), [HOST]:PORT (IPv6), localhost:PORT, :PORT, PORT\n"
    "or unix:PATH.  Host names are not resolved.  Port 0 picks a free port.\n"
    "BYTES takes a k, m or g suffix (1024-based).\n"
    "\n"
    "Listeners:\n"
    "  --listen ADDR              line protocol listener; repeatable, replaces\n"
    "                             the default (default 0.0.0.0:8009)\n"
    "  --udp ADDR                 UDP listener; repeatable (default: none)\n"
    "  --http ADDR                HTTP/1.1 listener; repeatable (default: none)\n"
    "  --admin ADDR|off           metrics and health port (default 127.0.0.1:8010)\n"
    "\n"
    "Processes:\n"
    "  --workers N                worker processes, 1-256 (default: online CPUs)\n"
    "  --pin                      pin worker i to CPU i (default: off)\n"
    "  --shutdown-timeout SECONDS graceful stop deadline, 0-3600 (default 10)\n"
    "\n"
    "Replies:\n"
    "  --reply stamp|echo|upper   reply mode (default stamp)\n"
    "  --time-format ctime|iso8601\n"
    "                             timestamp format (default ctime)\n"
    "\n"
    "Limits (per connection unless stated):\n"
    "  --max-line BYTES           longest line, terminator included,\n"
    "                             1-64m (default 64k)\n"
    "  --line-timeout SECONDS     time to complete a started line, 0 = never,\n"
    "                             max 86400 (default 30)\n"
    "  --max-conns N              connections per worker, 1-1000000 (default 10000)\n"
    "  --idle-timeout SECONDS     close after no traffic, 0 = never,\n"
    "                             max 86400 (default 60)\n"
    "  --max-output BYTES         unsent reply bytes before reading pauses,\n"
    "                             1-1g (default 1m)\n"
    "\n"
    "Other:\n"
    "  --log-level debug|info|warn|error\n"
    "                             least severe level logged (default info)\n"
    "  -h, --help                 show this help and exit\n"
    "  -V, --version              show the version and exit\n"
    "\n"
    "SIGTERM or SIGINT stops gracefully.  Exit status: 0 ok, 1 runtime error\n"
    "or connections cut at shutdown, 2 invalid options.\n";

const char *opts_usage(void)
{
    return usage_text;
}

static const char *opt_name(int val)
{
    for (const struct option *lo = long_opts; lo->name; lo++)
        if (lo->val == val)
            return lo->name;
    return "?";
}

/* Strict unsigned decimal: digits only (no sign, blanks or base prefix). */
static int parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

int opts_parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    uint64_t v, mult = 1;
    const char *end;

    if (parse_u64(s, &v, &end) != 0)
        return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k': case 'K':
        mult = KIB;
        break;
    case 'm': case 'M':
        mult = MIB;
        break;
    case 'g': case 'G':
        mult = GIB;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v > UINT64_MAX / mult || v * mult > SIZE_MAX)
        return -1;
    v *= mult;
    if (v < min || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* "64m" for limits that are whole units, for the error messages. */
static void fmt_size(size_t n, char *buf, size_t len)
{
    if (n >= GIB && n % GIB == 0)
        snprintf(buf, len, "%zug", n / GIB);
    else if (n >= MIB && n % MIB == 0)
        snprintf(buf, len, "%zum", n / MIB);
    else if (n >= KIB && n % KIB == 0)
        snprintf(buf, len, "%zuk", n / KIB);
    else
        snprintf(buf, len, "%zu", n);
}

static int bad_value(char *err, size_t errlen, int val, const char *arg,
                     const char *expected)
{
    snprintf(err, errlen, "--%s: invalid value '%s' (expected %s)", opt_name(val),
             arg, expected);
    return -1;
}

static int set_uint(unsigned *dst, const char *arg, unsigned min, unsigned max,
                    int val, char *err, size_t errlen)
{
    uint64_t v;
    const char *end;
    char what[96];

    if (parse_u64(arg, &v, &end) != 0 || *end != '\0' || v < min || v > max) {
        snprintf(what, sizeof(what), "an integer from %u to %u", min, max);
        return bad_value(err, errlen, val, arg, what);
    }
    *dst = (unsigned)v;
    return 0;
}

static int set_seconds(unsigned *dst, const char *arg, unsigned max, int never,
                       int val, char *err, size_t errlen)
{
    uint64_t v;
    const char *end;
    char what[96];

    if (parse_u64(arg, &v, &end) != 0 || *end != '\0' || v > max) {
        snprintf(what, sizeof(what), "seconds from 0 to %u%s", max,
                 never ? ", 0 = never" : "");
        return bad_value(err, errlen, val, arg, what);
    }
    *dst = (unsigned)v;
    return 0;
}

static int set_size(size_t *dst, const char *arg, size_t min, size_t max,
                    int val, char *err, size_t errlen)
{
    char lo[32], hi[32], what[160];

    if (opts_parse_size(arg, min, max, dst) != 0) {
        fmt_size(min, lo, sizeof(lo));
        fmt_size(max, hi, sizeof(hi));
        snprintf(what, sizeof(what), "a size in bytes from %s to %s, k/m/g suffix allowed",
                 lo, hi);
        return bad_value(err, errlen, val, arg, what);
    }
    return 0;
}

static int add_addr(struct addr *set, int *n, const char *arg, int val,
                    char *err, size_t errlen)
{
    char why[256];

    if (*n >= OPTS_MAX_ADDRS) {
        snprintf(err, errlen, "--%s: too many addresses (at most %d)", opt_name(val),
                 OPTS_MAX_ADDRS);
        return -1;
    }
    if (addr_parse(&set[*n], arg, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--%s: %s", opt_name(val), why);
        return -1;
    }
    (*n)++;
    return 0;
}

static int parse_log_level(const char *s)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };

    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* --- listener collisions ------------------------------------------------ */

/* One socket the server will bind, for the collision check. */
struct bound {
    const struct addr *a;
    int val;     /* the option that asked for it */
    int udp;     /* SOCK_DGRAM rather than SOCK_STREAM */
};

static int is_wildcard(const struct addr *a)
{
    if (a->family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

static int same_host(const struct addr *x, const struct addr *y)
{
    if (x->family == AF_INET)
        return ((const struct sockaddr_in *)&x->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&y->ss)->sin_addr.s_addr;
    return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)&x->ss)->sin6_addr,
                              &((const struct sockaddr_in6 *)&y->ss)->sin6_addr);
}

/* 0: independent; 1: the same address; 2: overlapping (a wildcard and a
 * specific host on one port). */
static int collide(const struct bound *x, const struct bound *y)
{
    const struct addr *a = x->a, *b = y->a;

    if (a->family != b->family)
        return 0;  /* [::] is bound IPV6_V6ONLY, so it never covers IPv4 */
    if (a->family == AF_UNIX)  /* one file, whatever the socket type */
        return strcmp(((const struct sockaddr_un *)&a->ss)->sun_path,
                      ((const struct sockaddr_un *)&b->ss)->sun_path) == 0;
    if (x->udp != y->udp || addr_port(a) != addr_port(b) || addr_port(a) == 0)
        return 0;  /* port 0 gets a fresh port per socket */
    if (same_host(a, b))
        return 1;
    /* Different options on one port: the listeners are SO_REUSEPORT, so the
     * kernel would let them overlap and silently hand connections for the
     * specific host to one protocol and the rest to the other (or, for the
     * admin socket, fail with a misleading "address already in use").
     * Several listeners for one protocol may overlap harmlessly. */
    if (x->val != y->val && (is_wildcard(a) || is_wildcard(b)))
        return 2;
    return 0;
}

static int check_collisions(const struct opts *o, char *err, size_t errlen)
{
    struct bound b[3 * OPTS_MAX_ADDRS + 1];
    int n = 0;

    /* The admin address first: it is the one a user is least likely to
     * have typed, so the message should name the other option. */
    if (o->admin_on)
        b[n++] = (struct bound){ &o->admin, OPT_ADMIN, 0 };
    for (int i = 0; i < o->nlisten; i++)
        b[n++] = (struct bound){ &o->listen[i], OPT_LISTEN, 0 };
    for (int i = 0; i < o->nhttp; i++)
        b[n++] = (struct bound){ &o->http[i], OPT_HTTP, 0 };
    for (int i = 0; i < o->nudp; i++)
        b[n++] = (struct bound){ &o->udp[i], OPT_UDP, 1 };

    for (int j = 1; j < n; j++) {
        for (int i = 0; i < j; i++) {
            int c = collide(&b[i], &b[j]);
            if (c == 0)
                continue;
            if (c == 1 && b[i].val == b[j].val)
                snprintf(err, errlen, "--%s: %s given twice", opt_name(b[j].val),
                         b[j].a->text);
            else if (c == 1)
                snprintf(err, errlen, "--%s: %s is also the --%s address",
                         opt_name(b[j].val), b[j].a->text, opt_name(b[i].val));
            else
                snprintf(err, errlen, "--%s: %s overlaps --%s %s (same port)",
                         opt_name(b[j].val), b[j].a->text, opt_name(b[i].val),
                         b[i].a->text);
            return -1;
        }
    }
    return 0;
}

/* --- the parser ----------------------------------------------------------- */

static void set_defaults(struct opts *o, int ncpus)
{
    char why[256];

    memset(o, 0, sizeof(*o));
    (void)addr_parse(&o->listen[0], DEFAULT_LISTEN, why, sizeof(why));
    o->nlisten = 1;
    (void)addr_parse(&o->admin, DEFAULT_ADMIN, why, sizeof(why));
    o->admin_on = 1;
    o->workers = ncpus < 1 ? 1 : ncpus > OPTS_MAX_WORKERS ? OPTS_MAX_WORKERS : ncpus;
    o->pin = 0;
    o->reply = REPLY_STAMP;
    o->time_format = TIME_CTIME;
    o->max_line = 64 * KIB;
    o->line_timeout = 30;
    o->max_conns = 10000;
    o->idle_timeout = 60;
    o->max_output = MIB;
    o->shutdown_timeout = 10;
    o->log_level = LOG_INFO;
}

/* The option word as the user typed it, up to any "=value". */
static void option_word(const char *arg, char *buf, size_t len)
{
    size_t n = strcspn(arg, "=");

    snprintf(buf, len, "%.*s", (int)(n < 64 ? n : 64), arg);
}

/* getopt_long said '?' with optopt 0: no long option matched.  Tell an
 * ambiguous prefix ("--li": --listen or --line-timeout) from a typo. */
static void unknown_long(const char *arg, char *err, size_t errlen)
{
    char word[80];
    size_t n, matches = 0, off;

    option_word(arg, word, sizeof(word));
    n = strlen(word);
    if (n > 2 && word[0] == '-' && word[1] == '-') {
        for (const struct option *lo = long_opts; lo->name; lo++)
            if (strncmp(lo->name, word + 2, n - 2) == 0)
                matches++;
    }
    if (matches < 2) {
        snprintf(err, errlen, "unknown option '%s' (try --help)", word);
        return;
    }
    off = (size_t)snprintf(err, errlen, "ambiguous option '%s' (could be", word);
    for (const struct option *lo = long_opts; lo->name && off < errlen; lo++)
        if (strncmp(lo->name, word + 2, n - 2) == 0)
            off += (size_t)snprintf(err + off, errlen - off, " --%s", lo->name);
    if (off < errlen)
        snprintf(err + off, errlen - off, ")");
}

static int is_our_val(int val)
{
    for (const struct option *lo = long_opts; lo->name; lo++)
        if (lo->val == val)
            return 1;
    return 0;
}

static int apply(struct opts *o, int val, const char *arg, int *listen_given,
                 char *err, size_t errlen)
{
    int v;

    switch (val) {
    case OPT_LISTEN:
        /* The first --listen replaces the default listener. */
        if (!*listen_given) {
            o->nlisten = 0;
            *listen_given = 1;
        }
        return add_addr(o->listen, &o->nlisten, arg, val, err, errlen);
    case OPT_UDP:
        return add_addr(o->udp, &o->nudp, arg, val, err, errlen);
    case OPT_HTTP:
        return add_addr(o->http, &o->nhttp, arg, val, err, errlen);
    case OPT_ADMIN: {
        char why[256];
        if (strcmp(arg, "off") == 0) {
            o->admin_on = 0;
            return 0;
        }
        if (addr_parse(&o->admin, arg, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--admin: %s (or 'off')", why);
            return -1;
        }
        o->admin_on = 1;
        return 0;
    }
    case OPT_WORKERS: {
        unsigned w;
        if (set_uint(&w, arg, 1, OPTS_MAX_WORKERS, val, err, errlen) != 0)
            return -1;
        o->workers = (int)w;
        return 0;
    }
    case OPT_PIN:
        o->pin = 1;
        return 0;
    case OPT_REPLY:
        if ((v = reply_mode_parse(arg)) < 0)
            return bad_value(err, errlen, val, arg, "stamp, echo or upper");
        o->reply = (enum reply_mode)v;
        return 0;
    case OPT_TIME_FORMAT:
        if ((v = time_format_parse(arg)) < 0)
            return bad_value(err, errlen, val, arg, "ctime or iso8601");
        o->time_format = (enum time_format)v;
        return 0;
    case OPT_MAX_LINE:
        return set_size(&o->max_line, arg, 1, 64 * MIB, val, err, errlen);
    case OPT_LINE_TIMEOUT:
        return set_seconds(&o->line_timeout, arg, MAX_TIMEOUT, 1, val, err, errlen);
    case OPT_MAX_CONNS:
        return set_uint(&o->max_conns, arg, 1, 1000000, val, err, errlen);
    case OPT_IDLE_TIMEOUT:
        return set_seconds(&o->idle_timeout, arg, MAX_TIMEOUT, 1, val, err, errlen);
    case OPT_MAX_OUTPUT:
        return set_size(&o->max_output, arg, 1, GIB, val, err, errlen);
    case OPT_SHUTDOWN_TIMEOUT:
        return set_seconds(&o->shutdown_timeout, arg, MAX_SHUTDOWN, 0, val, err, errlen);
    case OPT_LOG_LEVEL:
        if ((v = parse_log_level(arg)) < 0)
            return bad_value(err, errlen, val, arg, "debug, info, warn or error");
        o->log_level = (enum log_level)v;
        return 0;
    default:
        snprintf(err, errlen, "internal error: option %d not handled", val);
        return -1;
    }
}

static enum opts_result parse(struct opts *o, int argc, char **argv, int ncpus,
                              char *err, size_t errlen)
{
    int c, listen_given = 0;

    set_defaults(o, ncpus);
    if (errlen > 0)
        err[0] = '\0';

    /* optind = 0 makes glibc re-initialise getopt completely (including
     * the scan position inside grouped short options), so a second call
     * starts afresh; opterr = 0 keeps getopt itself silent. */
    optind = 0;
    opterr = 0;
    for (;;) {
        c = getopt_long(argc, argv, short_opts, long_opts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'h':
            return OPTS_HELP;
        case 'V':
            return OPTS_VERSION;
        case ':':
            if (optopt >= OPT_LISTEN)
                snprintf(err, errlen, "--%s: missing value", opt_name(optopt));
            else
                snprintf(err, errlen, "-%c: missing value", optopt);
            return OPTS_ERROR;
        case '?':
            /* An unmatched long option has been stepped over whole. */
            if (optopt == 0 && optind > 0 && optind <= argc)
                unknown_long(argv[optind - 1], err, errlen);
            else if (is_our_val(optopt))
                snprintf(err, errlen, "--%s: takes no value", opt_name(optopt));
            else if (optopt > 32 && optopt < 127)
                snprintf(err, errlen, "unknown option '-%c' (try --help)", optopt);
            else
                snprintf(err, errlen, "unknown option (try --help)");
            return OPTS_ERROR;
        default:
            if (apply(o, c, optarg, &listen_given, err, errlen) != 0)
                return OPTS_ERROR;
            break;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (stampd takes options only)",
                 argv[optind]);
        return OPTS_ERROR;
    }
    return check_collisions(o, err, errlen) == 0 ? OPTS_OK : OPTS_ERROR;
}

/* The message quotes the user's argument; a control byte in it (an LF from
 * a script's variable) must not split the promised single line. */
enum opts_result opts_parse(struct opts *o, int argc, char **argv, int ncpus,
                            char *err, size_t errlen)
{
    enum opts_result r = parse(o, argc, argv, ncpus, err, errlen);

    if (r == OPTS_ERROR)
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    return r;
}
