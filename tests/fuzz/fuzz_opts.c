/*
 * fuzz_opts.c - opts_parse() on an argv built from the input: NUL bytes
 * separate the arguments; the first byte picks the CPU count.  The parser
 * must never crash, must fill err on OPTS_ERROR with one line, and a
 * successful parse must satisfy the documented invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int ncpus = 1 + data[0] % 64;
    char *copy = malloc(size);  /* size-1 bytes + a final NUL */
    if (!copy)
        abort();
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';

    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "stampd";
    for (size_t i = 0; i < size && argc < MAX_ARGS + 1;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;

    struct opts o;
    char err[256];
    err[0] = '\0';
    enum opts_result r = opts_parse(&o, argc, argv, ncpus, err, sizeof(err));
    switch (r) {
    case OPTS_OK:
        if (o.workers < 1 || o.workers > OPTS_MAX_WORKERS || o.max_line < 1 ||
            o.nlisten < 1 || o.nlisten > OPTS_MAX_ADDRS ||
            o.nudp > OPTS_MAX_ADDRS || o.nhttp > OPTS_MAX_ADDRS)
            abort();
        break;
    case OPTS_ERROR:
        if (err[0] == '\0' || strchr(err, '\n') || strlen(err) >= sizeof(err))
            abort();
        break;
    case OPTS_HELP:
    case OPTS_VERSION:
        break;
    default:
        abort();
    }
    free(copy);
    return 0;
}
