/*
 * opts.c - the options, as one table (see opts.h).
 *
 * Contract: parsing fills every field with its default, applies the config
 * file's lines and then argv in order, and either succeeds or stops at the
 * first problem with one line in err that names the option, the value and
 * what was expected.  It prints nothing and never exits, and it resets
 * getopt's state on entry, so it can be called any number of times in one
 * process (the unit tests and a reload do).
 *
 * GNU getopt_long semantics apply on the command line: unique prefixes of
 * long names are accepted, "--opt=value" and "--opt value" are the same,
 * and "--" ends the options.  stampd takes no operands, so any left over is
 * an error.  A config file takes exact names only: a prefix that works
 * today could become ambiguous when an option is added.
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "opchannel.h"
#include "opts.h"

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define DEFAULT_LISTEN "0.0.0.0:8009"
#define DEFAULT_ADMIN "127.0.0.1:8010"
#define MAX_TIMEOUT 86400u   /* a day: longer is a typo, not a policy */
#define MAX_SHUTDOWN 3600u
#define QUOTE_MAX 200     /* bytes of a bad value quoted in a message */

/* How a value is read and where it goes. */
enum opt_type {
    T_ADDRS,     /* repeatable address: struct addr[] + int count */
    T_ADMIN,     /* one address or "off" */
    T_CIDRS,     /* repeatable network: struct cidr[] + int count */
    T_INT,       /* int within [min, max] */
    T_UINT,      /* unsigned within [min, max] */
    T_SECONDS,   /* unsigned seconds within [0, max]; `aux` 1: 0 = never */
    T_SIZE,      /* size_t bytes with k/m/g within [min, max] */
    T_DURATION,  /* uint64_t microseconds from "0.1", "100ms", "2s" */
    T_FLAG,      /* int set to 1 */
    T_ENUM,      /* int index into `names` */
    T_STRING,    /* char[max] */
    T_HELP,
    T_VERSION,
};

struct opt_def {
    const char *name;
    char short_name;        /* 0: none */
    enum opt_type type;
    size_t off;             /* the field in struct opts */
    size_t count_off;       /* T_ADDRS, T_CIDRS: the count field */
    uint64_t min, max;      /* bounds; T_STRING: buffer size */
    unsigned aux;           /* T_ADDRS: suffixes taken; T_SECONDS: never;
                             * T_STRING: STRING_SECRET */
    const char *const *names;  /* T_ENUM: the values, NULL-terminated */
    const char *metavar;    /* "ADDR", "N" ...; NULL: derived from names */
    const char *help;       /* '\n' starts an indented continuation line */
    const char *section;    /* heading in --help, where it changes */
    unsigned no_file : 1;   /* command line only */
};

#define F(field) offsetof(struct opts, field)
#define STRING_SECRET 1u  /* shown as "(set)" in the dump, never as it is */

static const char *const reply_names[] = { REPLY_MODE_NAMES, NULL };
static const char *const time_names[] = { "ctime", "iso8601", NULL };
static const char *const level_names[] = { "debug", "info", "warn", "error", NULL };

