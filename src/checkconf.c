/*
 * checkconf.c - `stampd -t` (see checkconf.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "checkconf.h"
#include "compat.h"
#include "privs.h"

static int check_dir_of(const char *what, const char *path, char *err,
                        size_t errlen)
{
    char copy[OPTS_PATH_MAX + 8];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s %s: directory %s: %s", what, path, dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int check_addr(const char *opt, const struct addr *a, int type,
                      char *err, size_t errlen)
{
    int one = 1;

    if (a->family == AF_UNIX)
        return check_dir_of(opt, ((const struct sockaddr_un *)&a->ss)->sun_path,
                            err, errlen);
    int fd = compat_socket(a->family, type, 1);
    if (fd == -1) {
        snprintf(err, errlen, "%s %s: socket: %s", opt, a->text, strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    (void)compat_set_reuseport(fd);
    if (a->family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
        if (errno == EADDRINUSE)
            snprintf(err, errlen, "%s: address already in use: %s", opt, a->text);
        else
            snprintf(err, errlen, "%s: cannot bind %s: %s", opt, a->text,
                     strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int check_all(struct opts *o, char *err, size_t errlen)
{
    struct privs p;

    for (int i = 0; i < o->nlisten; i++)
        if (check_addr("--listen", &o->listen[i], SOCK_STREAM, err, errlen))
            return -1;
    for (int i = 0; i < o->nhttp; i++)
        if (check_addr("--http", &o->http[i], SOCK_STREAM, err, errlen))
            return -1;
    for (int i = 0; i < o->nudp; i++) {
        if (o->udp[i].family == AF_UNIX) {
            snprintf(err, errlen, "--udp: unix sockets are not supported: %s",
                     o->udp[i].text);
            return -1;
        }
        if (check_addr("--udp", &o->udp[i], SOCK_DGRAM, err, errlen))
            return -1;
    }
    if (o->admin_on && check_addr("--admin", &o->admin, SOCK_STREAM, err, errlen))
        return -1;
    if (privs_resolve(&p, o->user, err, errlen) != 0)
        return -1;
    if (o->pid_file[0] && check_dir_of("--pid-file", o->pid_file, err, errlen))
        return -1;
    if (o->log_file[0]) {
        int fd = open(o->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd == -1) {
            snprintf(err, errlen, "--log-file %s: %s", o->log_file, strerror(errno));
            return -1;
        }
        close(fd);
    }
    return 0;
}

int checkconf_run(struct opts *o)
{
    char err[512];

    if (check_all(o, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampd: %s\n", err);
        return 2;
    }
    printf("configuration ok\n");
    return 0;
}
