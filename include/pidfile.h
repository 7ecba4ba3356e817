/*
 * pidfile.h - the --pid-file: written once the sockets are bound, removed
 * at exit by the process it names and by no other (after a binary upgrade
 * the new master has rewritten it, and the old one must leave it alone).
 */
#ifndef STAMPD_PIDFILE_H
#define STAMPD_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* 0 when the file is absent, stale (its process is gone or not stampd) or
 * names `allowed` (the master handing over to us); -1 with "...: stampd is
 * running as pid N" in err when it names a live stampd. */
int pidfile_check(const char *path, pid_t allowed, char *err, size_t errlen);

/* Write our pid (to a temporary file renamed over path, so that a reader
 * never sees it half written).  0 or -errno. */
int pidfile_write(const char *path);

/* Remove path if it holds our pid. */
void pidfile_remove(const char *path);

#endif
