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
/* The copied environment, still reachable after unsetenv() drops a string
 * from environ or setenv() replaces the array, so that LeakSanitizer does
 * not call it a leak (volatile: written only, the stores must stay). */
static char **volatile env_strings;
static char **volatile env_array;
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
    /* The strings lie back to back from argv[0] (getopt may have permuted
     * the pointers, not the strings); the environment's follow. */
    for (int i = 0; i < argc; i++)
        if (!end || argv[i] + strlen(argv[i]) > end)
            end = argv[i] + strlen(argv[i]);
    char *argv_end = end;
    for (int i = 0; environ && environ[i]; i++)
        if (environ[i] == end + 1)
            end = environ[i] + strlen(environ[i]);
    if (environ && end) {
        int n = 0;
        while (environ[n])
            n++;
        char **env = calloc((size_t)n + 1, sizeof(char *));
        int i = 0;
        while (env && i < n && (env[i] = strdup(environ[i])))
            i++;
        if (!env || i < n) {  /* out of memory: keep argv's span only */
            while (env && i > 0)
                free(env[--i]);
            free(env);
            end = argv_end;
        } else {
            char **copy = malloc(((size_t)n + 1) * sizeof(char *));
            if (copy)
                memcpy(copy, env, ((size_t)n + 1) * sizeof(char *));
            env_strings = copy;
            env_array = env;
            environ = env;
        }
    }
    title_start = argc > 0 ? argv[0] : NULL;
    title_end = end;
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
