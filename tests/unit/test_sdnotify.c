/*
 * test_sdnotify.c - sd_notify messages, $NOTIFY_SOCKET addresses, the
 * watchdog and socket-activation variables, and the sender against a real
 * AF_UNIX datagram socket (a path and an abstract name) made here.
 */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

static void test_messages(void **state)
{
    (void)state;
    char buf[SDNOTIFY_MSG_MAX];
    assert_int_equal(sdnotify_fmt_reloading(buf, sizeof(buf), 1234567890123ull), 40);
    assert_string_equal(buf, "RELOADING=1\nMONOTONIC_USEC=1234567890123");
    sdnotify_fmt_status(buf, sizeof(buf), "120 connections, 5000 requests");
    assert_string_equal(buf, "STATUS=120 connections, 5000 requests");
    sdnotify_fmt_status(buf, sizeof(buf), "two\nlines\r\n");
    assert_string_equal(buf, "STATUS=two lines  ");
    sdnotify_fmt_mainpid(buf, sizeof(buf), 4242);
    assert_string_equal(buf, "MAINPID=4242");
    /* A long status is cut and still fits the message bound. */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int n = sdnotify_fmt_status(buf, sizeof(buf), big);
    assert_int_equal(n, 7 + SDNOTIFY_STATUS_MAX);
    assert_true(n < (int)sizeof(buf));
    assert_string_equal(SDNOTIFY_READY, "READY=1");
    assert_string_equal(SDNOTIFY_STOPPING, "STOPPING=1");
    assert_string_equal(SDNOTIFY_WATCHDOG, "WATCHDOG=1");
}

static void test_addr(void **state)
{
    (void)state;
    struct sockaddr_un sa;
    socklen_t len;
    size_t base = offsetof(struct sockaddr_un, sun_path);
    assert_int_equal(sdnotify_addr("/run/systemd/notify", &sa, &len), 0);
    assert_string_equal(sa.sun_path, "/run/systemd/notify");
    assert_int_equal(len, base + 20);
    assert_int_equal(sdnotify_addr("@stampd/notify", &sa, &len), 0);
    assert_memory_equal(sa.sun_path, "\0stampd/notify", 14);
    assert_int_equal(len, base + 14);
    assert_int_equal(sdnotify_addr("", &sa, &len), -1);
    assert_int_equal(sdnotify_addr("@", &sa, &len), -1);
    assert_int_equal(sdnotify_addr("run/notify", &sa, &len), -1);
    assert_int_equal(sdnotify_addr("vsock:2:1234", &sa, &len), -1);
    char path[120];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[107] = '\0';                       /* 107 bytes + NUL: fits */
    assert_int_equal(sdnotify_addr(path, &sa, &len), 0);
    path[107] = 'a';
    path[108] = '\0';
    assert_int_equal(sdnotify_addr(path, &sa, &len), -1);
    path[0] = '@';                          /* abstract: 108 bytes fit */
    assert_int_equal(sdnotify_addr(path, &sa, &len), 0);
    assert_int_equal(len, base + 108);
}

static void test_watchdog(void **state)
{
    (void)state;
    assert_int_equal(sdnotify_watchdog_usec(NULL, NULL, 10), 0);
    assert_int_equal(sdnotify_watchdog_usec("30000000", NULL, 10), 30000000);
    assert_int_equal(sdnotify_watchdog_usec("30000000", "10", 10), 30000000);
    assert_int_equal(sdnotify_watchdog_usec("30000000", "11", 10), 0);
    assert_int_equal(sdnotify_watchdog_usec("0", NULL, 10), -1);
    assert_int_equal(sdnotify_watchdog_usec("", NULL, 10), -1);
    assert_int_equal(sdnotify_watchdog_usec("12s", NULL, 10), -1);
    assert_int_equal(sdnotify_watchdog_usec("-5", NULL, 10), -1);
    assert_int_equal(sdnotify_watchdog_usec("99999999999999999999", NULL, 10), -1);
    assert_int_equal(sdnotify_watchdog_usec("5", "x", 10), -1);
}

