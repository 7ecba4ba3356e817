/*
 * test_poller.c - conformance suite for poller.h, backend-neutral: it is
 * linked once per backend (tests/kqueue.mk: epoll natively, kqueue over the
 * test emulation on Linux or natively on a BSD) and must pass unchanged on
 * each.  Real descriptors only: socketpairs, pipes, loopback TCP.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "poller.h"

#define TAG(n) (0xfeedface00000000ull | (uint64_t)(n)) /* high bits set */
#define NMANY 500

struct seen {
    int n;          /* events for the tag */
    unsigned mask;  /* union of their masks */
    int other;      /* events for any other tag */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One poller_wait; what it reported for `tag`. */
static struct seen wait_for_tag(poller_t *p, uint64_t tag, int timeout_ms)
{
    struct poller_event ev[64];
    struct seen s = { 0, 0, 0 };
    int n = poller_wait(p, ev, 64, timeout_ms);

    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (ev[i].data == tag) {
            s.n++;
            s.mask |= ev[i].mask;
        } else {
            s.other++;
        }
        assert_true(ev[i].mask != 0);
        assert_true((ev[i].mask & ~(POLLER_READ | POLLER_WRITE)) == 0);
    }
    return s;
}

static void nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
}

/* A connected loopback TCP pair: c[0] the client, c[1] the accepted end. */
static void tcp_pair(int c[2])
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    c[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c[0], (struct sockaddr *)&a, sizeof(a)), 0);
    c[1] = accept(l, NULL, NULL);
    assert_true(c[1] >= 0);
    close(l);
    nonblock(c[1]);
}

static void fill(int fd)
{
    char buf[65536];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 10000; i++)
        if (write(fd, buf, sizeof(buf)) < 0) {
            assert_int_equal(errno, EAGAIN);
            return;
        }
    fail_msg("the buffer never filled");
}

static void drain(int fd)
{
    char buf[65536];
    for (int i = 0; i < 10000; i++)
        if (read(fd, buf, sizeof(buf)) <= 0)
            return;
}

static void test_backend_name(void **state)
{
    (void)state;
#if defined(POLLER_kqueue)
    assert_string_equal(poller_backend(), "kqueue");
#else
    assert_string_equal(poller_backend(), "epoll");
#endif
}

static void test_read_level_triggered(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    assert_non_null(p);
    pair(sv);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(1)), 0);
    assert_int_equal(wait_for_tag(p, TAG(1), 0).n, 0);
    assert_int_equal(write(sv[1], "abc", 3), 3);
    /* Not drained: reported on every wait, with the tag verbatim. */
    for (int i = 0; i < 3; i++) {
        struct seen s = wait_for_tag(p, TAG(1), 1000);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.mask, POLLER_READ);
        assert_int_equal(s.other, 0);
    }
    drain(sv[0]);
    assert_int_equal(wait_for_tag(p, TAG(1), 0).n, 0);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_readiness(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    pair(sv);
    assert_int_equal(poller_add(p, sv[0], POLLER_WRITE, TAG(2)), 0);
    struct seen s = wait_for_tag(p, TAG(2), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_WRITE);
    fill(sv[0]);
    assert_int_equal(wait_for_tag(p, TAG(2), 0).n, 0);
    drain(sv[1]);
    s = wait_for_tag(p, TAG(2), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_WRITE);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_modify(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(3)), 0);
    /* Both directions ready: one or two events, all with the new tag. */
    assert_int_equal(poller_mod(p, sv[0], POLLER_READ,
                                POLLER_READ | POLLER_WRITE, TAG(4)), 0);
    struct seen s = wait_for_tag(p, TAG(4), 1000);
    assert_in_range(s.n, 1, 2);
    assert_int_equal(s.mask, POLLER_READ | POLLER_WRITE);
    assert_int_equal(s.other, 0);
    /* Drop read interest: the pending byte is no longer reported. */
    assert_int_equal(poller_mod(p, sv[0], POLLER_READ | POLLER_WRITE,
                                POLLER_WRITE, TAG(5)), 0);
    s = wait_for_tag(p, TAG(5), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_WRITE);
    assert_int_equal(s.other, 0);
    /* To 0 unregisters, from 0 registers again. */
    assert_int_equal(poller_mod(p, sv[0], POLLER_WRITE, 0, 0), 0);
    s = wait_for_tag(p, TAG(5), 0);
    assert_int_equal(s.n + s.other, 0);
    assert_int_equal(poller_mod(p, sv[0], 0, POLLER_READ, TAG(6)), 0);
    s = wait_for_tag(p, TAG(6), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_READ);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_mod_equal_is_noop(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    /* No syscall: a bad descriptor cannot fail ... */
    assert_int_equal(poller_mod(p, -1, POLLER_READ, POLLER_READ, TAG(7)), 0);
    assert_int_equal(poller_mod(p, -1, 0, 0, 0), 0);
    /* ... and the registered tag is not replaced. */
    pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(8)), 0);
    assert_int_equal(poller_mod(p, sv[0], POLLER_READ, POLLER_READ, TAG(9)), 0);
    struct seen s = wait_for_tag(p, TAG(8), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.other, 0);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_delete(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ | POLLER_WRITE, TAG(10)), 0);
    assert_int_equal(poller_del(p, sv[0], POLLER_READ | POLLER_WRITE), 0);
    struct seen s = wait_for_tag(p, TAG(10), 0);
    assert_int_equal(s.n + s.other, 0);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(11)), 0);
    s = wait_for_tag(p, TAG(11), 1000);
    assert_int_equal(s.n, 1);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_bad_fd(void **state)
{
    int sv[2];
    poller_t *p = poller_create(16);
    (void)state;

    assert_int_equal(poller_add(p, -1, POLLER_READ, TAG(12)), -EBADF);
    pair(sv);
    close(sv[1]);
    assert_int_equal(poller_add(p, sv[1], POLLER_READ | POLLER_WRITE, TAG(12)),
                     -EBADF);
    /* The failed add left nothing behind that could report. */
    struct seen s = wait_for_tag(p, TAG(12), 0);
    assert_int_equal(s.n + s.other, 0);
    poller_destroy(p);
    close(sv[0]);
}

