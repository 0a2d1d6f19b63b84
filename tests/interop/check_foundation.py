#!/usr/bin/env python3
"""Cross-language conformance checks of sts-broker's public contract (shared API.md §1, §3, §5).

Run from the outside, as a new Python user of the broker would: generated gRPC stubs, botocore's
SigV4 signer, grpcio-status to decode errors. Usually started by tests/interop/run.sh:

    check_foundation.py --broker target/debug/sts-broker --stubs DIR_WITH_GENERATED_PB2

Prints one line per check and finally `N passed, M failed`; exits 1 if anything failed.
Later checks (GetSessionToken with pyotp codes, JWKS verification with PyJWT) are added as more
`check_*` functions registered with `@check`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
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


def load_stubs(stub_dir: str) -> None:
    """Imports the protoc-generated modules from STUB_DIR (laid out as proto/: sts/v1/sts_pb2.py ...)."""
    global sts_pb2, iam_pb2, authz_pb2
    sys.path.insert(0, os.path.abspath(stub_dir))
    from authz.v1 import authz_pb2 as a  # noqa: E402
    from iam.v1 import iam_pb2 as i  # noqa: E402
    from sts.v1 import sts_pb2 as s  # noqa: E402

    sts_pb2, iam_pb2, authz_pb2 = s, i, a


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
    """SigV4 service name for a gRPC service (API.md §3)."""
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
    """SigV4 headers for a gRPC call, as lowercase gRPC metadata (API.md §3)."""
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
    """The gRPC status plus the google.rpc.ErrorInfo from grpc-status-details-bin (API.md §5)."""
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


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


# --------------------------------------------------------------------------- the broker process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One `sts-broker serve` process on loopback, plus a channel to it."""

    def __init__(self, binary: str, data_dir: str, log_dir: str, pidfile: Optional[str] = None):
        self.binary = binary
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
        """A SigV4-signed unary call (API.md §3); returns the decoded response.

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
    """State shared between checks, filled in as they go."""
    broker: Broker
    root_creds_path: str
    root: Optional[Creds] = None
    account: Optional[str] = None
    alice_keys: list = field(default_factory=list)  # [Creds, ...] in creation order
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


# --------------------------------------------------------------------------- the checks
# Each check_X(ctx, r) records one or more lines through r.run(...).


def check_a(ctx: Ctx, r: Results) -> None:
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
    r.run("a", "root GetCallerIdentity", go)


def _need_root(ctx: Ctx) -> Creds:
    if ctx.root is None:
        raise CheckFailed("root credentials unavailable (check a failed)")
    return ctx.root


def check_b_c(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def tampered():
        e = expect_error(grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch",
                         lambda: b.whoami(_need_root(ctx), tamper=tamper_signature))
        return str(e)
    r.run("b", "one hex char of Signature= changed -> SignatureDoesNotMatch", tampered)

    def other_body():
        root = _need_root(ctx)
        e = expect_error(
            grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch",
            lambda: b.call(IAM, "CreateUser", iam_pb2.CreateUserRequest(user_name="b"),
                           iam_pb2.CreateUserResponse, root,
                           signed_request=iam_pb2.CreateUserRequest(user_name="a")))
        return str(e)
    r.run("c", "signed CreateUser(a), sent CreateUser(b) -> SignatureDoesNotMatch", other_body)


def check_d(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def skewed(minutes: int):
        def go():
            root = _need_root(ctx)
            offset = datetime.timedelta(minutes=minutes)
            # Make sure the clock patch really moves X-Amz-Date, so the check is not vacuous.
            md = sign(b.host, f"/{STS}/GetCallerIdentity", b"", root, "sts", REGION, offset)
            stamp = datetime.datetime.strptime(md_get(md, "x-amz-date"), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
            drift = (stamp - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            expect(abs(drift - minutes * 60) < 30, f"botocore clock patch ineffective (drift {drift:.0f}s)")
            e = expect_error(grpc.StatusCode.UNAUTHENTICATED, "RequestExpired",
                             lambda: b.whoami(root, clock_offset=offset))
            return str(e)
        return go

    r.run("d1", "signed 10 minutes in the past -> RequestExpired", skewed(-10))
    r.run("d2", "signed 10 minutes in the future -> RequestExpired", skewed(+10))


def check_e(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def unsigned():
        return str(expect_error(grpc.StatusCode.UNAUTHENTICATED, "MissingAuthenticationToken",
                                lambda: b.whoami(None)))
    r.run("e1", "no authorization metadata -> MissingAuthenticationToken", unsigned)

    def unknown_key():
        rng = random.SystemRandom()
        akid = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")
                         for _ in range(40))
        return str(expect_error(grpc.StatusCode.UNAUTHENTICATED, "InvalidClientTokenId",
                                lambda: b.whoami(Creds(akid, secret))))
    r.run("e2", "unknown well-formed AKIA key -> InvalidClientTokenId", unknown_key)

    def wrong_region():
        return str(expect_error(grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch",
                                lambda: b.whoami(_need_root(ctx), region="eu-west-1")))
    r.run("e3", "scope region eu-west-1 -> SignatureDoesNotMatch", wrong_region)


def check_f(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def create_alice():
        root = _need_root(ctx)
        user = b.iam("CreateUser", root, user_name="alice").user
        expect(user.arn == f"arn:aws:iam::{ctx.account}:user/alice", f"user arn {user.arn!r}")
        expect(user.user_name == "alice" and user.path == "/",
               f"user_name/path {user.user_name!r}/{user.path!r}")
        key = b.iam("CreateAccessKey", root, user_name="alice").access_key
        expect(AKIA_RE.match(key.access_key_id) is not None, f"access key id {key.access_key_id!r}")
        expect(len(key.secret_access_key) == 40, f"secret is {len(key.secret_access_key)} chars")
        expect(key.user_name == "alice", f"access_key.user_name {key.user_name!r}")
        expect(key.status == "Active", f"access_key.status {key.status!r}")
        ctx.alice_keys.append(Creds(key.access_key_id, key.secret_access_key))
        return f"{user.arn}, key {key.access_key_id}"
    r.run("f1", "root CreateUser(alice) + CreateAccessKey(alice)", create_alice)

    def dup():
        return str(expect_error(grpc.StatusCode.ALREADY_EXISTS, "EntityAlreadyExists",
                                lambda: b.iam("CreateUser", _need_root(ctx), user_name="Alice")))
    r.run("f2", "CreateUser(Alice) after alice -> EntityAlreadyExists", dup)

    def bad_name():
        return str(expect_error(grpc.StatusCode.INVALID_ARGUMENT, "ValidationError",
                                lambda: b.iam("CreateUser", _need_root(ctx), user_name="al ice"),
                                message_contains="userName"))
    r.run("f3", "CreateUser('al ice') -> ValidationError mentioning userName", bad_name)


def _alice(ctx: Ctx, i: int = 0) -> Creds:
    if len(ctx.alice_keys) <= i:
        raise CheckFailed("alice's access key unavailable (an earlier check failed)")
    return ctx.alice_keys[i]


def check_g(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def whoami():
        resp = b.whoami(_alice(ctx))
        expect(resp.arn == f"arn:aws:iam::{ctx.account}:user/alice", f"arn {resp.arn!r}")
        expect(resp.account == ctx.account, f"account {resp.account!r}")
        return resp.arn
    r.run("g1", "alice GetCallerIdentity", whoami)

    def denied():
        return str(expect_error(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied",
                                lambda: b.iam("CreateUser", _alice(ctx), user_name="bob")))
    r.run("g2", "alice CreateUser(bob) -> AccessDenied", denied)

    def list_keys():
        alice = _alice(ctx)
        raw = b.raw_call(IAM, "ListAccessKeys", iam_pb2.ListAccessKeysRequest().SerializeToString(),
                         sign(b.host, f"/{IAM}/ListAccessKeys", b"", alice, "iam"))
        resp = iam_pb2.ListAccessKeysResponse.FromString(raw)
        ids = [m.access_key_id for m in resp.access_key_metadata]
        expect(alice.access_key_id in ids, f"her key {alice.access_key_id} not in {ids}")
        expect(all(m.user_name == "alice" for m in resp.access_key_metadata),
               f"user names {[m.user_name for m in resp.access_key_metadata]}")
        expect(alice.secret_access_key.encode() not in raw, "the secret is in the response bytes")
        return f"{ids}"
    r.run("g3", "alice ListAccessKeys() lists her key, no secret", list_keys)


def check_h(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def limit():
        root = _need_root(ctx)
        _alice(ctx)
        key = b.iam("CreateAccessKey", root, user_name="alice").access_key
        ctx.alice_keys.append(Creds(key.access_key_id, key.secret_access_key))
        return str(expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "LimitExceeded",
                                lambda: b.iam("CreateAccessKey", root, user_name="alice")))
    r.run("h1", "third CreateAccessKey(alice) -> LimitExceeded", limit)

    def inactive():
        root, first = _need_root(ctx), _alice(ctx, 0)
        b.iam("UpdateAccessKey", root, user_name="alice", access_key_id=first.access_key_id,
              status="Inactive")
        e = expect_error(grpc.StatusCode.UNAUTHENTICATED, "InvalidClientTokenId", lambda: b.whoami(first))
        if len(ctx.alice_keys) > 1:  # the other key is untouched
            expect(b.whoami(_alice(ctx, 1)).arn.endswith(":user/alice"), "second key stopped working")
        return str(e)
    r.run("h2", "UpdateAccessKey(Inactive), then a call with it -> InvalidClientTokenId", inactive)


def check_i(ctx: Ctx, r: Results) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2

    b = ctx.broker

    def health():
        stub = health_pb2_grpc.HealthStub(b.channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
        expect(resp.status == health_pb2.HealthCheckResponse.SERVING,
               f"status {health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}")
        return "SERVING"
    r.run("i1", "grpc.health.v1.Health/Check('') unsigned -> SERVING", health)

    wanted = {STS, IAM, AUTHZ}

    def list_services(package: str) -> set:
        # v1 and v1alpha are wire-identical; only the service name differs.
        rpc = b.channel.stream_stream(
            f"/grpc.reflection.{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        responses = list(rpc(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                             timeout=CALL_TIMEOUT))
        expect(len(responses) == 1, f"{len(responses)} responses")
        return {s.name for s in responses[0].list_services_response.service}

    def reflection_v1():
        names = list_services("v1")
        expect(wanted <= names, f"missing {sorted(wanted - names)} in {sorted(names)}")
        return ", ".join(sorted(names))
    r.run("i2", "reflection (grpc.reflection.v1) lists the three services", reflection_v1)

    # Not in the contract (API.md says "server reflection", not which version), so only noted:
    # grpcio-reflection's Python client speaks grpc.reflection.v1alpha alone.
    try:
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
            ProtoReflectionDescriptorDatabase)
        names = set(ProtoReflectionDescriptorDatabase(b.channel).get_services())
        r.note("i3", f"reflection v1alpha (grpcio-reflection's client) lists {sorted(names)}")
    except grpc.RpcError as err:
        r.note("i3", f"reflection v1alpha (grpcio-reflection's client) not served: {err.code().name}; "
                     "Python's grpcio-reflection client cannot use this broker's reflection")


def check_k(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def healthz():
        status, body, _ = b.http_get("/healthz")
        expect(status == 200 and body.strip() == "ok", f"HTTP {status} {body!r}")
        return f"HTTP {status} {body.strip()!r}"
    r.run("k1", "GET /healthz -> 200 ok", healthz)

    def metrics():
        status, body, headers = b.http_get("/metrics")
        expect(status == 200, f"HTTP {status}")
        expect("sts_broker_calls_total" in body, "no sts_broker_calls_total in /metrics")
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        expect(ctype.startswith("text/plain"), f"content-type {ctype!r}")
        samples = [ln for ln in body.splitlines() if ln.startswith("sts_broker_calls_total")]
        return f"{len(samples)} sts_broker_calls_total samples, content-type {ctype!r}"
    r.run("k2", "GET /metrics -> Prometheus text with sts_broker_calls_total", metrics)


def check_j(ctx: Ctx, r: Results) -> None:
    b = ctx.broker
    restarted = {"ok": False}

    def stop_start():
        t0 = time.monotonic()
        rc = b.stop()
        took = time.monotonic() - t0
        expect(rc is not None, f"did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM (killed)")
        expect(rc == 0, f"exit code {rc} after SIGTERM:\n{b.log_tail(10)}")
        b.start()
        restarted["ok"] = True
        return f"exit 0 after {took:.2f}s, up again on port {b.port}"
    r.run("j1", "SIGTERM -> exit 0 within a few seconds; restart on the same data dir", stop_start)

    def after():
        expect(restarted["ok"], "broker was not restarted")
        root = _need_root(ctx)
        with open(ctx.root_creds_path, encoding="utf-8") as f:
            text = f.read()
        expect(text == ctx.root_creds_text, "root-credentials content changed across the restart")
        resp = b.whoami(root)
        expect(resp.arn == f"arn:aws:iam::{ctx.account}:root", f"root arn now {resp.arn!r}")
        user = b.iam("GetUser", root, user_name="alice").user
        expect(user.arn == f"arn:aws:iam::{ctx.account}:user/alice", f"alice arn {user.arn!r}")
        if len(ctx.alice_keys) > 1:  # a secret stored before the restart still verifies
            expect(b.whoami(_alice(ctx, 1)).arn == user.arn, "alice's second key no longer works")
        return "root keys work, root-credentials unchanged, alice exists"
    r.run("j2", "after restart: root keys, root-credentials, alice persist", after)


def run_all(ctx: Ctx, r: Results) -> None:
    for fn in (check_a, check_b_c, check_d, check_e, check_f, check_g, check_h, check_i, check_k,
               check_j):
        fn(ctx, r)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", required=True, help="path of the sts-broker binary")
    ap.add_argument("--stubs", required=True, help="directory of protoc-generated *_pb2.py")
    ap.add_argument("--pidfile", help="write the broker's pid here (for the caller's cleanup trap)")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir and logs")
    args = ap.parse_args()

    load_stubs(args.stubs)

    # A SIGTERM/SIGHUP to us ends the run through the finally below, which stops the broker.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    work = tempfile.mkdtemp(prefix="sts-interop-")
    data_dir = os.path.join(work, "data")
    broker = Broker(os.path.abspath(args.broker), data_dir, work, args.pidfile)
    r = Results()
    finished = False
    try:
        def up():
            broker.start()
            return f"{broker.host}, data dir {data_dir}"
        if r.run("up", "broker starts, /healthz answers", up):
            ctx = Ctx(broker, os.path.join(data_dir, "root-credentials"))
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
        print(f"{r.passed} passed, {r.failed} failed", flush=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
