#!/usr/bin/env python3
"""Hostile-client recipes of issue 12, replayed from outside against a real `sts-broker serve`.

Each recipe starts its own broker (fresh data dir, loopback, a free port), attacks it the way the
issue describes, and meanwhile runs a well-behaved client that must keep being served. It prints
figures, not verdicts on timing: the broker's RSS (VmRSS from /proc, sampled every 50 ms) before,
at its peak and after; the slowest and the failed calls of the well-behaved client; what the
attacker was answered. SECURITY.md records a run. Every recipe is bounded in time and count.

    bash tests/outside/run.sh [recipe ...]      # builds the release binary, makes the venv

Recipes:
  r1  unauthenticated memory: N h2c connections x 256 streams, ~1 MiB of DATA each, no END_STREAM
  r1s the same with a valid `authorization` header (a known key), so the headers pass and only the
      body bounds (message size, global buffer budget) hold the memory
  r2  silent sockets: broker under `ulimit -n 256`, 300 silent TCP connections and 50 that send half
      an HTTP/2 preface, then fresh clients connect
  r3  policy-evaluation cost: two concurrent SimulateCustomPolicy callers with a 6,000-character
      wildcard pattern and 200,000-character resource ARNs (then the largest inputs that are accepted)
  r5  failed-authentication flood: h2load signed with an unknown AKIA key; audit rows before and after
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

import broker_harness as bh  # noqa: E402
import grpc  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402

GCI = "/sts.v1.SecurityTokenService/GetCallerIdentity"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(0.05)


class GoodClient(threading.Thread):
    """Calls GetCallerIdentity (a fresh channel each time when FRESH) and GET /healthz in turn."""

    def __init__(self, broker: bh.Broker, creds: bh.Creds, fresh: bool = False, pause: float = 0.1):
        super().__init__(daemon=True)
        self.broker, self.creds, self.fresh, self.pause = broker, creds, fresh, pause
        self.stop_flag = threading.Event()
        self.ok = self.failed = 0
        self.slowest = 0.0
        self.errors: list[str] = []

    def one_call(self):
        if self.fresh:
            ch = grpc.insecure_channel(self.broker.host, options=[("grpc.enable_http_proxy", 0)])
            try:
                body = bh.sts_pb2.GetCallerIdentityRequest().SerializeToString()
                md = bh.sign(self.broker.host, GCI, body, self.creds, "sts")
                ch.unary_unary(GCI, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)(body, metadata=md, timeout=5)
            finally:
                ch.close()
        else:
            self.broker.whoami(self.creds)
        status, _, _ = self.broker.http_get("/healthz", timeout=5)
        if status != 200:
            raise RuntimeError(f"/healthz answered {status}")

    def run(self):
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            try:
                self.one_call()
                self.ok += 1
            except Exception as e:  # counted and reported; the recipe goes on
                self.failed += 1
                if len(self.errors) < 3:
                    self.errors.append(f"{type(e).__name__}: {str(e)[:160]}")
            self.slowest = max(self.slowest, time.monotonic() - t0)
            time.sleep(self.pause)

    def report(self) -> str:
        s = f"good client: {self.ok} ok, {self.failed} failed, slowest {self.slowest * 1000:.0f} ms"
        return s + (f" ({'; '.join(self.errors)})" if self.errors else "")


def run_threads(n: int, target, args_of, join_timeout: float) -> None:
    """Runs N threads of TARGET (thread i gets ARGS_OF(i)) and waits for them, each at most JOIN_TIMEOUT."""
    threads = [threading.Thread(target=target, args=args_of(i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_timeout)


def start_broker(binary: str, work: str, name: str, extra_args: list[str] | None = None) -> bh.Broker:
    data = os.path.join(work, name)
    b = bh.Broker(binary, data, work)
    b.start()
    return b


def root_creds(b: bh.Broker) -> bh.Creds:
    return bh.Creds.from_shared_file(os.path.join(b.data_dir, "root-credentials"))


# --------------------------------------------------------------------------- r1


def flood_connection(port: int, seconds: float, streams: int, per_stream: int,
                     headers_extra: list[tuple[str, str]], tally: dict, lock: threading.Lock):
    """One h2c connection: opens up to STREAMS streams (as many at once as the server allows) and
    sends PER_STREAM bytes of DATA on each without END_STREAM, for at most SECONDS."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sent: dict[int, int] = {}
    opened = answered = 0
    statuses: dict[str, int] = {}
    chunk = b"\0" * 16384
    deadline = time.monotonic() + seconds
    closed = False
    while time.monotonic() < deadline and not closed:
        while opened < streams:
            try:
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "POST"), (":path", GCI), (":scheme", "http"),
                                        (":authority", f"127.0.0.1:{port}"),
                                        ("content-type", "application/grpc"), ("te", "trailers")]
                                  + headers_extra)
            except h2.exceptions.TooManyStreamsError:
                break
            sent[sid] = 0
            opened += 1
        for sid in list(sent):
            while sent[sid] < per_stream:
                try:
                    window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                except (h2.exceptions.StreamClosedError, KeyError):
                    break
                if window <= 0 or (sent[sid] == 0 and window < 5):
                    break
                data = chunk[:window]
                if sent[sid] == 0:
                    # A gRPC frame prefix announcing one message of the whole stream's size, so a
                    # server that waits for the message must hold everything that arrives.
                    data = b"\0" + (per_stream - 5).to_bytes(4, "big") + data[5:]
                conn.send_data(sid, data)
                sent[sid] += window
        try:
            sock.sendall(conn.data_to_send())
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                for k, v in ev.headers:
                    if k == "grpc-status":
                        statuses[v] = statuses.get(v, 0) + 1
            if isinstance(ev, h2.events.StreamReset):
                statuses["reset"] = statuses.get("reset", 0) + 1
            if isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                if ev.stream_id in sent:
                    del sent[ev.stream_id]
                    answered += 1
            if isinstance(ev, h2.events.ConnectionTerminated):
                closed = True
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            closed = True
    sock.close()
    with lock:
        tally["opened"] += opened
        tally["answered"] += answered
        for k, v in statuses.items():
            tally["statuses"][k] = tally["statuses"].get(k, 0) + v