static void test_close_removes(void **state)
{
    int sv[2], sv2[2];
    poller_t *p = poller_create(16);
    (void)state;

    pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ | POLLER_WRITE, TAG(13)), 0);
    int fd = sv[0];
    close(sv[0]);
    struct seen s = wait_for_tag(p, TAG(13), 0);
    assert_int_equal(s.n + s.other, 0);
    /* The number comes back for a new descriptor: registering it is a fresh
     * registration (no EEXIST) and only the new tag is reported. */
    pair(sv2);
    assert_int_equal(sv2[0], fd);
    assert_int_equal(poller_add(p, sv2[0], POLLER_WRITE, TAG(14)), 0);
    s = wait_for_tag(p, TAG(14), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_WRITE);
    assert_int_equal(s.other, 0);
    poller_destroy(p);
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
}

static void test_eof_socketpair(void **state)
{
    int sv[2];
    char c;
    poller_t *p = poller_create(16);
    (void)state;

    pair(sv);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(15)), 0);
    close(sv[1]);
    for (int i = 0; i < 2; i++) { /* EOF is a level too */
        struct seen s = wait_for_tag(p, TAG(15), 1000);
        assert_int_equal(s.n, 1);
        assert_true(s.mask & POLLER_READ);
    }
    assert_int_equal(read(sv[0], &c, 1), 0);
    poller_destroy(p);
    close(sv[0]);
}

