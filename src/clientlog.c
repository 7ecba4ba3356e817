/*
 * clientlog.c - rate-limited log lines that name a client (clientlog.h).
 *
 * The limiters are per process: a worker is one process with one thread,
 * so this state is the worker's own.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "clientlog.h"
#include "clock.h"
#include "log.h"
#include "ratelimit.h"

static struct ratelimit enforce_rl = { CLIENTLOG_ENFORCE_PER_S,
                                       RATELIMIT_WINDOW_MS, 0, 0, 0, 0 };
static struct ratelimit request_rl = { CLIENTLOG_REQUESTS_PER_S,
                                       RATELIMIT_WINDOW_MS, 0, 0, 0, 0 };

static uint64_t now_ms(void)
{
    return (uint64_t)clock_mono_ms();
}

static void summary(uint64_t n)
{
    char buf[RATELIMIT_SUMMARY_MAX];
    if (n && ratelimit_format(buf, sizeof(buf), n) > 0)
        log_info("%s", buf);
}

int clientlog_allow(enum clientlog_kind kind)
{
    struct ratelimit *rl = kind == CLIENTLOG_ENFORCE ? &enforce_rl : &request_rl;
    uint64_t dropped = 0;
    int ok = ratelimit_allow(rl, now_ms(), &dropped);
    summary(dropped);
    return ok;
}

void clientlog_tick(int64_t now)
{
    if (now < 0)
        return;
    summary(ratelimit_flush(&enforce_rl, (uint64_t)now));
    summary(ratelimit_flush(&request_rl, (uint64_t)now));
}

void clientlog_enforce(const char *what, const struct sockaddr *client,
                       const struct addr *listener)
{
    char who[CLIENTLOG_ADDR_MAX], on[ADDR_TEXT_MAX + 32];

    addr_peer_text(who, sizeof(who), client);
    addr_describe(listener, on, sizeof(on));
    log_info("%s: client %s on %s", what, who, on);
}

/* Printable ASCII as is, the rest escaped; stops before overflowing. */
static void escape(char *dst, size_t size, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e = ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch == '\t' ? 't' :
                 ch == '\\' ? '\\' : ch == '"' ? '"' : 0;
        if (e) {
            dst[o++] = '\\';
            dst[o++] = e;
        } else if (ch < 0x20 || ch >= 0x7f) {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[ch >> 4];
            dst[o++] = hex[ch & 15];
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o] = '\0';
}

void clientlog_request(const struct sockaddr *client,
                       const struct addr *listener, const char *payload,
                       size_t len)
{
    char who[CLIENTLOG_ADDR_MAX], on[ADDR_TEXT_MAX + 32];
    char text[CLIENTLOG_PAYLOAD_MAX * 4 + 8];

    addr_peer_text(who, sizeof(who), client);
    addr_describe(listener, on, sizeof(on));
    if (!payload) {
        log_info("request from %s on %s", who, on);
        return;
    }
    escape(text, sizeof(text), payload,
           len < CLIENTLOG_PAYLOAD_MAX ? len : CLIENTLOG_PAYLOAD_MAX);
    log_info("request from %s on %s: \"%s\"%s", who, on, text,
             len > CLIENTLOG_PAYLOAD_MAX ? " (cut)" : "");
}