static const struct opt_def table[] = {
    { "listen", 0, T_ADDRS, F(listen), F(nlisten), 0, 0,
      ADDR_PROXY | ADDR_CHUNK | ADDR_OPERATOR,
      NULL, "ADDR[,proxy][,chunk][,operator]",
      "line protocol listener; repeatable, replaces\n"
      "the default (default " DEFAULT_LISTEN ");\n"
      ",proxy: a PROXY header comes first;\n"
      ",chunk: every read is one request;\n"
      ",operator: replies typed at `stampctl chat`",
      "Listeners", 0 },
    { "udp", 0, T_ADDRS, F(udp), F(nudp), 0, 0, 0, NULL, "ADDR",
      "UDP listener; repeatable (default: none)", NULL, 0 },
    { "http", 0, T_ADDRS, F(http), F(nhttp), 0, 0, ADDR_PROXY, NULL, "ADDR[,proxy]",
      "HTTP/1.1 listener; repeatable (default: none)", NULL, 0 },
    { "admin", 0, T_ADMIN, F(admin), 0, 0, 0, 0, NULL, "ADDR|off",
      "metrics and health port (default " DEFAULT_ADMIN ")", NULL, 0 },
    { "admin-token", 0, T_STRING, F(admin_token), 0, 0, OPTS_TOKEN_MAX,
      STRING_SECRET, NULL, "TOKEN",
      "the operator console must present TOKEN;\n"
      "needed for it on a non-loopback --admin", NULL, 0 },
    { "proxy-from", 0, T_CIDRS, F(proxy_from), F(nproxy_from), 0, 0, 0, NULL, "CIDR",
      "load balancer allowed to send a PROXY header;\n"
      "repeatable, IPv4 or IPv6 (default: none)", NULL, 0 },

    { "workers", 0, T_INT, F(workers), 0, 1, OPTS_MAX_WORKERS, 0, NULL, "N",
      "worker processes, 1-256 (default: the CPUs\nthis process may use)",
      "Processes", 0 },
    { "pin", 0, T_FLAG, F(pin), 0, 0, 0, 0, NULL, NULL,
      "pin worker i to CPU i (default: off)", NULL, 0 },
    { "shutdown-timeout", 0, T_SECONDS, F(shutdown_timeout), 0, 0, MAX_SHUTDOWN, 0,
      NULL, "SECONDS", "graceful stop deadline, 0-3600 (default 10)", NULL, 0 },
    { "drain-delay", 0, T_SECONDS, F(drain_delay), 0, 0, MAX_SHUTDOWN, 0, NULL,
      "SECONDS",
      "at a stop, /readyz answers 503 this long\nbefore listeners close (default 0)",
      NULL, 0 },
    { "worker-timeout", 0, T_SECONDS, F(worker_timeout), 0, 0, MAX_SHUTDOWN, 1, NULL,
      "SECONDS",
      "replace a worker whose loop has not turned\nfor this long, 0 = never (default 5)",
      NULL, 0 },
    { "master-priority", 0, T_INT, F(master_priority), 0, 0, 19, 0, NULL, "N",
      "nice levels the master (admin port,\nsupervision) runs ahead of the workers,\n"
      "0-19; needs root or CAP_SYS_NICE (default 5)",
      NULL, 0 },

    { "reply", 0, T_ENUM, F(reply), 0, 0, 0, 0, reply_names, NULL,
      "reply mode (default stamp)", "Replies", 0 },
    { "time-format", 0, T_ENUM, F(time_format), 0, 0, 0, 0, time_names, NULL,
      "timestamp format (default ctime)", NULL, 0 },
    { "greeting", 0, T_STRING, F(greeting), 0, 0, OPTS_TEXT_MAX, 0, NULL, "TEXT",
      "send TEXT and LF to every new connection\n(default: none)", NULL, 0 },
    { "operator-queue", 0, T_UINT, F(operator_queue), 0, 1, 1000000, 0, NULL, "N",
      "client lines a worker holds for the operator,\n"
      "1-1000000 (default 1024)", NULL, 0 },

    { "max-line", 0, T_SIZE, F(max_line), 0, 1, 64 * MIB, 0, NULL, "BYTES",
      "longest line, terminator included,\n1-64m (default 64k)",
      "Limits (per connection unless stated)", 0 },
    { "line-timeout", 0, T_SECONDS, F(line_timeout), 0, 0, MAX_TIMEOUT, 1, NULL,
      "SECONDS", "time to complete a started line, 0 = never,\nmax 86400 (default 30)",
      NULL, 0 },
    { "max-conns", 0, T_UINT, F(max_conns), 0, 1, 1000000, 0, NULL, "N",
      "connections per worker, 1-1000000 (default 10000)", NULL, 0 },
    { "idle-timeout", 0, T_SECONDS, F(idle_timeout), 0, 0, MAX_TIMEOUT, 1, NULL,
      "SECONDS", "close after no traffic, 0 = never,\nmax 86400 (default 60)", NULL, 0 },
    { "max-output", 0, T_SIZE, F(max_output), 0, 1, GIB, 0, NULL, "BYTES",
      "unsent reply bytes before reading pauses,\n1-1g (default 1m)", NULL, 0 },
    { "max-buffered", 0, T_SIZE, F(max_buffered), 0, MIB, 64 * GIB, 0, NULL, "BYTES",
      "buffered bytes per worker (replies and held\ninput), 1m-64g (default 256m)",
      NULL, 0 },

    { "config", 'c', T_STRING, F(config), 0, 0, OPTS_PATH_MAX, 0, NULL, "FILE",
      "read options from FILE, one per line\n(the command line overrides it)",
      "Operation", 1 },
    { "check-config", 't', T_FLAG, F(check_config), 0, 0, 0, 0, NULL, NULL,
      "check the options, try to bind every\nlistener, then exit", NULL, 1 },
    { "pid-file", 0, T_STRING, F(pid_file), 0, 0, OPTS_PATH_MAX, 0, NULL, "PATH",
      "write the master's pid to PATH (default: none)", NULL, 0 },
    { "user", 0, T_STRING, F(user), 0, 0, OPTS_NAME_MAX, 0, NULL, "NAME",
      "run workers as NAME after binding (default:\n"
      "unchanged; root must be named explicitly)", NULL, 0 },
    { "log-file", 0, T_STRING, F(log_file), 0, 0, OPTS_PATH_MAX, 0, NULL, "PATH",
      "append the log to PATH, reopened on SIGUSR1\n(default: stderr)", NULL, 0 },
    { "log-level", 0, T_ENUM, F(log_level), 0, 0, 0, 0, level_names, NULL,
      "least severe level logged (default info)", NULL, 0 },
    { "log-requests", 0, T_FLAG, F(log_requests), 0, 0, 0, 0, NULL, NULL,
      "log every request with the client address\n(rate-limited)", NULL, 0 },
    { "clock-max-error", 0, T_DURATION, F(clock_max_error_us), 0, 1, 3600000000u, 0,
      NULL, "SECONDS",
      "warn when the kernel's clock error bound\nexceeds this (default 0.1)", NULL, 0 },
    { "require-synced-clock", 0, T_FLAG, F(require_synced_clock), 0, 0, 0, 0, NULL,
      NULL, "/readyz fails while the clock is not\nsynchronised", NULL, 0 },

    { "help", 'h', T_HELP, 0, 0, 0, 0, 0, NULL, NULL, "show this help and exit",
      "Other", 1 },
    { "version", 'V', T_VERSION, 0, 0, 0, 0, 0, NULL, NULL,
      "show the version and exit", NULL, 1 },
};

