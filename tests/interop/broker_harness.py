#!/usr/bin/env python3
"""Shared harness of the cross-language conformance checks (tests/interop/check_*.py).

Everything a check script needs to drive a real `sts-broker serve` from Python as a new user
would: the protoc-generated stubs, botocore's SigV4 signer for gRPC metadata, decoding of
google.rpc.ErrorInfo from grpc-status-details-bin, the broker process itself, and the
PASS/FAIL runner with the common command line and final `N passed, M failed` line (run_main).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Optional
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

REGION = "us-east-1"
CALL_TIMEOUT = 15.0  # seconds, per RPC
START_TIMEOUT = 60.0  # seconds until /healthz must answer
STOP_TIMEOUT = 10.0  # seconds a SIGTERM'd broker has to exit

ACCOUNT_RE = re.compile(r"^\d{12}$")
AKIA_RE = re.compile(r"^AKIA[A-Z2-7]{16}$")

# Filled by load_stubs().
sts_pb2 = iam_pb2 = authz_pb2 = None

STS = "sts.v1.SecurityTokenService"
IAM = "iam.v1.IamService"
AUTHZ = "authz.v1.AuthorizationService"


def load_stubs(stub_dir: str, into: Optional[dict] = None) -> None:
    """Imports the protoc-generated modules from STUB_DIR (laid out as proto/: sts/v1/sts_pb2.py ...).

    Binds sts_pb2/iam_pb2/authz_pb2 here and, if given, in INTO (a check script's globals(), whose
    `from broker_harness import ...` copied the names while they were still None).
    """
    global sts_pb2, iam_pb2, authz_pb2
    sys.path.insert(0, os.path.abspath(stub_dir))
    from authz.v1 import authz_pb2 as a  # noqa: E402
    from iam.v1 import iam_pb2 as i  # noqa: E402
    from sts.v1 import sts_pb2 as s  # noqa: E402

    sts_pb2, iam_pb2, authz_pb2 = s, i, a
    if into is not None:
        into.update(sts_pb2=s, iam_pb2=i, authz_pb2=a)


# --------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: Optional[str] = None

    @classmethod
    def from_shared_file(cls, path: str, profile: str = "default") -> "Creds":
        import configparser

        cp = configparser.ConfigParser()
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
        sec = cp[profile]
        return cls(sec["aws_access_key_id"].strip(), sec["aws_secret_access_key"].strip(),
                   sec.get("aws_session_token"))


def signing_service(grpc_service: str) -> str:
    """SigV4 service name for a gRPC service (README: 'How a call is authenticated')."""
    return "iam" if grpc_service.startswith("iam.") else "sts"


@contextlib.contextmanager
def botocore_clock(offset: datetime.timedelta):
    """Makes botocore's SigV4 signer see a clock shifted by OFFSET.

    botocore >= 1.28-ish reads the time through `botocore.auth.get_current_datetime`; older ones call
    `datetime.datetime.utcnow()` on the `datetime` module imported into botocore.auth.
    """
    if hasattr(botocore.auth, "get_current_datetime"):
        real = botocore.auth.get_current_datetime

        def shifted(*args, **kwargs):
            return real(*args, **kwargs) + offset

        with mock.patch.object(botocore.auth, "get_current_datetime", shifted):
            yield
    else:  # pragma: no cover - older botocore
        real_dt = datetime.datetime

        class ShiftedDatetime(real_dt):
            @classmethod
            def utcnow(cls):
                return real_dt.utcnow() + offset

            @classmethod
            def now(cls, tz=None):
                return real_dt.now(tz) + offset

        fake_module = mock.MagicMock(wraps=datetime)
        fake_module.datetime = ShiftedDatetime
        with mock.patch.object(botocore.auth, "datetime", fake_module):
            yield


def sign(host: str, path: str, body: bytes, creds: Creds, service: str, region: str = REGION,
         clock_offset: Optional[datetime.timedelta] = None) -> list[tuple[str, str]]:
    """SigV4 headers for a gRPC call, as lowercase gRPC metadata (README: 'How a call is authenticated')."""
    req = botocore.awsrequest.AWSRequest(method="POST", url=f"http://{host}{path}", data=body)
    bc = botocore.credentials.Credentials(creds.access_key_id, creds.secret_access_key,
                                          creds.session_token)
    signer = botocore.auth.SigV4Auth(bc, service, region)
    with botocore_clock(clock_offset) if clock_offset else contextlib.nullcontext():
        signer.add_auth(req)
    md = [("authorization", req.headers["Authorization"]), ("x-amz-date", req.headers["X-Amz-Date"])]
    if "X-Amz-Security-Token" in req.headers:
        md.append(("x-amz-security-token", req.headers["X-Amz-Security-Token"]))
    return md


def md_get(md: list[tuple[str, str]], key: str) -> str:
    return next(v for k, v in md if k == key)


def md_replace(md: list[tuple[str, str]], key: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == key else v) for k, v in md]


def tamper_signature(md: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Changes one hex character of `Signature=` in the authorization metadata."""
    auth = md_get(md, "authorization")
    m = re.search(r"Signature=([0-9a-f]{64})", auth)
    assert m, f"no Signature= in {auth!r}"
    i = m.start(1) + 10
    flipped = "1" if auth[i] != "1" else "2"
    return md_replace(md, "authorization", auth[:i] + flipped + auth[i + 1:])


