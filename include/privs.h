/*
 * privs.h - --user: who the workers run as.  The master resolves the name
 * before forking (getpwnam may read files and allocate) and stays as it
 * started, since a reload may bind new privileged ports; each worker drops
 * to the user once its sockets are in hand.
 */
#ifndef STAMPD_PRIVS_H
#define STAMPD_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

struct privs {
    int drop;          /* 1: change user in workers */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Decide from --user (`user`, "" when not given).  Started as root without
 * --user is refused: workers that face clients must not run as root by
 * accident, so running them as root takes `--user root`.  0 or -1 with a
 * message in err. */
int privs_resolve(struct privs *p, const char *user, char *err, size_t errlen);

/* In a worker: supplementary groups, gid, uid, in that order (after setuid
 * the others would be refused).  0 or -errno. */
int privs_drop(const struct privs *p);

#endif
