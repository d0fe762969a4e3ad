#!/usr/bin/env python3
"""Misbehaving HTTP clients for the manager's edge tests (http_limits.test.sh).

  flood HOST PORT SECONDS N MIB   N clients, each POSTing a MIB MiB body with no or
                                  an invalid token, again and again; counts the
                                  bodies cut off by the server and those it took
  slow HOST PORT SECONDS N        N clients trickling a request head, one byte
                                  a second each; reconnect when cut off
  hold HOST PORT N                open N connections, print "ready", stay until killed
  slowone HOST PORT MAX_S         one client trickling a head (a byte per 0.25 s):
                                  prints the seconds until the server closed, or "never"
  raw HOST PORT                   send stdin as is, print the response's status line
  pipeline HOST PORT TOKEN        three GETs in one write; prints the status codes answered
  tokens HOST PORT N [TOKEN]      N requests GET /v1/tasks, each with a fresh random
                                  token (or TOKEN every time): prints "STATUS COUNT" lines
  trickle HOST PORT N SECONDS     N connections each sending one byte of a request head
                                  a second, never reconnected; prints "open K" every
                                  second (K: those the server has not closed)
"""
import socket
import sys
import threading
import time


def connect(host, port, timeout=5.0):
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def flood(host, port, seconds, n, mib):
    deadline = time.time() + float(seconds)
    size = int(mib) << 20
    chunk = b"x" * 65536
    stats = {"heads": 0, "cut": 0, "completed": 0}
    lock = threading.Lock()

    def count(key):
        with lock:
            stats[key] += 1

    def one(i):
        while time.time() < deadline:
            auth = b"" if i % 2 else b"Authorization: Bearer not-a-token-%d\r\n" % i
            s = None
            try:
                s = connect(host, port)
                s.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          + auth + b"Content-Length: %d\r\n\r\n" % size)
                count("heads")
                left = size
                while left > 0 and time.time() < deadline:
                    s.sendall(chunk if left >= len(chunk) else chunk[:left])
                    left -= len(chunk)
                if left <= 0:
                    count("completed")  # the server took the whole body
            except OSError:
                count("cut")  # the server closed the connection under the body
                time.sleep(0.05)
            finally:
                if s:
                    s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(int(n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("flood", " ".join("%s=%d" % kv for kv in stats.items()))


def slow(host, port, seconds, n):
    deadline = time.time() + float(seconds)
    head = b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096 + b"\r\n\r\n"
    conns = []  # [socket, bytes sent]
    cut = 0

    def fresh():
        try:
            s = connect(host, port)
            s.setblocking(False)
            return [s, 0]
        except OSError:
            return None

    for _ in range(int(n)):
        c = fresh()
        if c:
            conns.append(c)
    while time.time() < deadline:
        for i, c in enumerate(conns):
            try:
                if c is None:
                    raise OSError
                try:
                    if c[0].recv(4096) == b"":
                        raise OSError  # the server closed it
                except BlockingIOError:
                    pass
                c[0].send(head[c[1] % len(head):][:1])
                c[1] += 1
            except OSError:
                cut += 1
                if c:
                    c[0].close()
                conns[i] = fresh()
        time.sleep(1)
    print("slow clients=%d cut=%d" % (len(conns), cut))


def hold(host, port, n):
    conns = [connect(host, port) for _ in range(int(n))]
    print("ready", len(conns), flush=True)
    while True:
        time.sleep(60)


def slowone(host, port, max_s):
    s = connect(host, port)
    s.setblocking(False)
    head = b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
    start = time.time()
    i = 0
    while time.time() - start < float(max_s):
        try:
            if s.recv(4096) == b"":
                break
        except BlockingIOError:
            pass
        except OSError:
            break
        try:
            s.send(head[i % len(head):][:1])
        except OSError:
            break
        i += 1
        time.sleep(0.25)
    else:
        print("never")
        return
    print("%.1f" % (time.time() - start))


def raw(host, port):
    s = connect(host, port)
    s.sendall(sys.stdin.buffer.read())
    s.settimeout(5)
    data = b""
    try:
        while b"\r\n" not in data:
            got = s.recv(4096)
            if not got:
                break
            data += got
    except OSError:
        pass
    print(data.split(b"\r\n")[0].decode(errors="replace") or "no answer")


def pipeline(host, port, token):
    req = b"GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n"
    s = connect(host, port)
    s.sendall(req * 3)
    s.settimeout(3)
    data = b""
    try:
        while data.count(b"HTTP/1.1 ") < 3:
            got = s.recv(65536)
            if not got:
                break
            data += got
    except OSError:
        pass
    print(" ".join(part[:3].decode() for part in data.split(b"HTTP/1.1 ")[1:]) or "none")


def tokens(host, port, n, token=None):
    import secrets
    seen = {}
    for _ in range(int(n)):
        tok = token or secrets.token_hex(16)
        s = connect(host, port)
        s.sendall(b"GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Authorization: Bearer " + tok.encode() + b"\r\n\r\n")
        line = s.makefile("rb").readline().split(b" ")
        status = line[1].decode() if len(line) > 1 else "none"
        seen[status] = seen.get(status, 0) + 1
        s.close()
    for status, count in sorted(seen.items()):
        print(status, count)


def trickle(host, port, n, seconds):
    head = b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096 + b"\r\n\r\n"
    conns = [connect(host, port) for _ in range(int(n))]
    for s in conns:
        s.setblocking(False)
    open_ = set(range(len(conns)))
    deadline = time.time() + float(seconds)
    sent = 0
    while time.time() < deadline:
        for i in list(open_):
            try:
                try:
                    if conns[i].recv(4096) == b"":
                        raise OSError  # closed by the server
                except BlockingIOError:
                    pass
                conns[i].send(head[sent:sent + 1])
            except OSError:
                open_.discard(i)
        sent += 1
        print("open %d" % len(open_), flush=True)
        time.sleep(1)
    for s in conns:
        s.close()


if __name__ == "__main__":
    modes = {"flood": flood, "slow": slow, "hold": hold, "slowone": slowone, "raw": raw, "tokens": tokens,
             "pipeline": pipeline, "trickle": trickle}
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]](*sys.argv[2:])