# --------------------------------------------------------------------------- errors


class CheckFailed(AssertionError):
    pass


@dataclass
class RpcErr:
    code: grpc.StatusCode
    message: str
    reason: Optional[str]
    domain: Optional[str]

    def __str__(self) -> str:
        return f"{self.code.name} reason={self.reason} domain={self.domain} message={self.message!r}"


def decode_error(err: grpc.RpcError) -> RpcErr:
    """The gRPC status plus the google.rpc.ErrorInfo from grpc-status-details-bin (the error model of src/grpc/status.rs)."""
    reason = domain = None
    status = rpc_status.from_call(err)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain = info.reason, info.domain
                break
    return RpcErr(err.code(), err.details() or "", reason, domain)


def expect_error(code: grpc.StatusCode, reason: str, fn: Callable[[], object],
                 message_contains: Optional[str] = None) -> RpcErr:
    """Runs FN, which must fail with CODE and an ErrorInfo(reason=REASON, domain=sts-broker)."""
    try:
        got = fn()
    except grpc.RpcError as err:
        e = decode_error(err)
        problems = []
        if e.code != code:
            problems.append(f"code {e.code.name} != {code.name}")
        if e.reason != reason:
            problems.append(f"reason {e.reason!r} != {reason!r}")
        if e.domain != "sts-broker":
            problems.append(f"domain {e.domain!r} != 'sts-broker'")
        if message_contains and message_contains not in e.message:
            problems.append(f"message does not mention {message_contains!r}")
        if problems:
            raise CheckFailed(f"{'; '.join(problems)} (got {e})")
        return e
    raise CheckFailed(f"expected {code.name}/{reason}, call succeeded: {str(got).strip()!r}")


def refused(code: grpc.StatusCode, reason: str, fn: Callable[[], object],
            message_contains: Optional[str] = None) -> Callable[[], str]:
    """A check for Results.run: FN must fail as expect_error says; the error is the detail."""
    return lambda: str(expect_error(code, reason, fn, message_contains))


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


# --------------------------------------------------------------------------- the broker process


def broker_logs(broker: "Broker") -> dict[str, str]:
    """Every log file the broker wrote (one per start), by file name."""
    import glob
    logs = sorted(glob.glob(os.path.join(broker.log_dir, "broker-*.log")))
    expect(bool(logs), "no broker logs")
    return {os.path.basename(p): open(p, encoding="utf-8", errors="replace").read() for p in logs}


