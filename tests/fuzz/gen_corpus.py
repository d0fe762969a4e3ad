#!/usr/bin/env python3
"""gen_corpus.py: writes the seed corpora under tests/fuzz/corpus/<fuzzer>/.

Seeds are small realistic inputs: valid specs of every kind with every field,
their msgpack forms, stream envelopes, delayed members, dead-letter replies
HTTP requests to every route and JUnit reports. Deterministic; rerun after a format change
and commit the result: python3 tests/fuzz/gen_corpus.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
TASK_ID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
OTHER_ID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"
TOKEN = "fuzz-admin-token"  # fuzz_http.c's admin token

RETRY = {"max_attempts": 5, "initial_s": 0.5, "factor": 2, "max_s": 60, "jitter": False,
         "permanent_exit_codes": [2, 126, 127]}
COMMON = {"queue": "build.fast-1", "name": "step one", "workdir": "/srv/app",
          "env": {"CI": "1", "PATH_EXTRA": "/opt/bin"}, "timeout_s": 30.5, "priority": -5,
          "tags": ["ci", "linux"], "resource_requirements": {"cpu": 2, "mem_mb": 512},
          "related_tasks": [OTHER_ID], "expected_artifacts": ["out/report.xml"],
          "retry_policy": RETRY, "idempotency_key": "build-42"}

SPECS = {
    "exec": dict(kind="exec", command=["make", "-j2", "test"], **COMMON),
    "coding": dict(kind="coding", command=["python3", "gen.py", "--lang=c"], **COMMON),
    "testing": dict(kind="testing", command=["meson", "test", "-C", "build"],
                    testing={"junit": ["build/meson-logs/testlog.junit.xml", "out/*.xml"],
                             "max_report_bytes": 1048576}, **COMMON),
    "deploy": dict(kind="deploy", deploy={"target": "staging", "image": "app:1.2"}, **COMMON),
    "monitor": dict(kind="monitor", monitor={"type": "http", "url": "https://127.0.0.1/healthz",
                                             "expect_status": [200, 204], "body_regex": "ready|ok",
                                             "max_latency_ms": 500, "cert_min_days": 14,
                                             "check": "site.health", "timeout_s": 2.5}, **COMMON),
    "monitor_log": {"kind": "monitor", "monitor": {"type": "log", "path": "/var/log/app.log",
                                                   "pattern": "ERROR|FATAL", "offset": 1024}},
    "monitor_dns": {"kind": "monitor", "monitor": {"type": "dns", "name": "localhost",
                                                   "expect": ["127.0.0.1", "::1"]}},
    "notify": dict(kind="notify", notify={"webhook": "http://127.0.0.1/hook", "text": "done \u00e9"},
                   **COMMON),
    "noop": {"kind": "noop", "sleep": {"ms": 0, "fail_first": 1, "fail_always": False}},
    "sleep": {"kind": "sleep", "queue": "slow", "sleep": {"ms": 250, "fail_always": True},
              "retry_policy": {"max_attempts": 1}},
    "pipeline": {"kind": "exec", "command": ["true"],
                 "next": [{"kind": "testing", "testing": {}}, {"kind": "notify", "notify": {}}]},
    "minimal": {"kind": "noop"},
}
# Near misses: each is rejected for one reason a message must name.
BAD_SPECS = [
    '{"kind":"exec"}', '{"kind":"rocket"}', '{"kind":"noop","queue":"a{b}"}',
    '{"kind":"noop","priority":1.5}', '{"kind":"noop","kind":"exec"}', '[{"kind":"noop"}]',
    '{"kind":"noop","retry_policy":{"max_attempts":0}}', '{"kind":"noop","env":{"1X":"a"}}',
    '{"kind":"exec","command":["a\\u0000b"]}', '{"kind":"noop","unknown":1}',
]


def pack(v):
    """msgpack encoding, as msgpack-c writes it (floats as float64)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            for fmt, tag in (("B", 0xcc), ("H", 0xcd), ("I", 0xce), ("Q", 0xcf)):
                if v < 1 << (8 * struct.calcsize(fmt)):
                    return bytes([tag]) + struct.pack(">" + fmt, v)
        for fmt, tag in (("b", 0xd0), ("h", 0xd1), ("i", 0xd2), ("q", 0xd3)):
            if v >= -(1 << (8 * struct.calcsize(fmt) - 1)):
                return bytes([tag]) + struct.pack(">" + fmt, v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        n = len(v)
        if n < 32:
            return bytes([0xa0 | n]) + v
        if n < 256:
            return b"\xd9" + bytes([n]) + v
        return b"\xda" + struct.pack(">H", n) + v
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def compact(spec):
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(spec, kind=None, attempt=0, enqueued_at=1700000000000, task_id=TASK_ID):
    """The v1 stream fields, as envelope_encode writes them."""
    return [(b"v", b"1"), (b"id", task_id.encode()), (b"kind", (kind or spec["kind"]).encode()),
            (b"attempt", str(attempt).encode()), (b"enqueued_at", str(enqueued_at).encode()),
            (b"spec", pack(spec))]


def envelope_input(fields):
    """fuzz_envelope's layout: count, then per field name length (1 byte),
    name, value length (2 bytes little-endian), value."""
    out = bytes([len(fields)])
    for name, val in fields:
        out += bytes([len(name)]) + name + struct.pack("<H", len(val)) + val
    return out


def resp(v):
    """RESP2 encoding of a reply (lists, bytes, None)."""
    if v is None:
        return b"$-1\r\n"
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(resp(x) for x in v)
    v = v if isinstance(v, bytes) else v.encode()
    return b"$%d\r\n" % len(v) + v + b"\r\n"


def http(method, path, body=b"", token=TOKEN, extra=()):
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    head += list(extra)
    if body:
        head.append("Content-Type: application/json")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body  # fuzz_http adds Content-Length


def write(fuzzer, name, data):
    d = os.path.join(OUT, fuzzer)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


JUNIT_DATA = os.path.join(HERE, "..", "data", "junit")


def junit_seeds():
    """fuzz_junit: the real reports of tests/data/junit and a few odd shapes."""
    for name in ["meson-testlog.junit.xml", "ctest-output-junit.xml", "pytest-xunit2.xml",
                 "surefire-flaky.xml", "go-junit-report.xml", "truncated.xml"]:
        with open(os.path.join(JUNIT_DATA, name), "rb") as f:
            write("fuzz_junit", name, f.read())
    write("fuzz_junit", "nested.xml", b'<testsuite><testsuite><testcase name="n" classname="c" time="x">'
          b'<error type="E"/></testcase></testsuite></testsuite>')
    write("fuzz_junit", "latin1.xml", b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<testsuite>'
          b'<testcase name="caf\xe9"><failure>\n\n  first line\nsecond</failure></testcase></testsuite>')


def pipeline_seeds():
    """fuzz_pipeline: the README's examples, every field, and each kind of refusal."""
    step = lambda needs=(), **kw: dict(needs=list(needs), spec=dict(kind="exec", command=["make", "test"]), **kw)
    docs = {
        "linear": {"name": "linear", "steps": {"build": step(), "test": step(["build"]),
                                                "deploy": step(["test"])}},
        "diamond": {"name": "diamond", "steps": {"a": step(), "b": step(["a"], shards=4), "c": step(["a"]),
                                                  "d": step(["b", "c"], **{"if": "always"})}},
        "matrix": {"name": "matrix", "steps": {"t": step(matrix={"os": ["linux", "bsd"], "py": [3, 3.5, True]},
                                                         shards=2),
                                                "fail": step(["t"], **{"if": "failure"})}},
        "full-spec": {"name": "full", "steps": {"s": {"spec": SPECS["testing"] | {"idempotency_key": None}}}},
        "cycle": {"name": "c", "steps": {"a": step(["c"]), "b": step(["a"]), "c": step(["b"])}},
        "unknown-need": {"name": "u", "steps": {"test": step(), "deploy": step(["tset"])}},
        "fanout-too-big": {"name": "f", "steps": {"a": step(shards=256, matrix={"v": [1, 2]})}},
        "bad-spec": {"name": "b", "steps": {"a": {"spec": {"kind": "exec", "next": []}}}},
    }
    for name, doc in docs.items():
        if name == "full-spec":
            doc["steps"]["s"]["spec"].pop("idempotency_key")
        write("fuzz_pipeline", name + ".json", compact(doc))
    write("fuzz_pipeline", "next-sugar.json", compact({"name": "n", "steps": {"main": step(), "next-1": step(["main"])}}))
    write("fuzz_http", "pipeline-submit", http("POST", "/v1/pipelines", compact(docs["diamond"])))
    write("fuzz_http", "pipeline-invalid", http("POST", "/v1/pipelines", compact(docs["cycle"])))
    write("fuzz_http", "pipeline-get", http("GET", "/v1/pipelines/" + TASK_ID))
    write("fuzz_http", "pipeline-list", http("GET", "/v1/pipelines?name=diamond&limit=5&after=1700000000000000_"
                                             + TASK_ID))
    write("fuzz_http", "pipeline-rerun", http("POST", f"/v1/pipelines/{TASK_ID}/rerun"))
    write("fuzz_http", "pipeline-cancel", http("POST", f"/v1/pipelines/{TASK_ID}/cancel"))
    write("fuzz_http", "pipeline-next", http("POST", "/v1/tasks", compact(SPECS["noop"] | {"next": [SPECS["noop"]]})))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    pipeline_seeds()
    for name, spec in SPECS.items():
        text = compact(spec)
        write("fuzz_spec", name + ".json", text)
        write("fuzz_mpack", name + ".mp", pack(spec))
        write("fuzz_envelope", name + ".env", envelope_input(envelope(spec, attempt=2)))
        write("fuzz_lua_entries", "pack-" + name, b"\x00" + text)
        fields = [x for f in envelope(spec, attempt=3, enqueued_at=0) for x in f]
        write("fuzz_lua_entries", "member-" + name, b"\x01" + pack(fields))
    for i, text in enumerate(BAD_SPECS):
        write("fuzz_spec", f"bad-{i}.json", text.encode())
    write("fuzz_spec", "pretty.json", json.dumps(SPECS["exec"], indent=2).encode())
    junit_seeds()

    # msgpack edge values: every header family once.
    edges = [pack([1, -1, 200, -200, 70000, -70000, 1 << 40, -(1 << 40), 1.5, None, True, False]),
             pack({"s" * 40: "x" * 300}), pack(list(range(20))),
             pack({str(i): i for i in range(20)}), b"\xca\x3f\xc0\x00\x00", b"\xdd\x00\x00\x00\x01\xa1a"]
    for i, e in enumerate(edges):
        write("fuzz_mpack", f"edge-{i}.mp", e)

    # Envelopes: hand-pushed JSON, unknown field, repeated field, bad values.
    spec = SPECS["minimal"]
    write("fuzz_envelope", "hand-pushed.env", envelope_input([(b"spec", compact(SPECS["sleep"]))]))
    write("fuzz_envelope", "unknown-field.env",
          envelope_input(envelope(spec) + [(b"trace", b"abc")]))
    write("fuzz_envelope", "repeated.env", envelope_input(envelope(spec) + [(b"kind", b"noop")]))
    write("fuzz_envelope", "bad-values.env",
          envelope_input([(b"v", b"2"), (b"id", b"not-a-uuid"), (b"attempt", b"-1"), (b"spec", b"\xc1")]))

    # Delayed members that the promote script must refuse, and dead letters.
    odd = [b"v", b"1", b"id"]
    write("fuzz_lua_entries", "member-odd", b"\x01" + pack(odd))
    write("fuzz_lua_entries", "member-number", b"\x01" + pack([b"v", 1]))
    write("fuzz_lua_entries", "member-trailing", b"\x01" + pack([b"v", b"1"]) + b"\xc0")
    write("fuzz_lua_entries", "member-bin", b"\x01\x92\xc4\x01v\xc4\x011")
    dead = [b"1700000000000-0", [b"id", TASK_ID, b"kind", b"exec", b"queue", b"exec", b"attempts", b"3",
                                 b"error", b"exit status 2", b"failed_at", b"2026-01-01T00:00:00Z",
                                 b"agent", b"agent-1", b"source", b"1699999999999-0",
                                 b"spec", compact(SPECS["exec"])]]
    write("fuzz_lua_entries", "dlq-entry", b"\x02" + resp(dead))
    write("fuzz_lua_entries", "dlq-page", b"\x02" + resp([dead, [b"1-1", [b"id", b"\xff\x00bad"]]]))
    write("fuzz_lua_entries", "dlq-odd", b"\x02" + resp([b"2-0", [b"entry_id", b"x", b"id", None, b"k"]]))

    # HTTP: the submit route in depth, and one request per other route.
    h = "fuzz_http"
    write(h, "submit-one", http("POST", "/v1/tasks", compact(SPECS["exec"])))
    write(h, "submit-batch", http("POST", "/v1/tasks", compact([SPECS["noop"], SPECS["sleep"],
                                                                SPECS["pipeline"]])))
    write(h, "submit-invalid", http("POST", "/v1/tasks", compact([SPECS["minimal"], {"kind": "exec"}])))
    write(h, "submit-badjson", http("POST", "/v1/tasks", b'{"kind":'))
    write(h, "submit-empty", http("POST", "/v1/tasks", b"[]"))
    write(h, "submit-token", http("POST", "/v1/tasks", compact(SPECS["noop"]), token="tok-operator"))
    write(h, "submit-noauth", http("POST", "/v1/tasks/", compact(SPECS["noop"]), token=None))
    write(h, "submit-length", b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          TOKEN.encode() + b"\r\nContent-Length: 17\r\n\r\n" + compact(SPECS["minimal"]))
    chunk = compact(SPECS["noop"])
    write(h, "submit-chunked", b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
          b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
    write(h, "submit-continue", http("POST", "/v1/tasks", compact(SPECS["noop"]),
                                     extra=["Expect: 100-continue", "Connection: close"]))
    write(h, "pipelined", http("GET", "/metrics", token=None) + http("GET", "/v1/tasks?limit=2&state=dead"))
    write(h, "list", http("GET", "/v1/tasks?state=queued&queue=exec&limit=10&after=1700000000000000_" + TASK_ID))
    write(h, "list-bad", http("GET", "/v1/tasks?limit=0&state=zzz"))
    write(h, "get", http("GET", "/v1/tasks/" + TASK_ID))
    write(h, "cancel", http("POST", f"/v1/tasks/{TASK_ID}/cancel"))
    write(h, "checkpoints", http("GET", f"/v1/tasks/{TASK_ID}/checkpoints?limit=5"))
    write(h, "report", http("GET", f"/v1/tasks/{TASK_ID}/report?format=summary"))
    write(h, "reports-latest", http("GET", "/v1/reports/latest?name=step%20one&format=xml"))
    write(h, "dlq", http("GET", "/v1/dlq"))
    write(h, "dlq-queue", http("GET", "/v1/dlq/exec?limit=3"))
    write(h, "dlq-show", http("GET", "/v1/dlq/exec/1700000000000-0"))
    write(h, "dlq-replay", http("POST", f"/v1/dlq/exec/{TASK_ID}/replay"))
    write(h, "dlq-replay-all", http("POST", "/v1/dlq/exec/replay"))
    write(h, "dlq-purge", http("DELETE", "/v1/dlq/exec"))
    write(h, "dlq-replay-filter", http("POST", "/v1/dlq/exec/replay?error=exit%20status%201&kind=exec&since=2026-12-02&limit=5"))
    write(h, "dlq-purge-filter", http("DELETE", "/v1/dlq/exec?error=disk%20full&limit=2"))
    write(h, "dlq-groups", http("GET", "/v1/dlq/exec/groups?since=1700000000"))
    write(h, "retry", http("POST", f"/v1/tasks/{TASK_ID}/retry"))
    write(h, "healthz", http("GET", "/healthz", token=None))
    write(h, "method", http("PUT", "/v1/tasks", b"{}"))
    # Regression: a path segment that is not UTF-8 quoted in an error message
    # made json_pack fail and reply_json crash on NULL.
    write(h, "regress-dlq-path-utf8", b"POST /v1/dlq/exec/01\xfe\xff-8a/replay HTTP/1.1\r\nHost: x\r\n"
          b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")


if __name__ == "__main__":
    main()
