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

/* Per-listener options, written as ",WORD" suffixes after the address
 * ("0.0.0.0:8009,proxy,chunk").  Which ones an option accepts is the
 * caller's choice (opts.c). */
enum addr_flag {
    ADDR_PROXY = 1u << 0,  /* a PROXY protocol header comes first */
    ADDR_CHUNK = 1u << 1,  /* every read is one request (no line framing) */
    ADDR_OPERATOR = 1u << 2, /* replies typed by an operator (operator.h) */
};
#define ADDR_FLAG_NAMES { "proxy", "chunk", "operator" }
#define ADDR_NFLAGS 3

struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;                /* AF_INET, AF_INET6 or AF_UNIX */
    unsigned flags;            /* enum addr_flag */
    char text[ADDR_TEXT_MAX];  /* canonical form, for logs and errors
                                * (the address only, no suffixes) */
};

/* A client's address as stampd names it: "127.0.0.1:5000", "[::1]:5000",
 * "unix" (a unix-socket client); "?" for anything else.  ADDR_PEER_MAX
 * holds any of them. */
#define ADDR_PEER_MAX 64
void addr_peer_text(char *buf, size_t size, const struct sockaddr *sa);

/* 0 on success; -1 with a message in err (without the option name). */
int addr_parse(struct addr *a, const char *s, char *err, size_t errlen);

/* addr_parse() plus ",WORD" suffixes from `allowed` (enum addr_flag).
 * Suffixes are taken from the right while the last ",WORD" is a known
 * suffix, so a unix path may itself hold a comma ("unix:/tmp/a,b").  A
 * known suffix that the option does not take is an error. */
int addr_parse_listener(struct addr *a, const char *s, unsigned allowed,
                        char *err, size_t errlen);

/* "proxy", "chunk", "operator" (one flag) or NULL. */
const char *addr_flag_name(unsigned flag);

/* Write a->text followed by its suffixes ("127.0.0.1:8009,proxy"). */
void addr_describe(const struct addr *a, char *buf, size_t len);

/* An IPv4 or IPv6 network, "10.0.0.0/8", "::1/128", or one host
 * ("127.0.0.1" is 127.0.0.1/32). */
struct cidr {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char net[16];     /* network bytes, host bits cleared */
    unsigned bits;             /* prefix length */
    char text[64];             /* canonical "net/bits" */
};

/* 0 on success; -1 with a message in err (without the option name).  Host
 * bits set in the network ("10.0.0.1/8") are an error: a typo, usually. */
int cidr_parse(struct cidr *c, const char *s, char *err, size_t errlen);

/* 1 when sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * IPv4) lies inside c, else 0. */
int cidr_match(const struct cidr *c, const struct sockaddr *sa);

/* Refresh a->text from a->ss (after the kernel chose a port). */
void addr_format(struct addr *a);

int addr_port(const struct addr *a);
void addr_set_port(struct addr *a, int port);

#endif
