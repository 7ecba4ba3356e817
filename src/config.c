/*
 * config.c - the options from the command line and the --config file (see
 * config.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* The whole file as one NUL-terminated string (caller frees), or NULL with
 * the reason in err. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *text = NULL;
    size_t len = 0;

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "--config: cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > OPTS_FILE_MAX) {
        snprintf(err, errlen, "--config: '%s' is not a regular file of at most %u bytes",
                 path, OPTS_FILE_MAX);
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        snprintf(err, errlen, "--config: out of memory reading '%s'", path);
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "--config: cannot read '%s': %s", path,
                     n < 0 ? strerror(errno) : "file shrank while read");
            free(text);
            text = NULL;
            goto out;
        }
        len += (size_t)n;
    }
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "--config: '%s' holds a NUL byte (not a text file)", path);
        free(text);
        text = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    return text;
}

enum opts_result config_load(struct opts *o, int argc, char **argv, int ncpus,
                             char *err, size_t errlen)
{
    enum opts_result r = opts_parse(o, argc, argv, ncpus, err, errlen);
    char path[OPTS_PATH_MAX];
    char *text;

    if (r != OPTS_OK || o->config[0] == '\0')
        return r;
    memcpy(path, o->config, sizeof(path));
    text = read_file(path, err, errlen);
    if (!text)
        return OPTS_ERROR;
    r = opts_parse_with_file(o, argc, argv, ncpus, path, text, err, errlen);
    free(text);
    return r;
}