#define NOPTS ((int)(sizeof(table) / sizeof(table[0])))
#define VAL_BASE 256   /* getopt val of table[i]: VAL_BASE + i */

/* --- values ------------------------------------------------------------------ */

#define FIELD(o, d, type) ((type *)(void *)((char *)(o) + (d)->off))
#define COUNT(o, d) ((int *)(void *)((char *)(o) + (d)->count_off))

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

/* "0.1", "2", "100ms", "250us", "1.5s" -> microseconds.  At most six
 * decimals; 0 or -1. */
static int parse_duration(const char *s, uint64_t *us)
{
    uint64_t whole, frac = 0, scale = 1000000;
    const char *p;
    int digits = 0;

    if (parse_u64(s, &whole, &p) != 0)
        return -1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 6)
                return -1;
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (digits == 0)
            return -1;
    }
    if (strcmp(p, "ms") == 0)
        scale = 1000;
    else if (strcmp(p, "us") == 0)
        scale = 1;
    else if (*p != '\0' && strcmp(p, "s") != 0)
        return -1;
    for (int i = digits; i < 6; i++)
        frac *= 10;           /* frac is now millionths of the unit */
    if (whole > UINT64_MAX / scale / 2)
        return -1;
    *us = whole * scale + frac * scale / 1000000;
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

/* "stamp, echo or upper" */
static void fmt_choices(const char *const *names, char *buf, size_t len)
{
    size_t off = 0;
    int n = 0;

    while (names[n])
        n++;
    buf[0] = '\0';
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s",
                                i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
}

static int bad_value(char *err, size_t errlen, const struct opt_def *d,
                     const char *arg, const char *expected)
{
    /* A message quotes at most QUOTE_MAX bytes of the value. */
    snprintf(err, errlen, "--%s: invalid value '%.*s' (expected %s)", d->name,
             (int)strnlen(arg, QUOTE_MAX), arg, expected);
    return -1;
}

static int set_number(struct opts *o, const struct opt_def *d, const char *arg,
                      char *err, size_t errlen)
{
    uint64_t v;
    const char *end;
    char what[96];

    if (parse_u64(arg, &v, &end) != 0 || *end != '\0' || v < d->min || v > d->max) {
        if (d->type == T_SECONDS)
            snprintf(what, sizeof(what), "seconds from 0 to %llu%s",
                     (unsigned long long)d->max, d->aux ? ", 0 = never" : "");
        else
            snprintf(what, sizeof(what), "an integer from %llu to %llu",
                     (unsigned long long)d->min, (unsigned long long)d->max);
        return bad_value(err, errlen, d, arg, what);
    }
    if (d->type == T_INT)
        *FIELD(o, d, int) = (int)v;
    else
        *FIELD(o, d, unsigned) = (unsigned)v;
    return 0;
}

static int set_size(struct opts *o, const struct opt_def *d, const char *arg,
                    char *err, size_t errlen)
{
    char lo[32], hi[32], what[160];

    if (opts_parse_size(arg, (size_t)d->min, (size_t)d->max, FIELD(o, d, size_t)) != 0) {
        fmt_size((size_t)d->min, lo, sizeof(lo));
        fmt_size((size_t)d->max, hi, sizeof(hi));
        snprintf(what, sizeof(what), "a size in bytes from %s to %s, k/m/g suffix allowed",
                 lo, hi);
        return bad_value(err, errlen, d, arg, what);
    }
    return 0;
}