static void test_listen_fds(void **state)
{
    (void)state;
    struct sdnotify_fd fds[4];
    char err[128];
    assert_int_equal(sdnotify_listen_fds(NULL, NULL, NULL, 77, fds, 4, err,
                                         sizeof(err)), 0);
    assert_int_equal(sdnotify_listen_fds("77", NULL, NULL, 77, fds, 4, err,
                                         sizeof(err)), 0);
    /* For another process (a parent that did not clear them). */
    assert_int_equal(sdnotify_listen_fds("76", "2", NULL, 77, fds, 4, err,
                                         sizeof(err)), 0);
    assert_int_equal(sdnotify_listen_fds("77", "3", "line:http:admin", 77, fds,
                                         4, err, sizeof(err)), 3);
    assert_int_equal(fds[0].fd, 3);
    assert_string_equal(fds[0].name, "line");
    assert_int_equal(fds[1].fd, 4);
    assert_string_equal(fds[1].name, "http");
    assert_int_equal(fds[2].fd, 5);
    assert_string_equal(fds[2].name, "admin");
    /* No names: "unknown", as sd_listen_fds_with_names() says. */
    assert_int_equal(sdnotify_listen_fds("77", "2", NULL, 77, fds, 4, err,
                                         sizeof(err)), 2);
    assert_string_equal(fds[1].name, "unknown");
    /* An empty name stays empty. */
    assert_int_equal(sdnotify_listen_fds("77", "2", "udp:", 77, fds, 4, err,
                                         sizeof(err)), 2);
    assert_string_equal(fds[0].name, "udp");
    assert_string_equal(fds[1].name, "");
}

static void test_listen_fds_errors(void **state)
{
    (void)state;
    struct sdnotify_fd fds[4];
    char err[128];
    static const struct { const char *pid, *n, *names, *why; } bad[] = {
        { "x", "1", NULL, "LISTEN_PID is not a process id" },
        { "77", "0", NULL, "LISTEN_FDS is not a positive number" },
        { "77", "1x", NULL, "LISTEN_FDS is not a positive number" },
        { "77", "5", NULL, "LISTEN_FDS: more sockets than stampd serves" },
        { "77", "2", "line", "LISTEN_FDNAMES does not name as many sockets "
                             "as LISTEN_FDS" },
        { "77", "2", "a:b:c", "LISTEN_FDNAMES does not name as many sockets "
                              "as LISTEN_FDS" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(sdnotify_listen_fds(bad[i].pid, bad[i].n, bad[i].names,
                                             77, fds, 4, err, sizeof(err)), -1);
        assert_string_equal(err, bad[i].why);
    }
    char names[300];
    memset(names, 'n', sizeof(names) - 1);
    names[sizeof(names) - 1] = '\0';
    assert_int_equal(sdnotify_listen_fds("77", "1", names, 77, fds, 4, err,
                                         sizeof(err)), -1);
    assert_string_equal(err, "LISTEN_FDNAMES: a name is too long");
}

/* A datagram socket bound at `spec` (path or @abstract) in this test. */
static int bound(const char *spec)
{
    struct sockaddr_un sa;
    socklen_t len;
    assert_int_equal(sdnotify_addr(spec, &sa, &len), 0);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[SDNOTIFY_MSG_MAX + 1];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    assert_int_equal(n, (ssize_t)strlen(want));
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_send_real_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/stampd-sdnotify-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = bound(path);

    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(sdnotify_send(SDNOTIFY_READY), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(sdnotify_send(SDNOTIFY_READY), 1);
    expect_datagram(fd, "READY=1");
    char msg[SDNOTIFY_MSG_MAX];
    sdnotify_fmt_reloading(msg, sizeof(msg), 42);
    assert_int_equal(sdnotify_send(msg), 1);
    expect_datagram(fd, "RELOADING=1\nMONOTONIC_USEC=42");

    /* The abstract namespace, named by pid so parallel runs differ. */
    char abs[64];
    snprintf(abs, sizeof(abs), "@stampd-test-%ld", (long)getpid());
    int afd = bound(abs);
    assert_int_equal(sdnotify_send_to(abs, SDNOTIFY_STOPPING), 1);
    expect_datagram(afd, "STOPPING=1");
    close(afd);

    /* Nobody listening any more: the error, not a crash or a signal. */
    close(fd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sdnotify_send(SDNOTIFY_WATCHDOG), -ENOENT);
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative", 1), 0);
    assert_int_equal(sdnotify_send(SDNOTIFY_WATCHDOG), -EINVAL);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_watchdog),
        cmocka_unit_test(test_listen_fds),
        cmocka_unit_test(test_listen_fds_errors),
        cmocka_unit_test(test_send_real_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
