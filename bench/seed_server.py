#!/usr/bin/python3
"""The seeds' design, as a benchmark peer: socketserver.ThreadingTCPServer,
one thread per connection, each line answered with "[" time.ctime() "] "
payload and the line's own terminator.

    seed_server.py HOST PORT
"""
import signal
import socketserver
import sys
import time


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            self.serve_lines()
        except (ConnectionError, OSError):
            pass  # the client went away mid-reply: nothing to answer

    def serve_lines(self):
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            if line.endswith(b"\r\n"):
                body, term = line[:-2], b"\r\n"
            elif line.endswith(b"\n"):
                body, term = line[:-1], b"\n"
            else:
                body, term = line, b"\n"
            # time.ctime() without an argument reads time(2), which on Linux
            # is the tick-granular coarse clock and can lag the real clock by
            # a few ms across a second boundary, breaking the freshness
            # bound (stampbench reports it as "stale"); pass time.time().
            stamp = time.ctime(time.time()).encode()
            self.wfile.write(b"[" + stamp + b"] " + body + term)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096


def main():
    server = Server((sys.argv[1], int(sys.argv[2])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