def leaks(texts: dict[str, str], secrets: dict[str, str], codes) -> list[str]:
    """Where any of SECRETS (by label) or of the MFA CODES appears in TEXTS (by name)."""
    problems = []
    for name, text in texts.items():
        for label, secret in secrets.items():
            if secret and secret in text:
                problems.append(f"{name} contains {label}")
        for c in sorted(codes):
            for m in re.finditer(rf"(?<![\d.]){re.escape(c)}(?!\d)", text):
                line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
                problems.append(f"{name} contains code {c}: {line[:200]!r}")
    return problems


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One `sts-broker serve` process on loopback, plus a channel to it."""

    def __init__(self, binary: str, data_dir: str, log_dir: str, pidfile: Optional[str] = None,
                 extra_env: Optional[dict] = None):
        self.binary = binary
        self.extra_env = dict(extra_env or {})  # set after dropping the caller's STS_BROKER_*
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.pidfile = pidfile
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.channel: Optional[grpc.Channel] = None
        self.starts = 0
        self.log_path = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---- lifecycle

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.starts += 1
        self.port = free_port()
        self.log_path = os.path.join(self.log_dir, f"broker-{self.starts}.log")
        log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("STS_BROKER_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--listen", self.host],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        if self.pidfile:
            with open(self.pidfile, "w") as f:
                f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise CheckFailed(f"broker exited with {rc} before /healthz answered:\n{self.log_tail()}")
            try:
                status, body, _ = self.http_get("/healthz", timeout=2)
                if status == 200:
                    break
                last = f"HTTP {status} {body!r}"
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                self.kill()
                raise CheckFailed(f"/healthz did not answer within {START_TIMEOUT:.0f}s ({last}):\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)
        self.channel = grpc.insecure_channel(self.host, options=[("grpc.enable_http_proxy", 0)])

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM, then wait; returns the exit code, or None if it had to be killed."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- HTTP paths on the same listener

    def http_get(self, path: str, timeout: float = 5) -> tuple[int, str, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.getheaders())
        finally:
            conn.close()

    # ---- gRPC

    def raw_call(self, service: str, method: str, body: bytes,
                 metadata: Optional[list[tuple[str, str]]]) -> bytes:
        """Sends BODY (already-encoded request) with METADATA as given; returns the encoded response."""
        assert self.channel is not None, "broker not running"
        rpc = self.channel.unary_unary(f"/{service}/{method}", request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        return rpc(body, metadata=metadata, timeout=CALL_TIMEOUT)

    def call(self, service: str, method: str, request, response_cls, creds: Optional[Creds], *,
             region: str = REGION, clock_offset: Optional[datetime.timedelta] = None,
             signed_request=None,
             tamper: Optional[Callable[[list], list]] = None):
        """A SigV4-signed unary call (README: 'How a call is authenticated'); returns the decoded response.

        SIGNED_REQUEST signs other bytes than the ones sent; TAMPER edits the metadata after signing.
        CREDS=None sends no authentication metadata at all.
        """
        body = request.SerializeToString()
        md = None
        if creds is not None:
            signed = (signed_request.SerializeToString() if signed_request is not None else body)
            md = sign(self.host, f"/{service}/{method}", signed, creds, signing_service(service),
                      region, clock_offset)
            if tamper:
                md = tamper(md)
        return response_cls.FromString(self.raw_call(service, method, body, md))

    # shorthands
    def whoami(self, creds: Optional[Creds], **kw):
        return self.call(STS, "GetCallerIdentity", sts_pb2.GetCallerIdentityRequest(),
                         sts_pb2.GetCallerIdentityResponse, creds, **kw)

    def iam(self, method: str, creds: Creds, **fields):
        req = getattr(iam_pb2, f"{method}Request")(**fields)
        return self.call(IAM, method, req, getattr(iam_pb2, f"{method}Response"), creds)


# --------------------------------------------------------------------------- check runner


@dataclass
class Ctx:
    """State shared between checks, filled in as they go (check scripts subclass it)."""
    broker: Broker
    root_creds_path: str
    root: Optional[Creds] = None
    account: Optional[str] = None
    root_creds_text: str = ""


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def note(self, cid: str, text: str) -> None:
        """An observation outside the contract: printed, counted neither way."""
        print(f"NOTE {cid:<4} {text}", flush=True)

    def run(self, cid: str, title: str, fn: Callable[[], Optional[str]]) -> bool:
        try:
            detail = fn()
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL {cid:<4} {title}: {e}", flush=True)
            return False
        except grpc.RpcError as err:
            self.failed += 1
            print(f"FAIL {cid:<4} {title}: unexpected RPC error {decode_error(err)}", flush=True)
            return False
        except Exception as e:  # a bug in the check or a broker that died: still a failure
            self.failed += 1
            print(f"FAIL {cid:<4} {title}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stderr)
            return False
        self.passed += 1
        print(f"PASS {cid:<4} {title}" + (f": {detail}" if detail else ""), flush=True)
        return True


# --------------------------------------------------------------------------- shared checks


def need_root(ctx: Ctx) -> Creds:
    if ctx.root is None:
        raise CheckFailed("root credentials unavailable (check a failed)")
    return ctx.root


def check_root_identity(ctx: Ctx, r: Results, cid: str = "a") -> None:
    """Reads DATA_DIR/root-credentials and checks root's GetCallerIdentity (fills ctx.root/account)."""
    def go():
        ctx.root = Creds.from_shared_file(ctx.root_creds_path)
        with open(ctx.root_creds_path, encoding="utf-8") as f:
            ctx.root_creds_text = f.read()
        expect(AKIA_RE.match(ctx.root.access_key_id) is not None,
               f"root access key id {ctx.root.access_key_id!r} is not AKIA + 16 base32")
        expect(len(ctx.root.secret_access_key) == 40,
               f"root secret is {len(ctx.root.secret_access_key)} chars, not 40")
        mode = os.stat(ctx.root_creds_path).st_mode & 0o777
        expect(mode == 0o600, f"root-credentials mode is {oct(mode)}, not 0o600")
        resp = ctx.broker.whoami(ctx.root)
        expect(ACCOUNT_RE.match(resp.account) is not None, f"account {resp.account!r} is not 12 digits")
        expect(resp.arn == f"arn:aws:iam::{resp.account}:root", f"arn {resp.arn!r} is not the root ARN")
        ctx.account = resp.account
        return resp.arn
    r.run(cid, "root GetCallerIdentity", go)


