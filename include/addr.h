/*
 * addr.h - listen addresses as the command line spells them (pure parsing).
 *
 *   HOST:PORT      IPv4 literal, e.g. 0.0.0.0:8009, 127.0.0.1:0
 *   [HOST]:PORT    IPv6 literal, e.g. [::]:8009, [::1]:8009
 *   localhost:PORT 127.0.0.1
 *   :PORT, PORT    0.0.0.0:PORT
 *   unix:PATH      Unix stream socket
 * Port 0 asks the kernel for a free port (the log line names the one taken).
 */
#ifndef STAMPD_ADDR_H
#define STAMPD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 128

struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;                /* AF_INET, AF_INET6 or AF_UNIX */
    char text[ADDR_TEXT_MAX];  /* canonical form, for logs and errors */
};

/* 0 on success; -1 with a message in err (without the option name). */
int addr_parse(struct addr *a, const char *s, char *err, size_t errlen);

/* Refresh a->text from a->ss (after the kernel chose a port). */
void addr_format(struct addr *a);

int addr_port(const struct addr *a);
void addr_set_port(struct addr *a, int port);

#endif