def recipe_1(binary: str, work: str, connections: int, seconds: float, signed: bool) -> None:
    b = start_broker(binary, work, "r1s" if signed else "r1")
    try:
        creds = root_creds(b)
        extra: list[tuple[str, str]] = []
        if signed:
            # Headers that pass every header-only check: the root key, a fresh date, a signature
            # over some other body (it can only fail once the whole body has arrived).
            md = bh.sign(b.host, GCI, b"", creds, "sts")
            extra = [(k, v) for k, v in md]
        time.sleep(1)
        idle = rss_kib(b.proc.pid)
        sampler = RssSampler(b.proc.pid)
        sampler.start()
        # The well-behaved client is another principal: a known key may crowd out its own
        # principal's calls (README, "Limits"), nobody else's.
        b.iam("CreateUser", creds, user_name="bystander")
        key = b.iam("CreateAccessKey", creds, user_name="bystander").access_key
        good = GoodClient(b, bh.Creds(key.access_key_id, key.secret_access_key))
        good.start()
        tally = {"opened": 0, "answered": 0, "statuses": {}}
        lock = threading.Lock()
        run_threads(connections, flood_connection,
                    lambda _: (b.port, seconds, 256, 1 << 20, extra, tally, lock), seconds + 10)
        good.stop_flag.set()
        good.join(10)
        sampler.stop_flag.set()
        sampler.join(2)
        time.sleep(1)
        after = rss_kib(b.proc.pid)
        name = "r1s (signed headers)" if signed else "r1 (no authentication)"
        print(f"{name}: {connections} connections for {seconds:.0f} s; streams opened "
              f"{tally['opened']}, answered {tally['answered']}, grpc-status {tally['statuses']}")
        print(f"  broker RSS: idle {idle / 1024:.1f} MiB, peak {sampler.peak / 1024:.1f} MiB "
              f"(+{(sampler.peak - idle) / 1024:.1f}), after {after / 1024:.1f} MiB")
        print(f"  {good.report()}")
    finally:
        b.stop()