static int set_duration(struct opts *o, const struct opt_def *d, const char *arg,
                        char *err, size_t errlen)
{
    uint64_t us;

    if (parse_duration(arg, &us) != 0 || us < d->min || us > d->max)
        return bad_value(err, errlen, d, arg,
                         "seconds from 0.000001 to 3600, e.g. 0.1 or 100ms");
    *FIELD(o, d, uint64_t) = us;
    return 0;
}

static int set_enum(struct opts *o, const struct opt_def *d, const char *arg,
                    char *err, size_t errlen)
{
    char what[128];

    for (int i = 0; d->names[i]; i++) {
        if (strcmp(arg, d->names[i]) == 0) {
            *FIELD(o, d, int) = i;
            return 0;
        }
    }
    fmt_choices(d->names, what, sizeof(what));
    return bad_value(err, errlen, d, arg, what);
}

static int set_string(struct opts *o, const struct opt_def *d, const char *arg,
                      char *err, size_t errlen)
{
    size_t n = strlen(arg);

    if (n >= d->max) {
        snprintf(err, errlen, "--%s: value too long (%zu bytes, at most %llu)", d->name,
                 n, (unsigned long long)(d->max - 1));
        return -1;
    }
    memcpy(FIELD(o, d, char), arg, n + 1);
    return 0;
}

