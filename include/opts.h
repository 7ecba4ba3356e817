/*
 * opts.h - the command line (pure: parsing fills a struct and an error
 * message; it prints and exits nothing, so it can be unit-tested).
 */
#ifndef STAMPD_OPTS_H
#define STAMPD_OPTS_H

#include <stddef.h>
#include "addr.h"
#include "clock.h"
#include "reply.h"

#define OPTS_MAX_ADDRS 16
#define OPTS_MAX_WORKERS 256

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct opts {
    struct addr listen[OPTS_MAX_ADDRS];
    int nlisten;
    struct addr udp[OPTS_MAX_ADDRS];
    int nudp;
    struct addr http[OPTS_MAX_ADDRS];
    int nhttp;
    struct addr admin;
    int admin_on;

    int workers;                /* >= 1 */
    int pin;                    /* --pin: worker i on CPU i */
    enum reply_mode reply;
    enum time_format time_format;

    size_t max_line;            /* bytes, terminator included */
    unsigned line_timeout;      /* seconds, 0 = never */
    unsigned max_conns;         /* per worker */
    unsigned idle_timeout;      /* seconds, 0 = never */
    size_t max_output;          /* bytes */
    unsigned shutdown_timeout;  /* seconds */
    enum log_level log_level;
};

enum opts_result {
    OPTS_OK = 0,
    OPTS_HELP,     /* --help: print opts_usage() to stdout, exit 0 */
    OPTS_VERSION,  /* --version */
    OPTS_ERROR,    /* err holds one line naming the option; exit 2 */
};

/* Fill defaults, then apply argv.  `ncpus` is the default worker count. */
enum opts_result opts_parse(struct opts *o, int argc, char **argv, int ncpus,
                            char *err, size_t errlen);

/* The --help text. */
const char *opts_usage(void);

/* Parse "123", "64k", "1m", "2g" (1024-based) into *out within [min, max].
 * 0 or -1. */
int opts_parse_size(const char *s, size_t min, size_t max, size_t *out);

#endif
