/*
 * test_kqueue_emu.c - the emulation against what kqueue(2) says, for the
 * features poller_kqueue.c relies on.  If the emulation drifted from the
 * man page, the backend's passing tests would prove nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static const struct timespec zero = { 0, 0 };
static const struct timespec second = { 1, 0 };

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void test_errors_as_receipts(void **state)
{
    struct kevent ch[3], ev[3];
    int kq = kqueue(), sv[2];
    (void)state;

    pair(sv);
    EV_SET(&ch[0], (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
    EV_SET(&ch[1], 100000, EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[2], (uintptr_t)sv[0], 99, EV_ADD, 0, 0, NULL);
    /* Room for them: each failure is an EV_ERROR entry, data = errno, and
     * the call returns them without waiting. */
    assert_int_equal(kevent(kq, ch, 3, ev, 3, NULL), 3);
    assert_int_equal(ev[0].flags, EV_ERROR);
    assert_int_equal(ev[0].data, ENOENT);
    assert_int_equal(ev[0].ident, (uintptr_t)sv[0]);
    assert_int_equal(ev[1].data, EBADF);
    assert_int_equal(ev[2].data, EINVAL);
    /* No room: -1 and errno. */
    assert_int_equal(kevent(kq, ch, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(kevent(-1, NULL, 0, ev, 1, &zero), -1);
    assert_int_equal(errno, EBADF);
    close(kq);
    close(sv[0]);
    close(sv[1]);
}

static void test_receipt_and_udata(void **state)
{
    struct kevent ch[2], ev[2];
    int kq = kqueue(), sv[2];
    (void)state;

    pair(sv);
    EV_SET(&ch[0], (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0,
           (void *)(uintptr_t)0xfeedface12345678ull);
    ch[0].ext[2] = 42;
    EV_SET(&ch[1], (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0,
           NULL);
    assert_int_equal(kevent(kq, ch, 2, ev, 2, NULL), 2);
    assert_int_equal(ev[0].flags, EV_ERROR);
    assert_int_equal(ev[0].data, 0);
    assert_int_equal(ev[1].data, 0);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    EV_SET(&ch[0], (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    /* Changes first, then events, one array for both. */
    assert_int_equal(kevent(kq, ch, 1, ch, 2, &second), 1);
    assert_int_equal(ch[0].filter, EVFILT_READ);
    assert_int_equal(ch[0].data, 5);
    assert_ptr_equal(ch[0].udata, (void *)(uintptr_t)0xfeedface12345678ull);
    assert_int_equal(ch[0].ext[2], 42);
    assert_int_equal(ch[0].flags & (EV_EOF | EV_ERROR), 0);
    close(kq);
    close(sv[0]);
    close(sv[1]);
}

static void test_eof_carries_error(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    struct linger lg = { 1, 0 };
    struct kevent ch, ev[2];
    int kq = kqueue(), l = socket(AF_INET, SOCK_STREAM, 0), c, s;
    (void)state;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    s = accept(l, NULL, NULL);
    EV_SET(&ch, (uintptr_t)s, EVFILT_READ, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), 0);
    /* FIN: EV_EOF, no error. */
    assert_int_equal(shutdown(c, SHUT_WR), 0);
    assert_int_equal(kevent(kq, NULL, 0, ev, 2, &second), 1);
    assert_true(ev[0].flags & EV_EOF);
    assert_int_equal(ev[0].fflags, 0);
    /* Reset: EV_EOF with the socket error in fflags (the kernel's: Linux
     * says EPIPE for a reset after the peer's FIN, ECONNRESET before). */
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(c);
    assert_int_equal(kevent(kq, NULL, 0, ev, 2, &second), 1);
    assert_true(ev[0].flags & EV_EOF);
    assert_true(ev[0].fflags == ECONNRESET || ev[0].fflags == EPIPE);
    /* Reported, not consumed: the next read still fails with it. */
    char b;
    assert_int_equal(read(s, &b, 1), -1);
    assert_int_equal(errno, (int)ev[0].fflags);
    close(kq);
    close(s);
    close(l);
}

static void test_close_deletes(void **state)
{
    struct kevent ch, ev;
    int kq = kqueue(), sv[2], sv2[2];
    (void)state;

    pair(sv);
    EV_SET(&ch, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), 0);
    int fd = sv[0];
    close(sv[0]);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 0);
    pair(sv2);
    assert_int_equal(sv2[0], fd);
    EV_SET(&ch, (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, ENOENT);
    close(kq);
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
}

static void test_enable_disable_oneshot(void **state)
{
    struct kevent ch, ev;
    int kq = kqueue(), sv[2];
    (void)state;

    pair(sv);
    EV_SET(&ch, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_DISABLE, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), 0);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 0);
    EV_SET(&ch, (uintptr_t)sv[0], EVFILT_WRITE, EV_ENABLE, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), 0);
    for (int i = 0; i < 2; i++) /* level-triggered */
        assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 1);
    EV_SET(&ch, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_ONESHOT, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ch, 1, NULL, 0, NULL), 0);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 1);
    assert_true(ev.flags & EV_ONESHOT);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 0);
    close(kq);
    close(sv[0]);
    close(sv[1]);
}

static void test_not_inherited(void **state)
{
    struct kevent ev;
    int kq = kqueue(), status;
    (void)state;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(kevent(kq, NULL, 0, &ev, 1, &zero) == -1 && errno == EBADF ? 0 : 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero), 0);
    close(kq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_as_receipts),
        cmocka_unit_test(test_receipt_and_udata),
        cmocka_unit_test(test_eof_carries_error),
        cmocka_unit_test(test_close_deletes),
        cmocka_unit_test(test_enable_disable_oneshot),
        cmocka_unit_test(test_not_inherited),
    };
    return cmocka_run_group_tests_name("kqueue emulation", tests, NULL, NULL);
}