static void test_eof_pipe(void **state)
{
    int pf[2];
    char c;
    poller_t *p = poller_create(16);
    (void)state;

    assert_int_equal(pipe(pf), 0);
    nonblock(pf[0]);
    assert_int_equal(poller_add(p, pf[0], POLLER_READ, TAG(16)), 0);
    assert_int_equal(wait_for_tag(p, TAG(16), 0).n, 0);
    assert_int_equal(write(pf[1], "z", 1), 1);
    close(pf[1]);
    /* Data first, then EOF, on the same readiness. */
    struct seen s = wait_for_tag(p, TAG(16), 1000);
    assert_int_equal(s.n, 1);
    assert_true(s.mask & POLLER_READ);
    assert_int_equal(read(pf[0], &c, 1), 1);
    s = wait_for_tag(p, TAG(16), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(read(pf[0], &c, 1), 0);
    poller_destroy(p);
    close(pf[0]);
}

/* The reader of a pipe goes away: an error for the writer, both bits even
 * though only WRITE was registered. */
static void test_pipe_reader_gone(void **state)
{
    int pf[2];
    poller_t *p = poller_create(16);
    (void)state;

    assert_int_equal(pipe(pf), 0);
    nonblock(pf[1]);
    fill(pf[1]);
    assert_int_equal(poller_add(p, pf[1], POLLER_WRITE, TAG(17)), 0);
    assert_int_equal(wait_for_tag(p, TAG(17), 0).n, 0);
    close(pf[0]);
    struct seen s = wait_for_tag(p, TAG(17), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_READ | POLLER_WRITE);
    poller_destroy(p);
    close(pf[1]);
}

static void reset_by_peer(int client)
{
    struct linger lg = { 1, 0 };
    assert_int_equal(setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(client);
}

/* A reset is an error: READ|WRITE whatever was registered. */
static void test_tcp_reset(void **state)
{
    static const unsigned masks[] = { POLLER_READ, POLLER_WRITE,
                                      POLLER_READ | POLLER_WRITE };
    (void)state;

    for (size_t m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
        int c[2];
        poller_t *p = poller_create(16);
        tcp_pair(c);
        if (masks[m] & POLLER_WRITE)
            fill(c[1]);
        assert_int_equal(poller_add(p, c[1], masks[m], TAG(18)), 0);
        assert_int_equal(wait_for_tag(p, TAG(18), 0).n, 0);
        reset_by_peer(c[0]);
        struct seen s = wait_for_tag(p, TAG(18), 1000);
        assert_in_range(s.n, 1, 2);
        assert_int_equal(s.mask, POLLER_READ | POLLER_WRITE);
        poller_destroy(p);
        close(c[1]);
    }
}

/* The peer's FIN is not an error: READ only, and read() returns 0. */
static void test_tcp_half_close(void **state)
{
    int c[2];
    char b;
    poller_t *p = poller_create(16);
    (void)state;

    tcp_pair(c);
    assert_int_equal(poller_add(p, c[1], POLLER_READ, TAG(19)), 0);
    assert_int_equal(shutdown(c[0], SHUT_WR), 0);
    struct seen s = wait_for_tag(p, TAG(19), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_READ);
    assert_int_equal(read(c[1], &b, 1), 0);
    /* We can still answer: the write direction is open. */
    assert_int_equal(write(c[1], "y", 1), 1);
    assert_int_equal(read(c[0], &b, 1), 1);
    poller_destroy(p);
    close(c[0]);
    close(c[1]);
}

static void test_listener(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    poller_t *p = poller_create(16);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    (void)state;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    nonblock(l);
    assert_int_equal(poller_add(p, l, POLLER_READ, TAG(20)), 0);
    assert_int_equal(wait_for_tag(p, TAG(20), 0).n, 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    struct seen s = wait_for_tag(p, TAG(20), 1000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.mask, POLLER_READ);
    int fd = accept(l, NULL, NULL);
    assert_true(fd >= 0);
    assert_int_equal(wait_for_tag(p, TAG(20), 0).n, 0);
    poller_destroy(p);
    close(fd);
    close(c);
    close(l);
}

static void test_many_fds(void **state)
{
    static int sv[NMANY][2];
    static int seen[NMANY];
    struct poller_event ev[64];
    poller_t *p = poller_create(1024);
    int expected = 0, got = 0;
    (void)state;

    for (int i = 0; i < NMANY; i++) {
        pair(sv[i]);
        assert_int_equal(poller_add(p, sv[i][0], POLLER_READ, TAG(i)), 0);
        if (i % 3 == 0) {
            assert_int_equal(write(sv[i][1], "m", 1), 1);
            expected++;
        }
    }
    /* Small batches: never more than asked for; every ready fd is reached
     * (each handled one is drained), no other ever reported. */
    for (int round = 0; round < 100 && got < expected; round++) {
        int n = poller_wait(p, ev, 64, 1000);
        assert_in_range(n, 1, 64);
        for (int k = 0; k < n; k++) {
            uint64_t i = ev[k].data & 0xffffffffu;
            assert_int_equal(ev[k].data, TAG(i));
            assert_true(i < NMANY && i % 3 == 0);
            assert_int_equal(ev[k].mask, POLLER_READ);
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            got++;
            drain(sv[i][0]);
        }
    }
    assert_int_equal(got, expected);
    assert_int_equal(poller_wait(p, ev, 64, 0), 0);
    poller_destroy(p);
    for (int i = 0; i < NMANY; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

static void test_timeouts(void **state)
{
    struct poller_event ev[4];
    poller_t *p = poller_create(16);
    int sv[2];
    (void)state;

    pair(sv);
    assert_int_equal(poller_add(p, sv[0], POLLER_READ, TAG(21)), 0);
    int64_t t0 = now_ms();
    assert_int_equal(poller_wait(p, ev, 4, 0), 0);
    assert_true(now_ms() - t0 < 50);
    t0 = now_ms();
    assert_int_equal(poller_wait(p, ev, 4, 60), 0);
    int64_t took = now_ms() - t0;
    assert_true(took >= 59 && took < 1000);
    poller_destroy(p);
    close(sv[0]);
    close(sv[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_eintr(void **state)
{
    struct poller_event ev[4];
    struct sigaction sa, old;
    struct itimerval it = { { 0, 0 }, { 0, 20000 } };
    poller_t *p = poller_create(16);
    (void)state;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    int64_t t0 = now_ms();
    assert_int_equal(poller_wait(p, ev, 4, 3000), -EINTR);
    assert_true(now_ms() - t0 < 2000);
    sigaction(SIGALRM, &old, NULL);
    poller_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_name),
        cmocka_unit_test(test_read_level_triggered),
        cmocka_unit_test(test_write_readiness),
        cmocka_unit_test(test_modify),
        cmocka_unit_test(test_mod_equal_is_noop),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_bad_fd),
        cmocka_unit_test(test_close_removes),
        cmocka_unit_test(test_eof_socketpair),
        cmocka_unit_test(test_eof_pipe),
        cmocka_unit_test(test_pipe_reader_gone),
        cmocka_unit_test(test_tcp_reset),
        cmocka_unit_test(test_tcp_half_close),
        cmocka_unit_test(test_listener),
        cmocka_unit_test(test_many_fds),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_eintr),
    };
    return cmocka_run_group_tests_name(poller_backend(), tests, NULL, NULL);
}
