#!/usr/bin/env python3
"""Cross-language conformance checks of sts-broker's temporary credentials (README and proto/sts/v1/sts.proto; the AWS STS API Reference for GetSessionToken and AssumeRole).

GetSessionToken, AssumeRole, the session tokens (JWS, verified with PyJWT against the broker's
/.well-known/jwks.json), signing-key rotation and session revocation, driven from the outside as a
new Python user would: generated gRPC stubs, botocore's SigV4 signer (temporary credentials add a
signed X-Amz-Security-Token, sent as `x-amz-security-token` metadata), grpcio-status to decode
errors and pyotp for every MFA code. Usually started by tests/interop/run.sh:

    check_sessions.py --broker target/debug/sts-broker --stubs DIR_WITH_GENERATED_PB2

Prints one line per check and finally `N passed, M failed`; exits 1 if anything failed.

Timing: every device remembers the last TOTP step it accepted, and each code sent is for the first
unused step that is not older than the current one (the broker accepts the previous, current and
next step), so no check depends on where in the 30-second step it runs; a wait is only needed when
that step would be two ahead. Revocation has whole-second resolution, so s9 waits for the next
second before issuing a session that must outlive it.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import grpc
import jwt
import pyotp

from broker_harness import (  # the pb2 names are rebound by load_stubs (run_main's script_globals)
    STS, CheckFailed, Creds, Ctx, Results, broker_logs, check_root_identity, expect, expect_error,
    leaks, need_root, run_traced, sts_pb2)

STEP = 30
SLEEP_BUDGET = 40.0  # seconds this file may spend waiting for TOTP steps and second boundaries

ASIA_RE = re.compile(r"^ASIA[A-Z2-7]{16}$")
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT

MSG_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MSG_BOTH = "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code."
MSG_SESSION_GST = "Cannot call GetSessionToken with session credentials"


# --------------------------------------------------------------------------- helpers


@dataclass
class Token:
    """A virtual MFA device as the Python side knows it; `last` is the last step it accepted."""
    serial: str
    seed_b32: str
    last: int = -1

    def code(self, step: int) -> str:
        return pyotp.TOTP(self.seed_b32).at(step * STEP)


def step_now() -> int:
    return int(time.time()) // STEP


@dataclass
class SessCtx(Ctx):
    users: dict = field(default_factory=dict)  # name -> long-term Creds
    tokens: dict = field(default_factory=dict)  # device name -> Token
    sessions: dict = field(default_factory=dict)  # label -> (Creds, Credentials message)
    secrets: dict = field(default_factory=dict)  # label -> text that must not be logged
    codes: set = field(default_factory=set)
    roles: dict = field(default_factory=dict)  # name -> iam Role message
    slept: float = 0.0
    first_kid: str = ""
    s1_code: Optional[tuple] = None  # (Token, step) of the code s1 used
    new_kid: str = ""


def nap(ctx: SessCtx, seconds: float) -> None:
    if ctx.slept + seconds > SLEEP_BUDGET:
        raise CheckFailed(f"sleep budget exhausted ({ctx.slept:.1f}s slept)")
    time.sleep(seconds)
    ctx.slept += seconds


def next_second(ctx: SessCtx) -> None:
    """Sleeps until just after the next whole second."""
    nap(ctx, 1.0 - (time.time() % 1.0) + 0.05)


def fresh_code(ctx: SessCtx, *toks: Token) -> tuple[Token, int, str]:
    """A code the broker takes now: of whichever of TOKS has an unused step that is not older than
    the current one and at most the next (waits for the next step if none has). The caller sets
    tok.last = step once the broker accepted (or consumed) it."""
    while True:
        now = step_now()
        s, tok = min(((max(now, t.last + 1), t) for t in toks), key=lambda x: x[0])
        if s <= now + 1:
            c = tok.code(s)
            ctx.codes.add(c)
            return tok, s, c
        nap(ctx, STEP - (time.time() % STEP) + 0.1)


def devices(ctx: SessCtx, user: str) -> list:
    toks = [t for name, t in ctx.tokens.items() if name.startswith(f"{user}-")]
    if not toks:
        raise CheckFailed(f"{user} has no MFA device (s0 failed)")
    return toks


def need(ctx_dict: dict, key: str, what: str):
    if key not in ctx_dict:
        raise CheckFailed(f"{what} {key!r} unavailable (an earlier check failed)")
    return ctx_dict[key]


def user_arn(ctx: SessCtx, name: str) -> str:
    return f"arn:aws:iam::{ctx.account}:user/{name}"


def b64url_json(seg: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def b64url(obj: dict) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwks(ctx: SessCtx) -> dict:
    status, body, headers = ctx.broker.http_get("/.well-known/jwks.json")
    expect(status == 200, f"GET /.well-known/jwks.json -> HTTP {status} {body[:200]!r}")
    return json.loads(body)


def verify(ctx: SessCtx, token: str, keyset: Optional[dict] = None) -> tuple[dict, dict]:
    """Verifies TOKEN with PyJWT against the JWKS; returns (header, claims)."""
    keyset = keyset or jwks(ctx)
    header = jwt.get_unverified_header(token)
    kid = header.get("kid")
    expect(bool(kid), f"token header has no kid: {header}")
    jwk_set = jwt.PyJWKSet.from_dict(keyset)
    try:
        key = jwk_set[kid]
    except KeyError:
        raise CheckFailed(f"kid {kid!r} is not in the JWKS ({[k.get('kid') for k in keyset['keys']]})")
    try:
        claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="sts-broker",
                            issuer=f"sts-broker:{ctx.account}",
                            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
    except jwt.PyJWTError as e:
        raise CheckFailed(f"PyJWT refuses the token: {type(e).__name__}: {e}")
    return header, claims


def remember(ctx: SessCtx, label: str, c) -> Creds:
    """Creds of a Credentials message, remembering its secret and token for the hygiene check."""
    ctx.secrets[f"{label}: secret"] = c.secret_access_key
    if c.session_token:
        ctx.secrets[f"{label}: session token"] = c.session_token
        ctx.secrets[f"{label}: token signature"] = c.session_token.rsplit(".", 1)[-1]
    return Creds(c.access_key_id, c.secret_access_key, c.session_token or None)


def gst(ctx: SessCtx, creds: Creds, label: Optional[str] = None, **fields):
    """GetSessionToken; returns (Creds, Credentials message)."""
    resp = ctx.broker.call(STS, "GetSessionToken", sts_pb2.GetSessionTokenRequest(**fields),
                           sts_pb2.GetSessionTokenResponse, creds)
    c = resp.credentials
    made = remember(ctx, label or f"session {len(ctx.secrets)}", c)
    if label:
        ctx.sessions[label] = (made, c)
    return made, c


def gst_mfa(ctx: SessCtx, creds: Creds, toks: list, label: Optional[str] = None, **fields):
    """GetSessionToken with a fresh code of one of TOKS; returns (Creds, Credentials, Token, step)."""
    tok, s, code = fresh_code(ctx, *toks)
    out = gst(ctx, creds, label, serial_number=tok.serial, token_code=code, **fields)
    tok.last = s
    return out + (tok, s)


def assume(ctx: SessCtx, creds: Creds, role_arn: str, session: str, label: Optional[str] = None,
           **fields):
    resp = ctx.broker.call(STS, "AssumeRole",
                           sts_pb2.AssumeRoleRequest(role_arn=role_arn, role_session_name=session,
                                                     **fields),
                           sts_pb2.AssumeRoleResponse, creds)
    made = remember(ctx, label or f"role session {len(ctx.secrets)}", resp.credentials)
    if label:
        ctx.sessions[label] = (made, resp.credentials)
    return made, resp


def check_shape(c, expected_seconds: int, slack: float = 60) -> str:
    expect(ASIA_RE.match(c.access_key_id) is not None,
           f"access key id {c.access_key_id!r} is not ASIA + 16 of [A-Z2-7]")
    expect(len(c.secret_access_key) == 40, f"secret is {len(c.secret_access_key)} chars, not 40")
    expect(bool(c.session_token), "no session token")
    want = time.time() + expected_seconds
    expect(abs(c.expiration.seconds - want) < slack,
           f"expiration {c.expiration.ToJsonString()} is {c.expiration.seconds - time.time():.0f}s "
           f"from now, not ~{expected_seconds}")
    return f"{c.access_key_id}, expires in {c.expiration.seconds - time.time():.0f}s"


def works(ctx: SessCtx, creds: Creds, what: str) -> str:
    try:
        return ctx.broker.whoami(creds).arn
    except grpc.RpcError as err:
        raise CheckFailed(f"{what}: GetCallerIdentity refused: {err.code().name} {err.details()!r}")


def refused(ctx: SessCtx, creds: Creds) -> str:
    return str(expect_error(UNAUTH, "InvalidClientTokenId", lambda: ctx.broker.whoami(creds)))


def mfa_trust(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}})


def plain_trust(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}]})


# --------------------------------------------------------------------------- the checks


def setup(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def go():
        root = need_root(ctx)
        now = step_now()
        if STEP - (time.time() % STEP) < 3:  # the pair (now-1, now) must stay inside the window
            nap(ctx, STEP - (time.time() % STEP) + 0.1)
        for name in ("erin", "frank"):
            b.iam("CreateUser", root, user_name=name)
            key = b.iam("CreateAccessKey", root, user_name=name).access_key
            ctx.users[name] = Creds(key.access_key_id, key.secret_access_key)
            ctx.secrets[f"{name}'s long-term secret"] = key.secret_access_key
        # erin needs several codes within a step or two (s1, s10, s11): AWS lets a user have up to
        # eight MFA devices, so she gets four and every check takes the one with an unused step.
        for dev_name, user in (("erin-phone", "erin"), ("erin-tablet", "erin"), ("erin-key", "erin"),
                               ("erin-watch", "erin"), ("frank-phone", "frank"), ("root-phone", "")):
            dev = b.iam("CreateVirtualMfaDevice", root,
                        virtual_mfa_device_name=dev_name).virtual_mfa_device
            tok = Token(dev.serial_number, dev.base32_string_seed)
            ctx.secrets[f"seed {dev_name}"] = dev.base32_string_seed
            now = step_now()
            c1, c2 = tok.code(now - 1), tok.code(now)
            ctx.codes.update((c1, c2))
            b.iam("EnableMfaDevice", root, user_name=user, serial_number=tok.serial,
                  authentication_code1=c1, authentication_code2=c2)
            tok.last = now
            ctx.tokens[dev_name] = tok
        ctx.secrets["root's long-term secret"] = root.secret_access_key
        return "users erin, frank with long-term keys; virtual devices enabled: 4 erin, 1 frank, 1 root"
    r.run("s0", "setup: users erin and frank, MFA devices for erin, frank and root", go)


def check_s1(ctx: SessCtx, r: Results) -> None:
    def go():
        _, c, tok, s = gst_mfa(ctx, need(ctx.users, "erin", "user"), devices(ctx, "erin"), "erin-mfa")
        ctx.s1_code = (tok, s)
        return f"{check_shape(c, 43200)} (code of {tok.serial.rsplit('/', 1)[-1]})"
    r.run("s1", "erin GetSessionToken(serial, pyotp code): ASIA key, 40-char secret, token, "
                "expiration ~now+43200", go)


def check_s2(ctx: SessCtx, r: Results) -> None:
    def go():
        creds, c = need(ctx.sessions, "erin-mfa", "session")
        keyset = jwks(ctx)
        keys = keyset.get("keys")
        expect(isinstance(keys, list) and len(keys) == 1, f"JWKS keys: {keys}")
        k = keys[0]
        for name, want in (("kty", "OKP"), ("crv", "Ed25519"), ("alg", "EdDSA"), ("use", "sig")):
            expect(k.get(name) == want, f"JWKS key {name}={k.get(name)!r}, not {want!r}")
        expect(bool(k.get("kid")) and bool(k.get("x")), f"JWKS key without kid/x: {k}")
        expect(len(base64.urlsafe_b64decode(k["x"] + "=" * (-len(k["x"]) % 4))) == 32,
               "x is not a 32-byte Ed25519 public key")
        expect("d" not in k, "the JWKS publishes a private key (d)")
        parts = c.session_token.split(".")
        expect(len(parts) == 3, f"token has {len(parts)} dot-separated parts, not 3 (JWS compact)")
        header, claims = verify(ctx, c.session_token, keyset)
        expect(header.get("alg") == "EdDSA", f"header alg {header.get('alg')!r}")
        expect(header.get("typ") == "sts-session+jwt", f"header typ {header.get('typ')!r}")
        expect(header.get("kid") == k["kid"], f"header kid {header.get('kid')!r} != JWKS {k['kid']!r}")
        ctx.first_kid = k["kid"]
        now = time.time()
        expect(claims["sub"] == user_arn(ctx, "erin"), f"sub {claims['sub']!r}")
        expect(claims["akid"] == c.access_key_id, f"akid {claims.get('akid')!r} != {c.access_key_id!r}")
        expect(abs(claims["iat"] - now) < 60, f"iat {claims['iat']} not ~now")
        expect(claims["nbf"] <= claims["iat"] + 1, f"nbf {claims['nbf']} after iat {claims['iat']}")
        expect(claims["exp"] == c.expiration.seconds,
               f"exp {claims['exp']} != expiration {c.expiration.seconds}")
        expect(claims["exp"] - claims["iat"] == 43200, f"exp - iat = {claims['exp'] - claims['iat']}")
        expect(isinstance(claims["jti"], str) and len(claims["jti"]) >= 16, f"jti {claims['jti']!r}")
        expect(claims.get("amr") == ["mfa"], f"amr {claims.get('amr')!r}")
        at = claims.get("auth_time")
        expect(isinstance(at, int) and abs(at - now) < 60, f"auth_time {at!r} not ~now")
        raw = b"".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts[:2])
        expect(c.secret_access_key not in c.session_token, "the secret is in the token text")
        expect(c.secret_access_key.encode() not in raw, "the secret is in the decoded token")
        return (f"kid {header['kid']}; sub {claims['sub']}; amr {claims['amr']}; "
                f"auth_time {now - at:+.0f}s ago; claims {sorted(claims)}")
    r.run("s2", "the token verifies with PyJWT against the JWKS; claims incl. amr, auth_time, akid; "
                "no secret", go)


def check_s3(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def replay():
        erin = need(ctx.users, "erin", "user")
        if ctx.s1_code is None:
            raise CheckFailed("no code was accepted in s1")
        tok, s = ctx.s1_code
        expect(step_now() <= s + 1, "timing: the step used in s1 is no longer in the window")
        code = tok.code(s)
        e = expect_error(DENIED, "AccessDenied",
                         lambda: gst(ctx, erin, serial_number=tok.serial, token_code=code),
                         message_contains=MSG_BAD_CODE)
        expect(e.message == MSG_BAD_CODE, f"message {e.message!r}")
        return str(e)
    r.run("s3a", "the same code a second time -> AccessDenied (invalid MFA one time pass code)", replay)

    def foreign():
        erin = need(ctx.users, "erin", "user")
        ftok = need(ctx.tokens, "frank-phone", "device")
        _, s, code = fresh_code(ctx, ftok)
        e = expect_error(DENIED, "AccessDenied",
                         lambda: gst(ctx, erin, serial_number=ftok.serial, token_code=code))
        if e.message != MSG_BAD_CODE:
            r.note("s3b", f"foreign-device message {e.message!r} (the brief says {MSG_BAD_CODE!r})")
        expect(e.message.startswith("MultiFactorAuthentication failed"), f"message {e.message!r}")
        # The refused attempt must not have used up frank's step: frank can still use the code.
        try:
            gst(ctx, need(ctx.users, "frank", "user"), "frank-mfa", serial_number=ftok.serial,
                token_code=code)
            ftok.last = s
            after = "frank then used the same code: ok"
        except grpc.RpcError as err:
            raise CheckFailed(f"erin's attempt burnt frank's code: frank refused with "
                              f"{err.code().name} {err.details()!r}")
        return f"{e}; {after}"
    r.run("s3b", "erin with frank's serial and frank's valid code -> AccessDenied", foreign)

    def half():
        erin = need(ctx.users, "erin", "user")
        tok = devices(ctx, "erin")[0]
        e1 = expect_error(DENIED, "AccessDenied",
                          lambda: gst(ctx, erin, serial_number=tok.serial), message_contains=MSG_BOTH)
        ctx.codes.add("123456")
        e2 = expect_error(DENIED, "AccessDenied",
                          lambda: gst(ctx, erin, token_code="123456"), message_contains=MSG_BOTH)
        return f"{e1.reason}; {e2.reason}: {e2.message!r}"
    r.run("s3c", "serial without code, code without serial -> AccessDenied (must provide both)", half)


def check_s4(ctx: SessCtx, r: Results) -> None:
    def go():
        creds, _ = need(ctx.sessions, "erin-mfa", "session")
        resp = ctx.broker.whoami(creds)
        expect(resp.arn == user_arn(ctx, "erin"), f"arn {resp.arn!r}")
        expect(resp.account == ctx.account, f"account {resp.account!r}")
        long_term = ctx.broker.whoami(need(ctx.users, "erin", "user"))
        expect(resp.user_id == long_term.user_id, f"user_id {resp.user_id!r} != {long_term.user_id!r}")
        e = expect_error(DENIED, "AccessDenied", lambda: gst(ctx, creds))
        expect(e.message == MSG_SESSION_GST, f"message {e.message!r}")
        return f"{resp.arn} ({resp.user_id}); GetSessionToken: {e}"
    r.run("s4", "session creds sign GetCallerIdentity -> erin; GetSessionToken with them -> "
                "AccessDenied", go)


def check_s5(ctx: SessCtx, r: Results) -> None:
    def bad():
        erin = need(ctx.users, "erin", "user")
        out = []
        for d in (899, 129601):
            e = expect_error(INVALID, "ValidationError", lambda: gst(ctx, erin, duration_seconds=d),
                             message_contains="durationSeconds")
            out.append(f"{d}: {e.message!r}")
        return "; ".join(out)
    r.run("s5a", "duration 899 and 129601 -> ValidationError naming durationSeconds", bad)

    def user_max():
        _, c = gst(ctx, need(ctx.users, "erin", "user"), "erin-long", duration_seconds=129600)
        return check_shape(c, 129600)
    r.run("s5b", "IAM user duration 129600 -> expiration ~now+129600", user_max)

    def root():
        _, c = gst(ctx, need_root(ctx), "root-7200", duration_seconds=7200)
        d1 = check_shape(c, 3600, slack=30)
        _, c2 = gst(ctx, need_root(ctx), "root-default")
        check_shape(c2, 3600, slack=30)
        return f"7200 clamped: {d1}; default also ~3600"
    r.run("s5c", "root GetSessionToken(7200) -> expiration ~now+3600 (clamped); default 3600", root)


def check_s6(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def no_mfa():
        creds, c = gst(ctx, need(ctx.users, "erin", "user"), "erin-plain")
        _, claims = verify(ctx, c.session_token)
        expect("amr" not in claims, f"amr {claims.get('amr')!r} in a session without MFA")
        expect("auth_time" not in claims, f"auth_time {claims.get('auth_time')!r} without MFA")
        expect(works(ctx, creds, "plain session") == user_arn(ctx, "erin"), "GetCallerIdentity arn")
        e = expect_error(UNAUTH, "InvalidClientTokenId", lambda: b.iam("ListUsers", creds))
        return f"no amr/auth_time; ListUsers: {e}"
    r.run("s6a", "session without MFA: no amr; iam ListUsers with it -> InvalidClientTokenId", no_mfa)

    def root_plain():
        creds, _ = need(ctx.sessions, "root-default", "session")
        e = expect_error(UNAUTH, "InvalidClientTokenId", lambda: b.iam("ListUsers", creds))
        return str(e)
    r.run("s6b", "root session without MFA: ListUsers -> InvalidClientTokenId", root_plain)

    def root_mfa():
        tok = need(ctx.tokens, "root-phone", "device")
        creds, c, _, _ = gst_mfa(ctx, need_root(ctx), [tok], "root-mfa")
        _, claims = verify(ctx, c.session_token)
        expect(claims.get("amr") == ["mfa"], f"amr {claims.get('amr')!r}")
        expect(claims["sub"] == f"arn:aws:iam::{ctx.account}:root", f"sub {claims['sub']!r}")
        users = sorted(u.user_name for u in b.iam("ListUsers", creds).users)
        expect({"erin", "frank"} <= set(users), f"ListUsers {users}")
        return f"ListUsers -> {users}"
    r.run("s6c", "root session with root MFA: amr present, iam ListUsers works", root_mfa)


def check_s7(ctx: SessCtx, r: Results) -> None:
    def edited():
        creds, c = need(ctx.sessions, "erin-mfa", "session")
        h, p, sig = c.session_token.split(".")
        claims = b64url_json(p)
        claims["exp"] += 3600
        claims["sub"] = f"arn:aws:iam::{ctx.account}:root"
        forged = f"{h}.{b64url(claims)}.{sig}"
        e1 = refused(ctx, Creds(creds.access_key_id, creds.secret_access_key, forged))
        hdr = b64url_json(h)
        hdr["alg"] = "none"
        e2 = refused(ctx, Creds(creds.access_key_id, creds.secret_access_key,
                                f"{b64url(hdr)}.{p}."))
        works(ctx, creds, "the untouched token")
        return f"edited payload: {e1}; alg none: InvalidClientTokenId; original still works"
    r.run("s7a", "token payload edited (signature kept), or alg=none -> InvalidClientTokenId", edited)

    def swapped():
        a, _ = need(ctx.sessions, "erin-mfa", "session")
        bb, _ = need(ctx.sessions, "erin-plain", "session")
        e = refused(ctx, Creds(a.access_key_id, a.secret_access_key, bb.session_token))
        e2 = refused(ctx, Creds(bb.access_key_id, bb.secret_access_key, a.session_token))
        return f"{e}; and the other way round"
    r.run("s7b", "akid+secret of one session with the token of another -> InvalidClientTokenId", swapped)


def check_s8(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def go():
        old, old_c = need(ctx.sessions, "erin-mfa", "session")
        old_kid = jwt.get_unverified_header(old_c.session_token)["kid"]
        resp = b.iam("RotateSigningKey", need_root(ctx))
        expect(bool(resp.kid) and resp.kid != old_kid, f"new kid {resp.kid!r} (old {old_kid!r})")
        expect(resp.previous_kid == old_kid, f"previous_kid {resp.previous_kid!r} != {old_kid!r}")
        ctx.new_kid = resp.kid
        keyset = jwks(ctx)
        kids = sorted(k.get("kid") for k in keyset.get("keys", []))
        expect(kids == sorted([old_kid, resp.kid]), f"JWKS kids {kids}")
        expect(works(ctx, old, "pre-rotation session") == user_arn(ctx, "erin"), "old session arn")
        new, new_c = gst(ctx, need(ctx.users, "erin", "user"), "erin-after-rotation")
        hdr_new, _ = verify(ctx, new_c.session_token, keyset)
        expect(hdr_new["kid"] == resp.kid, f"new token kid {hdr_new['kid']!r} != {resp.kid!r}")
        hdr_old, _ = verify(ctx, old_c.session_token, keyset)
        expect(hdr_old["kid"] == old_kid, "old token kid changed?")
        expect(works(ctx, new, "post-rotation session") == user_arn(ctx, "erin"), "new session arn")
        return f"{old_kid} -> {resp.kid}; JWKS has both; old and new tokens verify and sign calls"
    r.run("s8", "RotateSigningKey: JWKS has 2 keys, old creds still work, new tokens carry the new kid",
          go)


def check_s9(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def default_now():
        erin = need(ctx.users, "erin", "user")
        before = [lbl for lbl in ("erin-mfa", "erin-plain", "erin-after-rotation") if lbl in ctx.sessions]
        expect(bool(before), "no erin sessions (earlier checks failed)")
        for lbl in before:
            works(ctx, ctx.sessions[lbl][0], lbl)
        frank_s, _ = gst(ctx, need(ctx.users, "frank", "user"), "frank-plain")
        b.iam("RevokeSessions", need_root(ctx), user_name="erin")
        for lbl in before:
            refused(ctx, ctx.sessions[lbl][0])
        works(ctx, frank_s, "frank's session (not revoked)")
        works(ctx, erin, "erin's long-term key")
        next_second(ctx)
        later, _ = gst(ctx, erin, "erin-after-revoke")
        expect(works(ctx, later, "session issued after the revocation") == user_arn(ctx, "erin"), "arn")
        return (f"{len(before)} earlier erin sessions refused; frank's session and erin's long-term "
                "key unaffected; a session from the next second works")
    r.run("s9a", "RevokeSessions(erin): earlier sessions -> InvalidClientTokenId, later ones work", default_now)

    def explicit():
        frank = need(ctx.users, "frank", "user")
        early, _ = gst(ctx, frank, "frank-early")
        next_second(ctx)
        cut = int(time.time())
        next_second(ctx)
        late, _ = gst(ctx, frank, "frank-late")
        from google.protobuf.timestamp_pb2 import Timestamp
        b.iam("RevokeSessions", need_root(ctx), user_name="frank", issued_before=Timestamp(seconds=cut))
        e = refused(ctx, early)
        works(ctx, late, "frank's session issued after issued_before")
        return f"issued_before={cut}: earlier session refused ({e}), later one works"
    r.run("s9b", "RevokeSessions(frank, issued_before=T): session before T refused, after T works", explicit)


def check_s10(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker
    state = {}

    def create():
        root = need_root(ctx)
        e = expect_error(INVALID, "MalformedPolicyDocument",
                         lambda: b.iam("CreateRole", root, role_name="broken",
                                       assume_role_policy_document='{"Version":"2012-10-17","Statement":'))
        role = b.iam("CreateRole", root, role_name="mfa-admin",
                     assume_role_policy_document=mfa_trust(ctx.account),
                     max_session_duration=7200).role
        expect(role.arn == f"arn:aws:iam::{ctx.account}:role/mfa-admin", f"role arn {role.arn!r}")
        expect(role.role_id.startswith("AROA"), f"role id {role.role_id!r}")
        expect(role.max_session_duration == 7200, f"max_session_duration {role.max_session_duration}")
        ctx.roles["mfa-admin"] = role
        return f"malformed: {e.reason}; {role.arn} ({role.role_id})"
    r.run("s10a", "CreateRole: malformed trust policy -> MalformedPolicyDocument; MFA trust policy -> ok",
          create)

    def without():
        role = need(ctx.roles, "mfa-admin", "role")
        e = expect_error(DENIED, "AccessDenied",
                         lambda: assume(ctx, need(ctx.users, "erin", "user"), role.arn, "no-mfa"))
        return str(e)
    r.run("s10b", "erin AssumeRole(mfa-admin) without MFA -> AccessDenied", without)

    def with_code():
        role = need(ctx.roles, "mfa-admin", "role")
        tok, s, code = fresh_code(ctx, *devices(ctx, "erin"))
        creds, resp = assume(ctx, need(ctx.users, "erin", "user"), role.arn, "erin-s10", "role-mfa",
                             serial_number=tok.serial, token_code=code)
        tok.last = s
        c, aru = resp.credentials, resp.assumed_role_user
        shape = check_shape(c, 3600)
        want_arn = f"arn:aws:sts::{ctx.account}:assumed-role/mfa-admin/erin-s10"
        expect(aru.arn == want_arn, f"assumed_role_user.arn {aru.arn!r}")
        expect(aru.assumed_role_id == f"{role.role_id}:erin-s10", f"assumed_role_id {aru.assumed_role_id!r}")
        who = b.whoami(creds)
        expect(who.arn == want_arn, f"GetCallerIdentity arn {who.arn!r}")
        expect(who.user_id == aru.assumed_role_id, f"GetCallerIdentity user_id {who.user_id!r}")
        _, claims = verify(ctx, c.session_token)
        expect(claims["sub"] == want_arn, f"sub {claims['sub']!r}")
        expect(claims["akid"] == c.access_key_id, "akid")
        expect(claims.get("amr") == ["mfa"], f"amr {claims.get('amr')!r}")
        expect(isinstance(claims.get("auth_time"), int), f"auth_time {claims.get('auth_time')!r}")
        state["ok"] = True
        return f"{aru.arn} ({aru.assumed_role_id}); {shape}; token verifies, amr {claims['amr']}"
    r.run("s10c", "erin AssumeRole(mfa-admin, serial, code) -> role creds; ARN, GetCallerIdentity, "
                  "token with amr", with_code)

    def too_long():
        role = need(ctx.roles, "mfa-admin", "role")
        tok, s, code = fresh_code(ctx, *devices(ctx, "erin"))
        e = expect_error(INVALID, "ValidationError",
                         lambda: assume(ctx, need(ctx.users, "erin", "user"), role.arn, "too-long",
                                        duration_seconds=10800, serial_number=tok.serial,
                                        token_code=code))
        tok.last = s  # the broker checks the code before the duration: the step is used up
        return str(e)
    r.run("s10d", "AssumeRole with duration 10800 > the role's max 7200 -> ValidationError", too_long)

    def root():
        role = need(ctx.roles, "mfa-admin", "role")
        rs, _ = need(ctx.sessions, "root-mfa", "session")
        e = expect_error(DENIED, "AccessDenied", lambda: assume(ctx, need_root(ctx), role.arn, "root"))
        e2 = expect_error(DENIED, "AccessDenied", lambda: assume(ctx, rs, role.arn, "root-mfa"))
        return f"root key: {e}; root MFA session: {e2.reason}"
    r.run("s10e", "root (long-term key, and its MFA session) AssumeRole -> AccessDenied", root)


def check_s11(ctx: SessCtx, r: Results) -> None:
    b = ctx.broker

    def carry():
        role = need(ctx.roles, "mfa-admin", "role")
        erin = need(ctx.users, "erin", "user")
        if "erin-mfa2" not in ctx.sessions:
            gst_mfa(ctx, erin, devices(ctx, "erin"), "erin-mfa2")
        sess, sess_c = ctx.sessions["erin-mfa2"]
        _, sclaims = verify(ctx, sess_c.session_token)
        expect(sclaims.get("amr") == ["mfa"], "the GetSessionToken session has no amr")
        plain, _ = gst(ctx, erin, "erin-plain2")
        e = expect_error(DENIED, "AccessDenied", lambda: assume(ctx, plain, role.arn, "plain-carry"))
        creds, resp = assume(ctx, sess, role.arn, "carried", "role-carried")
        _, claims = verify(ctx, resp.credentials.session_token)
        expect(claims.get("amr") == ["mfa"], f"role token amr {claims.get('amr')!r}")
        expect(b.whoami(creds).arn == f"arn:aws:sts::{ctx.account}:assumed-role/mfa-admin/carried",
               "role session arn")
        return f"session without MFA: {e.reason}; session with MFA, no code: allowed, amr carried"
    r.run("s11a", "MFA carries over: GetSessionToken+MFA session AssumeRole without a code -> allowed",
          carry)

    def chain():
        root = need_root(ctx)
        role_creds, _ = need(ctx.sessions, "role-mfa", "session")
        target = b.iam("CreateRole", root, role_name="chain-target",
                       assume_role_policy_document=plain_trust(ctx.account),
                       max_session_duration=43200).role
        e = expect_error(INVALID, "ValidationError",
                         lambda: assume(ctx, role_creds, target.arn, "chained", duration_seconds=7200))
        creds, resp = assume(ctx, role_creds, target.arn, "chained", "role-chained", duration_seconds=3600)
        check_shape(resp.credentials, 3600)
        who = b.whoami(creds).arn
        expect(who == f"arn:aws:sts::{ctx.account}:assumed-role/chain-target/chained", f"arn {who!r}")
        # The same duration straight from a user is fine: the limit is about chaining.
        erin = need(ctx.users, "erin", "user")
        _, direct = assume(ctx, erin, target.arn, "direct", duration_seconds=7200)
        check_shape(direct.credentials, 7200)
        return f"7200 chained: {e.message!r}; 3600 chained ok ({who}); 7200 from a user ok"
    r.run("s11b", "role chaining: 7200 -> ValidationError, 3600 -> ok", chain)


def check_s12(ctx: SessCtx, r: Results) -> None:
    def go():
        texts = broker_logs(ctx.broker)
        problems = leaks(texts, ctx.secrets, ctx.codes)
        expect(not problems, "; ".join(problems[:5]))
        tokens = sum(1 for k in ctx.secrets if k.endswith("session token"))
        return (f"{len(ctx.secrets)} secrets ({tokens} session tokens) and {len(ctx.codes)} codes "
                f"absent from {sum(len(t) for t in texts.values())} bytes of trace log")
    r.run("s12", "broker log (trace): no secret key, session token or MFA code", go)


def run_all(ctx: SessCtx, r: Results) -> None:
    check_root_identity(ctx, r, "a")
    t0 = time.monotonic()
    for fn in (setup, check_s1, check_s2, check_s3, check_s4, check_s5, check_s6, check_s7,
               check_s8, check_s9, check_s10, check_s11, check_s12):
        fn(ctx, r)
    r.note("time", f"session checks took {time.monotonic() - t0:.1f}s, {ctx.slept:.1f}s of it waiting")


def main() -> int:
    # The broker logs at trace level, so that the hygiene check (s12) reads all it says.
    return run_traced(__doc__.split("\n\n")[0], run_all, SessCtx, globals(), "INTEROP_SESSIONS_BROKER_LOG")


if __name__ == "__main__":
    sys.exit(main())
