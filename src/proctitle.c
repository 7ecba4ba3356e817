/*
 * proctitle.c - process titles (see proctitle.h).
 *
 * The kernel records where argv starts and where the environment ends; the
 * strings lie back to back between them.  Copying argv and environ to the
 * heap frees that whole span for a title, which is then written with NUL
 * padding so that no stale argument shows after it.
 */
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char *title_start, *title_end;
static char **saved_argv;
static int saved_argc;

void proctitle_init(int argc, char **argv)
{
    char *end = NULL;

    saved_argv = calloc((size_t)argc + 1, sizeof(char *));
    if (!saved_argv)
        return;
    for (int i = 0; i < argc; i++) {
        saved_argv[i] = strdup(argv[i]);
        if (!saved_argv[i])
            return;
    }
    saved_argc = argc;
    /* Only a contiguous run of strings can be reused. */
    for (int i = 0; i < argc; i++)
        if (!end || argv[i] == end + 1)
            end = argv[i] + strlen(argv[i]);
    for (int i = 0; environ && environ[i]; i++)
        if (environ[i] == end + 1)
            end = environ[i] + strlen(environ[i]);
    if (environ && end) {
        int n = 0;
        while (environ[n])
            n++;
        char **env = calloc((size_t)n + 1, sizeof(char *));
        if (!env)
            return;
        for (int i = 0; i < n; i++)
            if (!(env[i] = strdup(environ[i])))
                return;
        environ = env;
    }
    title_start = argc > 0 ? argv[0] : NULL;
    title_end = end;
    for (int i = 1; i < argc; i++)
        argv[i] = NULL;
}

char **proctitle_saved_argv(void)
{
    return saved_argv;
}

int proctitle_saved_argc(void)
{
    return saved_argc;
}

void proctitle_set(const char *title)
{
    if (!title_start || title_end <= title_start)
        return;
    size_t room = (size_t)(title_end - title_start);
    size_t len = strlen(title);
    if (len > room)
        len = room;
    memcpy(title_start, title, len);
    memset(title_start + len, 0, room - len + 1);
}