# --------------------------------------------------------------------------- main


def run_main(description: str, run_all: Callable[[Ctx, Results], None],
             make_ctx: Callable[[Broker, str], Ctx] = Ctx, script_globals: Optional[dict] = None,
             broker_env: Optional[dict] = None) -> int:
    """The command line shared by the check scripts; returns the exit code.

    Starts one broker on a fresh data dir, runs RUN_ALL(ctx, results), stops the broker and prints
    `N passed, M failed` as the last line of stdout (also written to --summary FILE as `N M`).
    BROKER_ENV is added to the broker's environment (after the caller's STS_BROKER_* are dropped).
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--broker", required=True, help="path of the sts-broker binary")
    ap.add_argument("--stubs", required=True, help="directory of protoc-generated *_pb2.py")
    ap.add_argument("--pidfile", help="write the broker's pid here (for the caller's cleanup trap)")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir and logs")
    ap.add_argument("--summary", help="also write `PASSED FAILED` to this file at the end")
    args = ap.parse_args()

    load_stubs(args.stubs, script_globals)

    # A SIGTERM/SIGHUP to us ends the run through the finally below, which stops the broker.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    work = tempfile.mkdtemp(prefix="sts-interop-")
    data_dir = os.path.join(work, "data")
    broker = Broker(os.path.abspath(args.broker), data_dir, work, args.pidfile, broker_env)
    r = Results()
    finished = False
    try:
        def up():
            broker.start()
            return f"{broker.host}, data dir {data_dir}"
        if r.run("up", "broker starts, /healthz answers", up):
            ctx = make_ctx(broker, os.path.join(data_dir, "root-credentials"))
            run_all(ctx, r)
        finished = True
    finally:
        if not finished:
            print("interrupted before all checks ran", file=sys.stderr, flush=True)
        broker.stop()
        broker.kill()
        if args.keep or r.failed:
            print(f"(broker logs and data dir kept in {work})", file=sys.stderr)
        else:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
        if args.summary:
            with open(args.summary, "w", encoding="utf-8") as f:
                f.write(f"{r.passed} {r.failed}\n")
        print(f"{r.passed} passed, {r.failed} failed", flush=True)
    return 1 if r.failed else 0


def run_traced(description: str, run_all: Callable[[Ctx, Results], None],
               make_ctx: Callable[[Broker, str], Ctx], script_globals: dict, level_env: str) -> int:
    """run_main with the broker logging at $LEVEL_ENV (default `trace`), so that a script's
    hygiene check reads everything the broker might say, not only its info lines."""
    return run_main(description, run_all, make_ctx, script_globals,
                    broker_env={"STS_BROKER_LOG": os.environ.get(level_env, "trace")})
