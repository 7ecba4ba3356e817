/*
 * ctl.h - the pure half of stampctl: a small JSON reader, the admin page
 * HTTP response split, and the text it prints (summary, top table).  No
 * sockets, no clock: stampctl.c fetches, this file reads and renders, and
 * the unit tests feed it fixed pages.
 */
#ifndef STAMPD_CTL_H
#define STAMPD_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "sbuf.h"
#include "stats.h"

/* --- JSON ------------------------------------------------------------------
 * A parse is a flat array of tokens in document order (jsmn's idea); each
 * token knows where its subtree ends, so lookups skip whole values. */
enum json_type { JSON_OBJECT = 1, JSON_ARRAY, JSON_STRING, JSON_NUMBER,
                 JSON_LITERAL };

struct json_tok {
    enum json_type type;
    int start, end;   /* byte range in the source (strings: inside quotes) */
    int next;         /* index of the token after this value's subtree */
};

struct json {
    const char *src;
    struct json_tok *tok;
    int ntok, cap;
};

/* Parse src[0..len) (one value, surrounding blanks allowed).  0, or -1 on
 * malformed input, nesting deeper than 64 or out of memory. */
int json_parse(struct json *j, const char *src, size_t len);
void json_free(struct json *j);
/* Token index of member `key` of object `obj`, -1 if absent. */
int json_get(const struct json *j, int obj, const char *key);
/* Token index of element i of array `arr`, -1 if absent. */
int json_at(const struct json *j, int arr, int i);
/* A number token's value (dflt if tok < 0 or not a number). */
double json_num(const struct json *j, int tok, double dflt);
uint64_t json_u64(const struct json *j, int tok);
/* Copy a string token (dflt if absent); escapes are kept as they are. */
void json_str(const struct json *j, int tok, char *out, size_t len,
              const char *dflt);
/* 1 for a literal `true`. */
int json_true(const struct json *j, int tok);

/* --- HTTP ----------------------------------------------------------------- */

/* Split a whole HTTP/1.x response (read until EOF).  0 with the status
 * code and the body; -1 if the status line or head is malformed, or the
 * body is shorter than its Content-Length. */
int ctl_http_split(const char *buf, size_t len, int *status, const char **body,
                   size_t *body_len);

/* --- a /stats page, read ------------------------------------------------------- */

#define CTL_MAX_WORKERS 256
#define CTL_MAX_LISTENERS 64

/* A listening address: kind "line" (TCP), "unix" (the line protocol on a
 * unix socket), "http", "udp" or "admin"; the address with its ",proxy" /
 * ",chunk" suffixes.  From the page's "listeners" (with the figures summed
 * over the workers, see stats.h), the admin port from its "config". */
struct ctl_listener {
    char kind[8];
    char addr[ADDR_TEXT_MAX + 16];
    int has_figures;       /* 0: the admin port, or past the 16th listener */
    uint64_t active, accepted, requests, enforcements;
    char last_client[ADDR_PEER_MAX];    /* "" when none yet */
    char last_enforced[ADDR_PEER_MAX];
};

struct ctl_worker {
    struct stats_slot s;   /* counters, gauges, latency buckets, pid */
    int up;
    int64_t rss_bytes;     /* -1: unknown */
};

struct ctl_snap {
    char version[32];
    char poller[16];
    int64_t pid;
    double uptime_s;
    int draining;
    int nworkers;
    struct ctl_worker w[CTL_MAX_WORKERS];
    /* Config summary: */
    int nlisteners;
    struct ctl_listener l[CTL_MAX_LISTENERS];
    int64_t max_conns;
    /* The kernel's clock discipline, as the master last read it: */
    int clock_known;            /* /stats had "clock_synchronized" */
    int clock_synced;
    double clock_max_error_s, clock_est_error_s, clock_offset_s;
};

/* "clock synchronised, max error 12.5ms, estimated 250us, offset -1us" or
 * "clock UNSYNCHRONISED, ..." (no newline); "" when unknown. */
void ctl_fmt_clock(char *out, size_t len, const struct ctl_snap *s);

/* Fill *s from a /stats body.  0, or -1 with a reason in err. */
int ctl_snap_parse(struct ctl_snap *s, const char *body, size_t len, char *err,
                   size_t errlen);

/* --- rendering ------------------------------------------------------------- */

/* "850ns", "12.3us", "4.1ms", "1.20s". */
void ctl_fmt_ns(char *out, size_t len, uint64_t ns);
/* "up 3d04h05m", "up 1h02m03s", "up 12.3s" without "up". */
void ctl_fmt_uptime(char *out, size_t len, double s);

/* `stampctl stats`: the listeners, every figure of stats.h, totals, then a
 * line per worker. */
void ctl_render_stats(struct sbuf *b, const struct ctl_snap *s);

/* One `stampctl top` screen: rates between two snapshots `dt_s` seconds
 * apart; latency percentiles from the histogram buckets that filled in
 * between; then the request rate by protocol and a line per listener
 * (connections open, requests/s, enforcements in the interval, the last
 * client).  `clock`
 * is the wall time text for the title ("" for none). */
void ctl_render_top(struct sbuf *b, const struct ctl_snap *prev,
                    const struct ctl_snap *cur, double dt_s, const char *clock);

#endif