static int add_addr(struct opts *o, const struct opt_def *d, const char *arg,
                    char *err, size_t errlen)
{
    struct addr *set = FIELD(o, d, struct addr);
    int *n = COUNT(o, d);
    char why[256];

    if (*n >= OPTS_MAX_ADDRS) {
        snprintf(err, errlen, "--%s: too many addresses (at most %d)", d->name,
                 OPTS_MAX_ADDRS);
        return -1;
    }
    if (addr_parse_listener(&set[*n], arg, d->aux, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--%s: %s", d->name, why);
        return -1;
    }
    (*n)++;
    return 0;
}

static int add_cidr(struct opts *o, const struct opt_def *d, const char *arg,
                    char *err, size_t errlen)
{
    struct cidr *set = FIELD(o, d, struct cidr);
    int *n = COUNT(o, d);
    char why[256];

    if (*n >= OPTS_MAX_CIDRS) {
        snprintf(err, errlen, "--%s: too many networks (at most %d)", d->name,
                 OPTS_MAX_CIDRS);
        return -1;
    }
    if (cidr_parse(&set[*n], arg, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--%s: %s", d->name, why);
        return -1;
    }
    (*n)++;
    return 0;
}

static int set_admin(struct opts *o, const struct opt_def *d, const char *arg,
                     char *err, size_t errlen)
{
    char why[256];

    if (strcmp(arg, "off") == 0) {
        o->admin_on = 0;
        return 0;
    }
    if (addr_parse(FIELD(o, d, struct addr), arg, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--%s: %s (or 'off')", d->name, why);
        return -1;
    }
    o->admin_on = 1;
    return 0;
}

/* Apply one value.  `arg` is NULL for an option that takes none. */
static int apply(struct opts *o, const struct opt_def *d, const char *arg,
                 char *err, size_t errlen)
{
    switch (d->type) {
    case T_ADDRS:
        return add_addr(o, d, arg, err, errlen);
    case T_ADMIN:
        return set_admin(o, d, arg, err, errlen);
    case T_CIDRS:
        return add_cidr(o, d, arg, err, errlen);
    case T_INT:
    case T_UINT:
    case T_SECONDS:
        return set_number(o, d, arg, err, errlen);
    case T_SIZE:
        return set_size(o, d, arg, err, errlen);
    case T_DURATION:
        return set_duration(o, d, arg, err, errlen);
    case T_FLAG:
        *FIELD(o, d, int) = 1;
        return 0;
    case T_ENUM:
        return set_enum(o, d, arg, err, errlen);
    case T_STRING:
        return set_string(o, d, arg, err, errlen);
    case T_HELP:
    case T_VERSION:
    default:
        break;
    }
    snprintf(err, errlen, "internal error: --%s not handled", d->name);
    return -1;
}

static int takes_value(const struct opt_def *d)
{
    return d->type != T_FLAG && d->type != T_HELP && d->type != T_VERSION;
}

/* --- listener collisions ------------------------------------------------ */

/* One socket the server will bind, for the collision check. */
struct bound {
    const struct addr *a;
    const char *opt;  /* the option that asked for it */
    int udp;          /* SOCK_DGRAM rather than SOCK_STREAM */
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
    if (strcmp(x->opt, y->opt) != 0 && (is_wildcard(a) || is_wildcard(b)))
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
        b[n++] = (struct bound){ &o->admin, "admin", 0 };
    for (int i = 0; i < o->nlisten; i++)
        b[n++] = (struct bound){ &o->listen[i], "listen", 0 };
    for (int i = 0; i < o->nhttp; i++)
        b[n++] = (struct bound){ &o->http[i], "http", 0 };
    for (int i = 0; i < o->nudp; i++)
        b[n++] = (struct bound){ &o->udp[i], "udp", 1 };

    for (int j = 1; j < n; j++) {
        for (int i = 0; i < j; i++) {
            int c = collide(&b[i], &b[j]);
            if (c == 0)
                continue;
            if (c == 1 && strcmp(b[i].opt, b[j].opt) == 0)
                snprintf(err, errlen, "--%s: %s given twice", b[j].opt, b[j].a->text);
            else if (c == 1)
                snprintf(err, errlen, "--%s: %s is also the --%s address", b[j].opt,
                         b[j].a->text, b[i].opt);
            else
                snprintf(err, errlen, "--%s: %s overlaps --%s %s (same port)",
                         b[j].opt, b[j].a->text, b[i].opt, b[i].a->text);
            return -1;
        }
    }
    return 0;
}

/* Cross-option rules. */
static int check_combinations(const struct opts *o, char *err, size_t errlen)
{
    int proxied = 0;

    for (int i = 0; i < o->nlisten; i++)
        proxied |= (o->listen[i].flags & ADDR_PROXY) != 0;
    for (int i = 0; i < o->nhttp; i++)
        proxied |= (o->http[i].flags & ADDR_PROXY) != 0;
    if (opchan_wanted(o) && !o->admin_on) {
        snprintf(err, errlen, "--admin: operator mode needs the admin port "
                 "(the console attaches there); --admin off is not possible");
        return -1;
    }
    if (o->reply == REPLY_OPERATOR && (o->nhttp || o->nudp)) {
        snprintf(err, errlen, "--reply operator: applies to line listeners only; "
                 "with --http or --udp, write --listen ADDR,operator instead");
        return -1;
    }
    if (proxied && o->nproxy_from == 0) {
        snprintf(err, errlen, "--proxy-from: a ',proxy' listener needs at least one "
                 "--proxy-from CIDR naming the load balancers");
        return -1;
    }
    return check_collisions(o, err, errlen);
}

/* --- sources ------------------------------------------------------------------- */

enum source { SRC_DEFAULT = 0, SRC_FILE, SRC_ARGV };

/* Which source last filled each repeatable option, so that the first value
 * from a later source replaces the list instead of adding to it. */
struct parse_state {
    unsigned char list_src[NOPTS];
};

static int apply_from(struct opts *o, struct parse_state *ps, enum source src, int i,
                      const char *arg, char *err, size_t errlen)
{
    const struct opt_def *d = &table[i];

    if ((d->type == T_ADDRS || d->type == T_CIDRS) && ps->list_src[i] != src) {
        *COUNT(o, d) = 0;
        ps->list_src[i] = (unsigned char)src;
    }
    return apply(o, d, arg, err, errlen);
}

static void set_defaults(struct opts *o, int ncpus)
{
    char why[256];

    memset(o, 0, sizeof(*o));
    (void)addr_parse(&o->listen[0], DEFAULT_LISTEN, why, sizeof(why));
    o->nlisten = 1;
    (void)addr_parse(&o->admin, DEFAULT_ADMIN, why, sizeof(why));
    o->admin_on = 1;
    o->workers = ncpus < 1 ? 1 : ncpus > OPTS_MAX_WORKERS ? OPTS_MAX_WORKERS : ncpus;
    o->reply = REPLY_STAMP;
    o->time_format = TIME_CTIME;
    o->max_line = 64 * KIB;
    o->line_timeout = 30;
    o->max_conns = 10000;
    o->idle_timeout = 60;
    o->max_output = MIB;
    o->max_buffered = 256 * MIB;
    o->operator_queue = 1024;
    o->shutdown_timeout = 10;
    o->worker_timeout = 5;
    o->master_priority = 5;
    o->log_level = LOG_INFO;
    o->clock_max_error_us = 100000;
}

/* --- the config file ----------------------------------------------------------- */

static int find_exact(const char *name, size_t n)
{
    for (int i = 0; i < NOPTS; i++)
        if (strlen(table[i].name) == n && strncmp(table[i].name, name, n) == 0)
            return i;
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* "on", "yes", ... for a flag written with a value in a file. */
static int flag_value(const char *v)
{
    static const char *const on[] = { "on", "yes", "true", "1" };
    static const char *const off[] = { "off", "no", "false", "0" };

    for (int i = 0; i < 4; i++) {
        if (strcmp(v, on[i]) == 0)
            return 1;
        if (strcmp(v, off[i]) == 0)
            return 0;
    }
    return -1;
}

/* One line: "name value", "name" or blank/comment.  `line` is modified. */
static int file_line(struct opts *o, struct parse_state *ps, char *line,
                     char *err, size_t errlen)
{
    char *p = line, *name, *val, *end;
    size_t n;
    int i;

    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    name = p;
    while (*p && !is_blank(*p))
        p++;
    n = (size_t)(p - name);
    while (is_blank(*p))
        p++;
    val = p;
    end = val + strlen(val);
    while (end > val && is_blank(end[-1]))
        *--end = '\0';
    if (n > 2 && name[0] == '-' && name[1] == '-') {
        name += 2;  /* "--listen x" is forgiven */
        n -= 2;
    }
    i = find_exact(name, n);
    if (i < 0) {
        snprintf(err, errlen, "unknown option '%.*s'", (int)(n < 64 ? n : 64), name);
        return -1;
    }
    if (table[i].no_file) {
        snprintf(err, errlen, "--%s: not allowed in a config file", table[i].name);
        return -1;
    }
    if (!takes_value(&table[i])) {
        int on = *val ? flag_value(val) : 1;
        if (on < 0)
            return bad_value(err, errlen, &table[i], val, "no value, on or off");
        *FIELD(o, &table[i], int) = on;
        return 0;
    }
    if (*val == '\0') {
        snprintf(err, errlen, "--%s: missing value", table[i].name);
        return -1;
    }
    return apply_from(o, ps, SRC_FILE, i, val, err, errlen);
}

static int apply_file(struct opts *o, struct parse_state *ps, const char *fname,
                      const char *text, char *err, size_t errlen)
{
    char line[4096], msg[512];
    unsigned lineno = 0;

    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        lineno++;
        if (n >= sizeof(line)) {
            snprintf(err, errlen, "%s:%u: line too long (at most %zu bytes)", fname,
                     lineno, sizeof(line) - 1);
            return -1;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        if (file_line(o, ps, line, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", fname, lineno, msg);
            return -1;
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    return 0;
}

/* --- the command line ---------------------------------------------------------- */

static struct option long_opts[NOPTS + 1];
static char short_opts[2 * NOPTS + 2];

/* Build getopt's tables from the option table (once). */
static void build_getopt(void)
{
    size_t s = 0;

    if (long_opts[0].name)
        return;
    /* Leading ':' makes getopt report a missing value as ':' instead of '?'. */
    short_opts[s++] = ':';
    for (int i = 0; i < NOPTS; i++) {
        long_opts[i] = (struct option){ table[i].name,
                                        takes_value(&table[i]) ? required_argument
                                                               : no_argument,
                                        NULL, VAL_BASE + i };
        if (table[i].short_name) {
            short_opts[s++] = table[i].short_name;
            if (takes_value(&table[i]))
                short_opts[s++] = ':';
        }
    }
    short_opts[s] = '\0';
}

/* The table index of a getopt return value (long or short), or -1. */
static int index_of(int c)
{
    if (c >= VAL_BASE && c < VAL_BASE + NOPTS)
        return c - VAL_BASE;
    for (int i = 0; i < NOPTS; i++)
        if (c != 0 && table[i].short_name == c)
            return i;
    return -1;
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
        for (int i = 0; i < NOPTS; i++)
            if (strncmp(table[i].name, word + 2, n - 2) == 0)
                matches++;
    }
    if (matches < 2) {
        snprintf(err, errlen, "unknown option '%s' (try --help)", word);
        return;
    }
    off = (size_t)snprintf(err, errlen, "ambiguous option '%s' (could be", word);
    for (int i = 0; i < NOPTS && off < errlen; i++)
        if (strncmp(table[i].name, word + 2, n - 2) == 0)
            off += (size_t)snprintf(err + off, errlen - off, " --%s", table[i].name);
    if (off < errlen)
        snprintf(err + off, errlen - off, ")");
}

static void getopt_error(int c, int argc, char **argv, char *err, size_t errlen)
{
    int i;

    if (c == ':') {
        i = index_of(optopt);
        if (i >= 0 && optopt >= VAL_BASE)
            snprintf(err, errlen, "--%s: missing value", table[i].name);
        else
            snprintf(err, errlen, "-%c: missing value", optopt);
        return;
    }
    /* An unmatched long option has been stepped over whole. */
    if (optopt == 0 && optind > 0 && optind <= argc)
        unknown_long(argv[optind - 1], err, errlen);
    else if (optopt >= VAL_BASE && (i = index_of(optopt)) >= 0)
        snprintf(err, errlen, "--%s: takes no value", table[i].name);
    else if (optopt > 32 && optopt < 127)
        snprintf(err, errlen, "unknown option '-%c' (try --help)", optopt);
    else
        snprintf(err, errlen, "unknown option (try --help)");
}

static enum opts_result apply_argv(struct opts *o, struct parse_state *ps, int argc,
                                   char **argv, char *err, size_t errlen)
{
    build_getopt();
    /* optind = 0 makes glibc re-initialise getopt completely (including
     * the scan position inside grouped short options), so a second call
     * starts afresh; opterr = 0 keeps getopt itself silent. */
    optind = 0;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, short_opts, long_opts, NULL);
        int i;

        if (c == -1)
            break;
        i = index_of(c);
        if (i < 0) {
            getopt_error(c, argc, argv, err, errlen);
            return OPTS_ERROR;
        }
        if (table[i].type == T_HELP)
            return OPTS_HELP;
        if (table[i].type == T_VERSION)
            return OPTS_VERSION;
        if (apply_from(o, ps, SRC_ARGV, i, optarg, err, errlen) != 0)
            return OPTS_ERROR;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (stampd takes options only)",
                 argv[optind]);
        return OPTS_ERROR;
    }
    return OPTS_OK;
}

static enum opts_result parse(struct opts *o, int argc, char **argv, int ncpus,
                              const char *fname, const char *text, char *err,
                              size_t errlen)
{
    struct parse_state ps;
    enum opts_result r;
    char config[OPTS_PATH_MAX];

    memset(&ps, 0, sizeof(ps));
    set_defaults(o, ncpus);
    if (errlen > 0)
        err[0] = '\0';
    if (text && apply_file(o, &ps, fname, text, err, errlen) != 0)
        return OPTS_ERROR;
    r = apply_argv(o, &ps, argc, argv, err, errlen);
    if (r != OPTS_OK)
        return r;
    if (text) {
        /* The file named on the command line is the one read. */
        snprintf(config, sizeof(config), "%s", fname);
        memcpy(o->config, config, sizeof(config));
    }
    return check_combinations(o, err, errlen) == 0 ? OPTS_OK : OPTS_ERROR;
}

/* The message quotes the user's argument; a control byte in it (an LF from
 * a script's variable) must not split the promised single line. */
static enum opts_result one_line(enum opts_result r, char *err)
{
    if (r == OPTS_ERROR)
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    return r;
}

enum opts_result opts_parse(struct opts *o, int argc, char **argv, int ncpus,
                            char *err, size_t errlen)
{
    return one_line(parse(o, argc, argv, ncpus, NULL, NULL, err, errlen), err);
}

enum opts_result opts_parse_with_file(struct opts *o, int argc, char **argv,
                                      int ncpus, const char *fname,
                                      const char *text, char *err, size_t errlen)
{
    return one_line(parse(o, argc, argv, ncpus, fname, text ? text : "", err, errlen),
                    err);
}

/* --- --help ----------------------------------------------------------------------- */

#define HELP_COL 29

static const char usage_head[] =
    "Usage: stampd [OPTION]...\n"
    "Answer every line a client sends with the same line, prefixed with the\n"
    "server's time:  hello  ->  [Mon Sep  5 22:29:12 2016] hello\n"
    "\n"
    "ADDR is HOST:PORT (IPv4), [HOST]:PORT (IPv6), localhost:PORT, :PORT, PORT\n"
    "or unix:PATH.  Host names are not resolved.  Port 0 picks a free port.\n"
    "BYTES takes a k, m or g suffix (1024-based).  In --config FILE, write one\n"
    "option per line without the dashes (\"max-conns 20000\"); # starts a comment.\n";

static const char usage_tail[] =
    "\n"
    "Signals: TERM, INT or QUIT stop gracefully; HUP reloads --config; USR2\n"
    "upgrades the binary; USR1 reopens --log-file.  Exit status: 0 ok, 1 runtime\n"
    "error or connections cut at shutdown, 2 invalid options.\n";

static size_t help_entry(char *buf, size_t len, const struct opt_def *d)
{
    char left[96], metavar[64];
    size_t off = 0, w;
    const char *h = d->help;

    if (d->type == T_ENUM) {
        size_t m = 0;
        metavar[0] = '\0';
        for (int i = 0; d->names[i] && m < sizeof(metavar); i++)
            m += (size_t)snprintf(metavar + m, sizeof(metavar) - m, "%s%s",
                                  i ? "|" : "", d->names[i]);
    } else {
        snprintf(metavar, sizeof(metavar), "%s", d->metavar ? d->metavar : "");
    }
    if (d->short_name)
        w = (size_t)snprintf(left, sizeof(left), "  -%c, --%s%s%s", d->short_name,
                             d->name, metavar[0] ? " " : "", metavar);
    else
        w = (size_t)snprintf(left, sizeof(left), "  --%s%s%s", d->name,
                             metavar[0] ? " " : "", metavar);
    if (w + 1 < HELP_COL)
        off += (size_t)snprintf(buf + off, len - off, "%-*s", HELP_COL, left);
    else
        off += (size_t)snprintf(buf + off, len - off, "%s\n%*s", left, HELP_COL, "");
    while (off < len) {
        size_t n = strcspn(h, "\n");
        off += (size_t)snprintf(buf + off, len - off, "%.*s\n", (int)n, h);
        if (h[n] == '\0' || off >= len)
            break;
        h += n + 1;
        off += (size_t)snprintf(buf + off, len - off, "%*s", HELP_COL, "");
    }
    return off;
}

const char *opts_usage(void)
{
    static char text[8192];
    size_t off;

    if (text[0])
        return text;
    off = (size_t)snprintf(text, sizeof(text), "%s", usage_head);
    for (int i = 0; i < NOPTS && off < sizeof(text); i++) {
        if (table[i].section)
            off += (size_t)snprintf(text + off, sizeof(text) - off, "\n%s:\n",
                                    table[i].section);
        if (off < sizeof(text))
            off += help_entry(text + off, sizeof(text) - off, &table[i]);
    }
    if (off < sizeof(text))
        snprintf(text + off, sizeof(text) - off, "%s", usage_tail);
    return text;
}

/* --- the effective configuration ------------------------------------------------- */

#define ITEM_MAX 160

static void visit_one(const struct opts *o, const struct opt_def *d,
                      opts_visit_fn *fn, void *ctx)
{
    static char items[OPTS_MAX_ADDRS][ITEM_MAX];
    const char *ptrs[OPTS_MAX_ADDRS];
    char key[64];
    enum opts_kind kind = OPTS_NUMBER;
    int n = 1;

    snprintf(key, sizeof(key), "%s", d->name);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    for (int i = 0; i < OPTS_MAX_ADDRS; i++)
        ptrs[i] = items[i];
    switch (d->type) {
    case T_ADDRS:
        kind = OPTS_LIST;
        n = *COUNT(o, d);
        for (int i = 0; i < n; i++)
            addr_describe(&FIELD(o, d, const struct addr)[i], items[i], ITEM_MAX);
        break;
    case T_CIDRS:
        kind = OPTS_LIST;
        n = *COUNT(o, d);
        for (int i = 0; i < n; i++)
            snprintf(items[i], ITEM_MAX, "%s", FIELD(o, d, const struct cidr)[i].text);
        break;
    case T_ADMIN:
        kind = OPTS_STRING;
        snprintf(items[0], ITEM_MAX, "%s", o->admin_on ? o->admin.text : "off");
        break;
    case T_INT:
        snprintf(items[0], ITEM_MAX, "%d", *FIELD(o, d, const int));
        break;
    case T_UINT:
    case T_SECONDS:
        snprintf(items[0], ITEM_MAX, "%u", *FIELD(o, d, const unsigned));
        break;
    case T_SIZE:
        snprintf(items[0], ITEM_MAX, "%zu", *FIELD(o, d, const size_t));
        break;
    case T_DURATION: {
        uint64_t us = *FIELD(o, d, const uint64_t);
        snprintf(items[0], ITEM_MAX, "%llu.%06llu", (unsigned long long)(us / 1000000),
                 (unsigned long long)(us % 1000000));
        break;
    }
    case T_FLAG:
        kind = OPTS_BOOL;
        snprintf(items[0], ITEM_MAX, "%s", *FIELD(o, d, const int) ? "true" : "false");
        break;
    case T_ENUM:
        kind = OPTS_STRING;
        snprintf(items[0], ITEM_MAX, "%s", d->names[*FIELD(o, d, const int)]);
        break;
    case T_STRING:
        kind = OPTS_STRING;
        snprintf(items[0], ITEM_MAX, "%s",
                 (d->aux & STRING_SECRET) && *FIELD(o, d, const char) ?
                 "(set)" : FIELD(o, d, const char));
        break;
    default:
        return;
    }
    fn(ctx, key, kind, ptrs, n);
}

void opts_visit(const struct opts *o, opts_visit_fn *fn, void *ctx)
{
    for (int i = 0; i < NOPTS; i++)
        if (table[i].type != T_HELP && table[i].type != T_VERSION &&
            &table[i] != &table[index_of('t')])
            visit_one(o, &table[i], fn, ctx);
}
