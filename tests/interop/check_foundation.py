#!/usr/bin/env python3
"""Cross-language conformance checks of sts-broker's public contract (README and proto/: credentials files, SigV4 over gRPC metadata, the error model).

Run from the outside, as a new Python user of the broker would: generated gRPC stubs, botocore's
SigV4 signer, grpcio-status to decode errors. Usually started by tests/interop/run.sh:

    check_foundation.py --broker target/debug/sts-broker --stubs DIR_WITH_GENERATED_PB2

Prints one line per check and finally `N passed, M failed`; exits 1 if anything failed.
Later checks (GetSessionToken with pyotp codes, JWKS verification with PyJWT) are added as more
`check_*` functions registered with `@check`.
"""

from __future__ import annotations

import datetime
import random
import sys
import time
from dataclasses import dataclass, field

import grpc

from broker_harness import (  # iam_pb2 is rebound by load_stubs (run_main's script_globals)
    AKIA_RE, AUTHZ, CALL_TIMEOUT, IAM, REGION, STOP_TIMEOUT, STS, CheckFailed, Creds, Ctx, Results,
    check_root_identity, expect, expect_error, iam_pb2, md_get, need_root, refused, run_main, sign,
    tamper_signature)


@dataclass
class FoundationCtx(Ctx):
    alice_keys: list = field(default_factory=list)  # [Creds, ...] in creation order


# --------------------------------------------------------------------------- the checks
# Each check_X(ctx, r) records one or more lines through r.run(...).


def check_a(ctx: Ctx, r: Results) -> None:
    check_root_identity(ctx, r, "a")


_need_root = need_root


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

    r.run("e1", "no authorization metadata -> MissingAuthenticationToken",
          refused(grpc.StatusCode.UNAUTHENTICATED, "MissingAuthenticationToken",
                  lambda: b.whoami(None)))

    def unknown_key():
        rng = random.SystemRandom()
        akid = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")
                         for _ in range(40))
        return str(expect_error(grpc.StatusCode.UNAUTHENTICATED, "InvalidClientTokenId",
                                lambda: b.whoami(Creds(akid, secret))))
    r.run("e2", "unknown well-formed AKIA key -> InvalidClientTokenId", unknown_key)

    r.run("e3", "scope region eu-west-1 -> SignatureDoesNotMatch",
          refused(grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch",
                  lambda: b.whoami(_need_root(ctx), region="eu-west-1")))


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

    r.run("f2", "CreateUser(Alice) after alice -> EntityAlreadyExists",
          refused(grpc.StatusCode.ALREADY_EXISTS, "EntityAlreadyExists",
                  lambda: b.iam("CreateUser", _need_root(ctx), user_name="Alice")))
    r.run("f3", "CreateUser('al ice') -> ValidationError mentioning userName",
          refused(grpc.StatusCode.INVALID_ARGUMENT, "ValidationError",
                  lambda: b.iam("CreateUser", _need_root(ctx), user_name="al ice"),
                  message_contains="userName"))


def _alice(ctx: Ctx, i: int = 0) -> Creds:
    if len(ctx.alice_keys) <= i:
        raise CheckFailed("alice's access key unavailable (an earlier check failed)")
    return ctx.alice_keys[i]


SELF_KEYS_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Action":["iam:ListAccessKeys","iam:CreateAccessKey","iam:UpdateAccessKey","iam:DeleteAccessKey"],'
    '"Resource":"arn:aws:iam::*:user/${aws:username}"}]}'
)


def check_g(ctx: Ctx, r: Results) -> None:
    b = ctx.broker

    def whoami():
        resp = b.whoami(_alice(ctx))
        expect(resp.arn == f"arn:aws:iam::{ctx.account}:user/alice", f"arn {resp.arn!r}")
        expect(resp.account == ctx.account, f"account {resp.account!r}")
        return resp.arn
    r.run("g1", "alice GetCallerIdentity", whoami)

    r.run("g2", "alice CreateUser(bob) -> AccessDenied",
          refused(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied",
                  lambda: b.iam("CreateUser", _alice(ctx), user_name="bob")))

    def list_keys():
        alice = _alice(ctx)
        # IAM's default deny: without a policy she may not even list her own keys.
        expect_error(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied",
                     lambda: b.iam("ListAccessKeys", alice))
        b.iam("PutUserPolicy", ctx.root, user_name="alice", policy_name="self",
              policy_document=SELF_KEYS_POLICY)
        raw = b.raw_call(IAM, "ListAccessKeys", iam_pb2.ListAccessKeysRequest().SerializeToString(),
                         sign(b.host, f"/{IAM}/ListAccessKeys", b"", alice, "iam"))
        resp = iam_pb2.ListAccessKeysResponse.FromString(raw)
        ids = [m.access_key_id for m in resp.access_key_metadata]
        expect(alice.access_key_id in ids, f"her key {alice.access_key_id} not in {ids}")
        expect(all(m.user_name == "alice" for m in resp.access_key_metadata),
               f"user names {[m.user_name for m in resp.access_key_metadata]}")
        expect(alice.secret_access_key.encode() not in raw, "the secret is in the response bytes")
        return f"{ids}"
    r.run("g3", "alice ListAccessKeys(): denied without a policy; with one, lists her key, no secret", list_keys)


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

    # Not in the contract (the README promises "server reflection", not which version), so only noted:
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
    return run_main(__doc__.split("\n\n")[0], run_all, FoundationCtx, globals())


if __name__ == "__main__":
    sys.exit(main())
