#!/usr/bin/env python3
"""Targets for the monitor probes (monitor.test.sh, tests/bench/probes.sh), on loopback.

  monitor_server.py [--tls CERT KEY]
  monitor_server.py --fast        (the bench's target: asyncio, every request
                                  answers 200 "ready"; prints "listening on PORT")

Prints "listening on HTTP_PORT HANG_PORT FULL_PORT" once they are bound (port 0: the
kernel picks). HTTP_PORT answers:
  /ok          200 "ready"
  /status/N    N "status N"
  /slow/MS     200 "slow" after MS milliseconds
  /big/MIB     200 with MIB MiB of "x", no Content-Length (the end is the close)
  /bigcl/MIB   the same with a Content-Length
HANG_PORT accepts connections (the kernel's backlog does) and never answers.
FULL_PORT's backlog is full (listen(0), one connection held): a connect to it
gets no answer at all (its SYN is dropped) until the prober gives up.
"""
import asyncio
import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def big(self, mib, with_length):
        self.send_response(200)
        if with_length:
            self.send_header("Content-Length", str(mib << 20))
        self.end_headers()
        chunk = b"x" * (1 << 16)
        try:
            for _ in range(mib * 16):
                self.wfile.write(chunk)
        except OSError:
            pass  # the prober stopped reading: expected

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] == "ok":
            self.reply(200, b"ready")
        elif parts[0] == "status":
            self.reply(int(parts[1]), b"status " + parts[1].encode())
        elif parts[0] == "slow":
            time.sleep(int(parts[1]) / 1000)
            self.reply(200, b"slow")
        elif parts[0] in ("big", "bigcl"):
            self.big(int(parts[1]), parts[0] == "bigcl")
        else:
            self.reply(404, b"no such path")

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen()'s backlog: 50 probes at once are not dropped SYNs


async def fast():
    """Every connection: read the head, answer 200 "ready", close."""
    async def serve(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nready")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    print("listening on %d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main():
    if sys.argv[1:] == ["--fast"]:
        asyncio.run(fast())
        return
    server = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(128)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    held = socket.create_connection(full.getsockname())  # fills the backlog
    print("listening on %d %d %d" % (server.server_address[1], hang.getsockname()[1], full.getsockname()[1]),
          flush=True)
    server.serve_forever()
    held.close()


if __name__ == "__main__":
    main()
