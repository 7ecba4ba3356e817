/*
 * proctitle.h - the process title `ps` and /proc/PID/cmdline show
 * ("stampd: master", "stampd: worker 3"), written over the memory that held
 * argv and the environment, as nginx and PostgreSQL do (Linux reads
 * /proc/PID/cmdline from that memory).
 */
#ifndef STAMPD_PROCTITLE_H
#define STAMPD_PROCTITLE_H

/* Call once at start, before anything keeps pointers into argv or environ:
 * the environment is copied to the heap so that its area can hold the
 * title too.  argv itself stays readable until the first proctitle_set()
 * (callers that need it later keep a copy, see proctitle_saved_argv). */
void proctitle_init(int argc, char **argv);

/* A NULL-terminated copy of the original argv (for re-exec and reload). */
char **proctitle_saved_argv(void);
int proctitle_saved_argc(void);

/* Replace the title; a longer one is cut to the space available. */
void proctitle_set(const char *title);

#endif
