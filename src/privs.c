/*
 * privs.c - --user (see privs.h).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"

int privs_resolve(struct privs *p, const char *user, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (user[0] == '\0') {
        if (geteuid() == 0) {
            snprintf(err, errlen, "refusing to run workers as root: give "
                     "--user NAME (or --user root to run them as root)");
            return -1;
        }
        return 0;
    }
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "--user %s: %s", user,
                 errno ? strerror(errno) : "no such user");
        return -1;
    }
    if (pw->pw_uid == geteuid())
        return 0;  /* already that user (root included) */
    if (geteuid() != 0) {
        snprintf(err, errlen, "--user %s: only root can change user", user);
        return -1;
    }
    p->drop = 1;
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    snprintf(p->name, sizeof(p->name), "%s", user);
    return 0;
}

int privs_drop(const struct privs *p)
{
    if (!p->drop)
        return 0;
    if (initgroups(p->name, p->gid) == -1 || setgid(p->gid) == -1 ||
        setuid(p->uid) == -1)
        return -errno;
    /* Must not be able to get root back. */
    if (setuid(0) == 0)
        return -EPERM;
    return 0;
}
