#!/usr/bin/env python3
"""A webhook receiver that verifies devsys deliveries (Standard Webhooks).

Python standard library only. It checks, in this order:
  1. webhook-id, webhook-timestamp and webhook-signature are present;
  2. the timestamp is within --tolerance seconds (default 300) of now: an old
     (or far future) delivery is rejected, so a captured request cannot be
     replayed later;
  3. one of the space-separated "v1,<base64>" signatures equals
     base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")) for one of our
     secrets (key = base64-decoded part after "whsec_"), compared in
     constant time;
  4. the webhook-id was not seen before: a replay inside the window is not
     processed again (answered 200 {"duplicate": true}: a sender that retries
     because our first answer was lost must not be told to keep trying).
Rejections are 400 with {"error": why}. Accepted deliveries are appended to
--log as JSON lines {"id", "timestamp", "body"} and answered 204.

  python3 webhook_receiver.py --port 8099 --secret whsec_... [--secret whsec_old]
  (or WEBHOOK_SECRETS="whsec_a whsec_b"); --port 0 picks a free port and
  prints "listening on 127.0.0.1:PORT". --status N answers every verified
  delivery with N instead (to see how a sender treats errors).
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


def key_of(secret):
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret)


def sign(key, msg_id, timestamp, body):
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify(keys, headers, body, tolerance, now=None):
    """Returns None when the delivery is authentic and fresh, else why not."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts_n = int(ts)
    except ValueError:
        return "webhook-timestamp is not an integer"
    now = time.time() if now is None else now
    if ts_n < now - tolerance:
        return "webhook-timestamp too old"
    if ts_n > now + tolerance:
        return "webhook-timestamp too far in the future"
    for key in keys:
        want = sign(key, msg_id, ts, body)
        for s in sigs.split(" "):
            version, _, value = s.partition(",")
            if version == "v1" and hmac.compare_digest(value, want):
                return None
    return "no valid signature"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, keys, tolerance, log_path, status):
        super().__init__(addr, Handler)
        self.keys, self.tolerance, self.log_path, self.status = keys, tolerance, log_path, status
        self.lock = threading.Lock()
        self.seen = {}  # webhook-id -> timestamp, kept for the tolerance window
        if log_path and os.path.exists(log_path):  # a restart still knows what it processed
            with open(log_path) as f:
                for line in f:
                    try:
                        d = json.loads(line)
                        self.seen[d["id"]] = int(d["timestamp"])
                    except (ValueError, KeyError):
                        pass

    def first_time(self, msg_id, ts):
        with self.lock:
            horizon = time.time() - 2 * self.tolerance
            for k in [k for k, t in self.seen.items() if t < horizon]:
                del self.seen[k]
            if msg_id in self.seen:
                return False
            self.seen[msg_id] = ts
            return True


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, obj=None):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            return self.answer(413, {"error": "body too large"})
        body = self.rfile.read(n)
        srv = self.server
        why = verify(srv.keys, self.headers, body, srv.tolerance)
        if why:
            return self.answer(400, {"error": why})
        if srv.status:
            return self.answer(srv.status, {"error": "told to answer %d" % srv.status})
        msg_id = self.headers["webhook-id"]
        if not srv.first_time(msg_id, int(self.headers["webhook-timestamp"])):
            return self.answer(200, {"duplicate": True})
        if srv.log_path:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            line = json.dumps({"id": msg_id, "timestamp": self.headers["webhook-timestamp"], "body": parsed})
            with srv.lock, open(srv.log_path, "a") as f:
                f.write(line + "\n")
        self.answer(204)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--secret", action="append", default=[], help="whsec_... (repeat for several)")
    p.add_argument("--tolerance", type=int, default=300, help="seconds a timestamp may be off (300)")
    p.add_argument("--log", help="append accepted deliveries here (JSON lines)")
    p.add_argument("--status", type=int, default=0, help="answer verified deliveries with this status")
    a = p.parse_args()
    secrets = a.secret or os.environ.get("WEBHOOK_SECRETS", "").split()
    if not secrets:
        p.error("no secret: give --secret whsec_... or WEBHOOK_SECRETS")
    srv = Receiver((a.host, a.port), [key_of(s) for s in secrets], a.tolerance, a.log, a.status)
    print("listening on %s:%d" % srv.server_address[:2], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
