"""The seed's example, end to end: one line in, one stamped line out."""
import socket

from conftest import recv_all, split_stamp


def test_hello_python(stampd):
    s = stampd()
    c = s.connect()
    c.sendall(b"hello python\n")
    c.shutdown(socket.SHUT_WR)
    data = recv_all(c)
    ts, rest = split_stamp(data)
    assert rest == b"hello python\n"
    assert s.stop() == 0
