/*
 * metrics.c - the admin pages (see metrics.h).  First cut: counters and
 * gauges per worker; the admin issue completes it.
 */
#include <string.h>

#include "metrics.h"

void metrics_render_prometheus(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;
    const char *prev = "";

#define ROW(f, m, ln, lv, h, suffix, type)                                     \
    if (strcmp(prev, m) != 0) {                                                \
        sbuf_printf(b, "# HELP stampd_%s%s %s\n# TYPE stampd_%s%s %s\n", m,    \
                    suffix, h, m, suffix, type);                               \
        prev = m;                                                              \
    }                                                                          \
    for (unsigned i = 0; i < t->nworkers; i++) {                               \
        const char *lname = ln, *lval = lv;                                    \
        sbuf_printf(b, "stampd_%s%s{worker=\"%u\"", m, suffix, i);             \
        if (lname)                                                             \
            sbuf_printf(b, ",%s=\"%s\"", lname, lval);                         \
        sbuf_printf(b, "} %llu\n",                                             \
                    (unsigned long long)STAT_GET(&t->slot[i], f));             \
    }
#define COUNTER(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "_total", "counter")
#define GAUGE(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "", "gauge")
    STATS_COUNTERS(COUNTER)
    STATS_GAUGES(GAUGE)
#undef COUNTER
#undef GAUGE
#undef ROW
}

void metrics_render_json(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;

    sbuf_printf(b, "{\"version\":\"");
    sbuf_json_str(b, in->version);
    sbuf_printf(b, "\",\"workers\":[");
    for (unsigned i = 0; i < t->nworkers; i++) {
        const char *sep = "";
        sbuf_printf(b, "%s{\"worker\":%u,\"pid\":%lld", i ? "," : "", i,
                    (long long)__atomic_load_n(&t->slot[i].pid, __ATOMIC_RELAXED));
#define FIELD(f, m, ln, lv, h) \
        sbuf_printf(b, ",\"%s\":%llu", #f, (unsigned long long)STAT_GET(&t->slot[i], f));
        STATS_COUNTERS(FIELD)
        STATS_GAUGES(FIELD)
#undef FIELD
        (void)sep;
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "]}\n");
}