# --------------------------------------------------------------------------- r2


def recipe_2(binary: str, work: str, seconds: float) -> None:
    wrapper = os.path.join(work, "ulimit-256.sh")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nulimit -n 256\nexec "{binary}" "$@"\n')
    os.chmod(wrapper, 0o755)
    b = start_broker(wrapper, work, "r2")
    try:
        creds = root_creds(b)
        pid = b.proc.pid
        socks = []
        for i in range(350):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", b.port))
                if i >= 300:
                    s.sendall(b"PRI * HTTP/2.0\r\n")  # half a preface, then nothing
            except OSError:
                pass
            socks.append(s)
        time.sleep(0.5)
        fresh = GoodClient(b, creds, fresh=True, pause=0.2)
        fresh.start()
        time.sleep(seconds)
        fresh.stop_flag.set()
        fresh.join(10)

        def open_on_our_side():
            alive = 0
            for s in socks:
                try:
                    s.setblocking(False)
                    got = s.recv(1)
                    if got:
                        alive += 1  # answered something but did not close
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            return alive
        still = open_on_our_side()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        print(f"r2 (ulimit -n 256, 300 silent + 50 half-preface sockets): {still} of 350 still open "
              f"after {seconds:.0f} s; broker holds {fds} descriptors")
        print(f"  fresh clients (new channel each): {fresh.report()}")
        for s in socks:
            s.close()
    finally:
        b.stop()


# --------------------------------------------------------------------------- r3


def simulate_loop(b: bh.Broker, creds: bh.Creds, req, seconds: float, out: dict, key: str):
    deadline = time.monotonic() + seconds
    n, answers, slowest = 0, {}, 0.0
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            b.call(bh.IAM, "SimulateCustomPolicy", req, bh.iam_pb2.SimulatePolicyResponse, creds)
            a = "OK"
        except grpc.RpcError as e:
            err = bh.decode_error(e)
            a = f"{err.code.name}/{err.reason}"
        slowest = max(slowest, time.monotonic() - t0)
        answers[a] = answers.get(a, 0) + 1
        n += 1
    out[key] = (n, answers, slowest)


def recipe_3(binary: str, work: str, seconds: float) -> None:
    b = start_broker(binary, work, "r3")
    try:
        creds = root_creds(b)
        pattern = "arn:aws:s3:::*" + "a" * 6000 + "b"
        doc = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",'
               f'"Resource":"{pattern}"}}]}}')
        hostile = bh.iam_pb2.SimulateCustomPolicyRequest(
            policy_input_list=[doc], action_names=["s3:GetObject"],
            resource_arns=["arn:aws:s3:::" + "a" * 200_000, "arn:aws:s3:::" + "a" * 199_999])
        # The largest that is accepted: ARNs of 2,048 characters and a pattern of worst shape
        # (many stars) within a 6,144-character policy.
        stars = "arn:aws:s3:::" + "*a" * 1000 + "b"
        big_doc = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",'
                   f'"Resource":"{stars}"}}]}}')
        largest = bh.iam_pb2.SimulateCustomPolicyRequest(
            policy_input_list=[big_doc], action_names=["s3:GetObject"] * 10,
            resource_arns=["arn:aws:s3:::" + "a" * (2048 - 13)] * 10)
        for label, req in (("hostile (6,000-char pattern, 200,000-char ARNs)", hostile),
                           ("largest accepted (2,048-char ARNs, 1,000-star pattern, 10 x 10)", largest)):
            good = GoodClient(b, creds, pause=0.05)
            good.start()
            out: dict = {}
            run_threads(2, simulate_loop, lambda i: (b, creds, req, seconds, out, str(i)),
                        seconds + 60)
            good.stop_flag.set()
            good.join(10)
            calls = sum(v[0] for v in out.values())
            answers: dict = {}
            for v in out.values():
                for k, c in v[1].items():
                    answers[k] = answers.get(k, 0) + c
            slowest = max(v[2] for v in out.values())
            print(f"r3 {label}: 2 callers for {seconds:.0f} s made {calls} calls, answers {answers}, "
                  f"slowest {slowest * 1000:.0f} ms")
            print(f"  {good.report()}")
    finally:
        b.stop()


