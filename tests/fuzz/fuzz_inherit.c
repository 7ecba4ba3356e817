/*
 * fuzz_inherit.c - the $STAMPD_INHERIT parser (a new master reads it from
 * its environment) against its own formatter.
 *
 * The input, cut at its first NUL, is parsed; whatever parses is formatted
 * again entry by entry, and that text must parse to the same entries and
 * format to itself (a fixed point).  Any disagreement aborts, which
 * libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inherit.h"

static void format_all(const struct inherit_set *s, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < s->n; i++)
        if (inherit_format(buf, len, s->e[i].kind, s->e[i].shared, s->e[i].fds,
                           s->e[i].nfd) != 0)
            abort();
}

static int same(const struct inherit_set *a, const struct inherit_set *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++) {
        const struct inherited *x = &a->e[i], *y = &b->e[i];
        if (x->kind != y->kind || x->shared != y->shared || x->nfd != y->nfd ||
            memcmp(x->fds, y->fds, (size_t)x->nfd * sizeof(x->fds[0])) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct inherit_set a, b;
    /* Every fd fits in 8 digits and a comma; a kind and marks in 8. */
    static char text[INHERIT_MAX * (OPTS_MAX_WORKERS * 10 + 10)], again[sizeof(text)];
    char err[128];
    char *in = malloc(size + 1);

    if (!in)
        abort();
    memcpy(in, data, size);
    in[size] = '\0';
    if (inherit_parse(&a, in, err, sizeof(err)) == 0) {
        format_all(&a, text, sizeof(text));
        if (inherit_parse(&b, text, err, sizeof(err)) != 0 || !same(&a, &b))
            abort();
        format_all(&b, again, sizeof(again));
        if (strcmp(text, again) != 0)
            abort();
    } else if (err[0] == '\0') {
        abort();  /* an error always says why */
    }
    free(in);
    return 0;
}
