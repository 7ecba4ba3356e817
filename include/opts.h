/*
 * opts.h - the options (pure: parsing fills a struct and an error message;
 * it prints, reads and exits nothing, so it can be unit-tested and fuzzed).
 *
 * Every option is one entry of one table in opts.c.  The table generates
 * the getopt list, --help, parsing and validation, the config-file reader
 * (one long option per line) and the option dump that /stats and /metrics
 * show.  Adding an option is one entry there and one field here.
 *
 * Sources, later ones winning: defaults, then --config FILE, then the
 * command line.  A repeatable option (--listen, --http, --udp,
 * --proxy-from) given in a later source replaces the whole list of the
 * earlier one, the way the first --listen replaces the default listener.
 */
#ifndef STAMPD_OPTS_H
#define STAMPD_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include "addr.h"
#include "clock.h"
#include "reply.h"

#define OPTS_MAX_ADDRS 16
#define OPTS_MAX_CIDRS 16
#define OPTS_MAX_WORKERS 256
#define OPTS_PATH_MAX 256       /* --config, --pid-file, --log-file */
#define OPTS_TEXT_MAX 256       /* --greeting */
#define OPTS_NAME_MAX 64        /* --user */
#define OPTS_TOKEN_MAX 128      /* --admin-token */
#define OPTS_FILE_MAX (1u << 20)/* largest config file read */

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct opts {
    /* Listeners.  addr.flags holds the ",proxy" / ",chunk" / ",operator"
     * suffixes. */
    struct addr listen[OPTS_MAX_ADDRS];
    int nlisten;
    struct addr udp[OPTS_MAX_ADDRS];
    int nudp;
    struct addr http[OPTS_MAX_ADDRS];
    int nhttp;
    struct addr admin;
    int admin_on;
    char admin_token[OPTS_TOKEN_MAX]; /* the console's secret; "" = none */
    struct cidr proxy_from[OPTS_MAX_CIDRS];  /* who may send a PROXY header */
    int nproxy_from;

    /* Processes. */
    int workers;                /* >= 1 */
    int pin;                    /* --pin: worker i on CPU i */
    unsigned shutdown_timeout;  /* seconds */
    unsigned drain_delay;       /* seconds between /readyz 503 and closing */
    unsigned worker_timeout;    /* seconds without a loop turn; 0 = never */
    int master_priority;        /* nice levels the master runs ahead of the workers */

    /* Replies. */
    enum reply_mode reply;
    enum time_format time_format;
    char greeting[OPTS_TEXT_MAX];  /* sent + LF on connect; "" = none */
    unsigned operator_queue;    /* client lines held per worker (operator.h) */

    /* Limits. */
    size_t max_line;            /* bytes, terminator included */
    unsigned line_timeout;      /* seconds, 0 = never */
    unsigned max_conns;         /* per worker */
    unsigned idle_timeout;      /* seconds, 0 = never */
    size_t max_output;          /* bytes */
    size_t max_buffered;        /* bytes of rings + held input per worker */

    /* Operations. */
    char config[OPTS_PATH_MAX]; /* --config FILE, "" = none */
    int check_config;           /* -t: check, try to bind, exit */
    char pid_file[OPTS_PATH_MAX];
    char user[OPTS_NAME_MAX];   /* "" = stay who we are */
    char log_file[OPTS_PATH_MAX];  /* "" = stderr */
    enum log_level log_level;
    int log_requests;           /* log every request (rate-limited) */
    uint64_t clock_max_error_us;/* warn above this kernel max error */
    int require_synced_clock;   /* /readyz fails while unsynchronised */
};

enum opts_result {
    OPTS_OK = 0,
    OPTS_HELP,     /* --help: print opts_usage() to stdout, exit 0 */
    OPTS_VERSION,  /* --version */
    OPTS_ERROR,    /* err holds one line naming the option; exit 2 */
};

/* Fill defaults, then apply argv.  `ncpus` is the default worker count.
 * A --config FILE is recorded in o->config but not read (see config.h). */
enum opts_result opts_parse(struct opts *o, int argc, char **argv, int ncpus,
                            char *err, size_t errlen);

/* Fill defaults, apply `text` (the contents of config file `fname`, NUL-
 * terminated), then argv.  Errors in the file are "FNAME:LINE: ...". */
enum opts_result opts_parse_with_file(struct opts *o, int argc, char **argv,
                                      int ncpus, const char *fname,
                                      const char *text, char *err,
                                      size_t errlen);

/* The --help text. */
const char *opts_usage(void);

/* Parse "123", "64k", "1m", "2g" (1024-based) into *out within [min, max].
 * 0 or -1. */
int opts_parse_size(const char *s, size_t min, size_t max, size_t *out);

/* The effective configuration, one call per option that has a value to
 * show (help, version and -t are left out).
 * `key` is the option name with '-' as '_'; `items` holds `n` values,
 * each formatted as text (n is 0 for an empty list); `kind` says how a
 * JSON or label writer should quote them. */
enum opts_kind { OPTS_NUMBER, OPTS_BOOL, OPTS_STRING, OPTS_LIST };
typedef void opts_visit_fn(void *ctx, const char *key, enum opts_kind kind,
                           const char *const *items, int n);
void opts_visit(const struct opts *o, opts_visit_fn *fn, void *ctx);

#endif