# --------------------------------------------------------------------------- r5


def audit_rows(data_dir: str) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'broker.db')}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT count(*) FROM audit").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        return rows, pages
    finally:
        db.close()


def recipe_5(binary: str, work: str, requests: int) -> None:
    if shutil.which("h2load") is None:
        print("r5: skipped, h2load not installed (Debian package nghttp2-client)")
        return
    b = start_broker(binary, work, "r5")
    try:
        creds = root_creds(b)
        unknown = bh.Creds("AKIA" + "Q" * 16, "x" * 40)
        body = bh.sts_pb2.GetCallerIdentityRequest().SerializeToString()
        frame = b"\0" + len(body).to_bytes(4, "big") + body
        body_file = os.path.join(work, "r5.body")
        with open(body_file, "wb") as f:
            f.write(frame)
        md = bh.sign(b.host, GCI, body, unknown, "sts")
        time.sleep(1.5)  # let start-up audit records land
        before_rows, before_bytes = audit_rows(b.data_dir)
        good = GoodClient(b, creds)
        good.start()
        cmd = ["h2load", "-n", str(requests), "-c", "4", "-m", "16", "-d", body_file,
               "-H", "content-type: application/grpc", "-H", "te: trailers"]
        for k, v in md:
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(f"http://{b.host}{GCI}")
        t0 = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
        good.stop_flag.set()
        good.join(10)
        time.sleep(62)  # past one aggregation interval, so its rows are written
        after_rows, after_bytes = audit_rows(b.data_dir)
        _, metrics, _ = b.http_get("/metrics")
        counted = [line for line in metrics.splitlines()
                   if line.startswith("sts_broker_failed_authentications_total")]
        summary = [line for line in res.stdout.splitlines() if line.startswith("requests:")]
        print(f"r5 (h2load, {requests} calls signed with an unknown key, {took:.1f} s): "
              f"{summary[0] if summary else res.stdout[-200:]}")
        print(f"  audit rows {before_rows} -> {after_rows} (+{after_rows - before_rows}); "
              f"database {before_bytes / 1024:.0f} KiB -> {after_bytes / 1024:.0f} KiB")
        print(f"  /metrics: {'; '.join(counted) if counted else '(no failed-authentication counter)'}")
        print(f"  {good.report()}")
    finally:
        b.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("recipes", nargs="*", default=["r1", "r1s", "r2", "r3", "r5"])
    args = ap.parse_args()
    bh.load_stubs(args.stubs)
    work = tempfile.mkdtemp(prefix="sts-outside-")
    try:
        for r in args.recipes:
            if r == "r1":
                recipe_1(args.broker, work, args.connections, args.seconds, signed=False)
            elif r == "r1s":
                recipe_1(args.broker, work, args.connections, args.seconds, signed=True)
            elif r == "r2":
                recipe_2(args.broker, work, args.seconds)
            elif r == "r3":
                recipe_3(args.broker, work, args.seconds)
            elif r == "r5":
                recipe_5(args.broker, work, args.requests)
            else:
                print(f"unknown recipe {r!r}", file=sys.stderr)
                return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
