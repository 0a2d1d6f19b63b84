#!/usr/bin/env python3
"""Cross-language conformance checks of sts-broker's MFA devices (proto/iam/v1/iam.proto; the AWS IAM API Reference for MFA devices).

Run from the outside, as a new Python user of the broker would: generated gRPC stubs, botocore's
SigV4 signer, grpcio-status to decode errors, and pyotp (an independent RFC 6238 implementation)
for every authentication code. Usually started by tests/interop/run.sh:

    check_mfa.py --broker target/debug/sts-broker --stubs DIR_WITH_GENERATED_PB2

Prints one line per check and finally `N passed, M failed`; exits 1 if anything failed.

Timing: TOTP codes belong to 30-second steps. Every check picks its code pair relative to the
current step so that it holds wherever in the step it runs (the broker accepts a pair whose first
code is for the previous, current or next step); where a check needs a few calls to land in the
same step it first waits for the next step boundary if fewer than a handful of seconds are left
(`room`), so the whole file sleeps well under 35 s.
"""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

import grpc
import pyotp

from broker_harness import (  # the pb2 names are rebound by load_stubs (run_main's script_globals)
    AKIA_RE, IAM, STS, CheckFailed, Creds, Ctx, Results, broker_logs, check_root_identity, expect,
    expect_error, iam_pb2, leaks, need_root, run_traced, sign, sts_pb2)

STEP = 30  # seconds per TOTP step (the broker's virtual devices; RFC 6238 default)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SLEEP_BUDGET = 35.0  # seconds this file may spend waiting for step boundaries

# AWS's credential report columns, in order (GetCredentialReport, IAM User Guide).
CREDENTIAL_REPORT_COLUMNS = [
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used",
    "password_last_changed", "password_next_rotation", "mfa_active", "access_key_1_active",
    "access_key_1_last_rotated", "access_key_1_last_used_date", "access_key_1_last_used_region",
    "access_key_1_last_used_service", "access_key_2_active", "access_key_2_last_rotated",
    "access_key_2_last_used_date", "access_key_2_last_used_region", "access_key_2_last_used_service",
    "cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated",
]

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------- TOTP helpers


@dataclass
class Token:
    """A TOTP device as the Python side knows it: its serial and the seed it was given."""
    serial: str
    seed_b32: str  # base32, no padding (what pyotp takes)
    digest: object = hashlib.sha1
    period: int = STEP

    def code(self, step: int) -> str:
        """The 6-digit code for STEP (pyotp, independent of the broker)."""
        return pyotp.TOTP(self.seed_b32, digest=self.digest, interval=self.period).at(step * self.period)


def step_now(period: int = STEP) -> int:
    return int(time.time()) // period


@dataclass
class MfaCtx(Ctx):
    carol: Optional[Creds] = None
    tokens: dict = field(default_factory=dict)  # name -> Token
    # step -> code pairs actually sent, for the replay checks: name -> (first_step, (code1, code2))
    enabled_with: dict = field(default_factory=dict)
    # every secret the run handled, for the log-hygiene check: label -> text
    secrets: dict = field(default_factory=dict)
    codes: set = field(default_factory=set)  # every code sent (good or bad)
    slept: float = 0.0
    recover_output: str = ""
    dave: bool = False


def room(ctx: MfaCtx, needed: float) -> None:
    """Waits for the next step boundary if fewer than NEEDED seconds are left in the current step."""
    left = STEP - (time.time() % STEP)
    if left < needed:
        if ctx.slept + left + 0.1 > SLEEP_BUDGET:
            raise CheckFailed(f"sleep budget exhausted ({ctx.slept:.1f}s slept)")
        time.sleep(left + 0.1)
        ctx.slept += left + 0.1


def codes(ctx: MfaCtx, tok: Token, first_step: int) -> tuple[str, str]:
    """Two consecutive codes, for FIRST_STEP and FIRST_STEP+1 (remembered for the hygiene check)."""
    c1, c2 = tok.code(first_step), tok.code(first_step + 1)
    ctx.codes.update((c1, c2))
    return c1, c2


def enable(ctx: MfaCtx, user: str, tok: Token, first_step: int, creds: Optional[Creds] = None):
    c1, c2 = codes(ctx, tok, first_step)
    return ctx.broker.iam("EnableMfaDevice", creds or need_root(ctx), user_name=user,
                          serial_number=tok.serial, authentication_code1=c1, authentication_code2=c2)


def need_token(ctx: MfaCtx, name: str) -> Token:
    if name not in ctx.tokens:
        raise CheckFailed(f"device {name} unavailable (an earlier check failed)")
    return ctx.tokens[name]


def need_carol(ctx: MfaCtx) -> Creds:
    if ctx.carol is None:
        raise CheckFailed("carol's access key unavailable (an earlier check failed)")
    return ctx.carol


def remember_seed(ctx: MfaCtx, label: str, seed: str) -> None:
    ctx.secrets[f"seed {label}"] = seed
    ctx.secrets[f"seed {label} (lowercase)"] = seed.lower()


def mfa_serials(ctx: MfaCtx, creds: Creds, **fields) -> list:
    return list(ctx.broker.iam("ListMfaDevices", creds, **fields).mfa_devices)


def create_virtual(ctx: MfaCtx, name: str) -> Token:
    dev = ctx.broker.iam("CreateVirtualMfaDevice", need_root(ctx),
                         virtual_mfa_device_name=name).virtual_mfa_device
    tok = Token(dev.serial_number, dev.base32_string_seed)
    remember_seed(ctx, name, dev.base32_string_seed)
    ctx.tokens[name] = tok
    return tok


def near_now(ts, slack: float = 300) -> bool:
    return ts.seconds > 0 and abs(ts.seconds - time.time()) < slack


# --------------------------------------------------------------------------- the checks


def check_m1(ctx: MfaCtx, r: Results) -> None:
    def go():
        root = need_root(ctx)
        dev = ctx.broker.iam("CreateVirtualMfaDevice", root,
                             virtual_mfa_device_name="carol-phone").virtual_mfa_device
        seed = dev.base32_string_seed
        if seed:
            remember_seed(ctx, "carol-phone", seed)
        expect(dev.serial_number == f"arn:aws:iam::{ctx.account}:mfa/carol-phone",
               f"serial {dev.serial_number!r}")
        expect(re.fullmatch(r"[A-Z2-7]{32}", seed) is not None,
               f"seed is {len(seed)} chars, not 32 of the base32 alphabet without padding")
        raw = base64.b32decode(seed)
        expect(len(raw) * 8 == 160, f"seed decodes to {len(raw) * 8} bits")
        uri = urllib.parse.urlsplit(dev.otpauth_uri)
        query = urllib.parse.parse_qs(uri.query)
        expect(uri.scheme == "otpauth" and uri.netloc == "totp", f"otpauth_uri {dev.otpauth_uri!r}")
        expect(query.get("secret") == [seed], "otpauth_uri has no secret=<the seed>")
        expect(bool(query.get("issuer", [""])[0]), "otpauth_uri has no issuer=")
        # pyotp reading the URI must produce the codes pyotp computes from the bare seed: the
        # URI's algorithm/digits/period (if any) agree with the defaults the seed is used with.
        from_uri = pyotp.parse_uri(dev.otpauth_uri)
        s = step_now()
        expect(from_uri.at(s * STEP) == Token("", seed).code(s),
               "pyotp.parse_uri(otpauth_uri) computes other codes than the seed with SHA1/6/30")
        png = dev.qr_code_png
        expect(png.startswith(PNG_SIGNATURE), f"qr_code_png starts {png[:8]!r}")
        expect(png[12:16] == b"IHDR", "qr_code_png has no IHDR chunk first")
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        ctx.tokens["carol-phone"] = Token(dev.serial_number, seed)
        issuer = query["issuer"][0]
        return (f"{dev.serial_number}, 32-char seed (160 bits), issuer={issuer!r}, "
                f"PNG {width}x{height} ({len(png)} bytes)")
    r.run("m1", "root CreateVirtualMfaDevice: ARN serial, base32 seed, otpauth URI, QR PNG", go)


def check_m2(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def carol():
        root = need_root(ctx)
        b.iam("CreateUser", root, user_name="carol")
        key = b.iam("CreateAccessKey", root, user_name="carol").access_key
        ctx.carol = Creds(key.access_key_id, key.secret_access_key)
        ctx.secrets["carol's secret key"] = key.secret_access_key
        expect(b.whoami(ctx.carol).arn == f"arn:aws:iam::{ctx.account}:user/carol", "carol's arn")
        return key.access_key_id
    r.run("m2a", "root CreateUser(carol) + CreateAccessKey(carol)", carol)

    def enable_it():
        tok = need_token(ctx, "carol-phone")
        need_carol(ctx)
        room(ctx, 8)  # m2b..m3b must run inside this step
        s = step_now()
        c1, c2 = codes(ctx, tok, s - 1)
        b.iam("EnableMfaDevice", need_root(ctx), user_name="carol", serial_number=tok.serial,
              authentication_code1=c1, authentication_code2=c2)
        ctx.enabled_with["carol-phone"] = (s - 1, (c1, c2))
        return f"codes for steps {s - 1} and {s} accepted"
    r.run("m2b", "EnableMfaDevice(carol, pyotp codes for now-30 s and now)", enable_it)

    def listed_by_root():
        tok = need_token(ctx, "carol-phone")
        devs = mfa_serials(ctx, need_root(ctx), user_name="carol")
        mine = [d for d in devs if d.serial_number == tok.serial]
        expect(len(mine) == 1, f"carol's devices: {[d.serial_number for d in devs]}")
        expect(mine[0].user_name == "carol", f"user_name {mine[0].user_name!r}")
        expect(near_now(mine[0].enable_date), f"enable_date {mine[0].enable_date.ToJsonString()}")
        got = b.iam("GetMfaDevice", need_root(ctx), serial_number=tok.serial, user_name="carol")
        expect(got.user_name == "carol" and got.serial_number == tok.serial,
               f"GetMfaDevice: {got.user_name!r} {got.serial_number!r}")
        expect(got.HasField("enable_date") and near_now(got.enable_date), "GetMfaDevice: enable_date")
        return f"enable_date {mine[0].enable_date.ToJsonString()}"
    r.run("m2c", "ListMfaDevices(carol) and GetMfaDevice by root show it with an enable_date", listed_by_root)

    def listed_by_carol():
        tok = need_token(ctx, "carol-phone")
        ctx.broker.iam("PutUserPolicy", ctx.root, user_name="carol", policy_name="own-mfa",
                       policy_document='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                       '"Action":"iam:ListMFADevices","Resource":"arn:aws:iam::*:user/${aws:username}"}]}')
        devs = mfa_serials(ctx, need_carol(ctx))
        expect([d.serial_number for d in devs] == [tok.serial],
               f"carol's own list: {[d.serial_number for d in devs]}")
        expect(devs[0].user_name == "carol" and near_now(devs[0].enable_date),
               f"{devs[0].user_name!r} {devs[0].enable_date.ToJsonString()}")
        return tok.serial
    r.run("m2d", "carol's own ListMfaDevices() (signed with her key, under a self-service policy) shows it", listed_by_carol)


def check_m3(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def replay_exact():
        tok = need_token(ctx, "carol-phone")
        if "carol-phone" not in ctx.enabled_with:
            raise CheckFailed("the device was not enabled (m2b failed)")
        first, (c1, c2) = ctx.enabled_with["carol-phone"]
        b.iam("DeactivateMfaDevice", need_root(ctx), user_name="carol", serial_number=tok.serial)
        left = mfa_serials(ctx, need_root(ctx), user_name="carol")
        expect(not left, f"still listed after deactivation: {[d.serial_number for d in left]}")
        # Still the enabling step (room() above): the pair is inside the window, so only the
        # replay guard can refuse it.
        expect(step_now() == first + 1, "the step advanced since m2b: the replay would not be "
                                         "inside the window (timing bug in this script)")
        e = expect_error(INVALID_ARGUMENT, "InvalidAuthenticationCode",
                         lambda: b.iam("EnableMfaDevice", need_root(ctx), user_name="carol",
                                       serial_number=tok.serial, authentication_code1=c1,
                                       authentication_code2=c2))
        return str(e)
    r.run("m3a", "DeactivateMfaDevice, then the same two codes again -> InvalidAuthenticationCode", replay_exact)

    def replay_overlap():
        tok = need_token(ctx, "carol-phone")
        first, _ = ctx.enabled_with.get("carol-phone", (None, None))
        if first is None:
            raise CheckFailed("the device was not enabled (m2b failed)")
        # (first+1, first+2): new pair, but its first step was already accepted by m2b.
        e = expect_error(INVALID_ARGUMENT, "InvalidAuthenticationCode",
                         lambda: enable(ctx, "carol", tok, first + 1))
        return str(e)
    r.run("m3b", "a new pair whose first step was already accepted -> InvalidAuthenticationCode",
          replay_overlap)

    def fresh():
        tok = need_token(ctx, "carol-phone")
        first, _ = ctx.enabled_with.get("carol-phone", (None, None))
        if first is None:
            raise CheckFailed("the device was not enabled (m2b failed)")
        # The first unused steps are first+2, first+3. first+1 was "now" in m2b, so first+2 is now
        # or the next step (the window's upper edge) wherever we are: no waiting needed.
        s = first + 2
        now = step_now()
        expect(now in (s - 1, s), f"{now - s + 1} steps passed since m2b (timing)")
        enable(ctx, "carol", tok, s)
        ctx.enabled_with["carol-phone"] = (s, ctx.enabled_with["carol-phone"][1])
        devs = mfa_serials(ctx, need_root(ctx), user_name="carol")
        expect([d.serial_number for d in devs] == [tok.serial], "not listed after re-enabling")
        where = "next" if now == s - 1 else "current"
        return f"pair for steps {s},{s + 1} accepted (first code for the {where} step)"
    r.run("m3c", "re-enable with the next unused steps' codes -> ok", fresh)


def check_m4(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def malformed(field_no: int, bad: str):
        def go():
            tok = ctx.tokens.get("carol-backup") or create_virtual(ctx, "carol-backup")
            ctx.codes.add(bad)
            good = tok.code(step_now())
            ctx.codes.add(good)
            pair = (bad, good) if field_no == 1 else (good, bad)
            e = expect_error(INVALID_ARGUMENT, "ValidationError",
                             lambda: b.iam("EnableMfaDevice", need_root(ctx), user_name="carol",
                                           serial_number=tok.serial, authentication_code1=pair[0],
                                           authentication_code2=pair[1]),
                             message_contains=f"authenticationCode{field_no}")
            expect(bad not in e.message, f"the message echoes the code {bad!r}")
            expect(good not in e.message, "the message echoes the other code")
            return str(e)
        return go
    r.run("m4a", "authentication_code1 '12345' -> ValidationError naming authenticationCode1, no echo",
          malformed(1, "12345"))
    r.run("m4b", "authentication_code2 '12a456' -> ValidationError naming authenticationCode2, no echo",
          malformed(2, "12a456"))


def check_m5(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker
    state = {}

    def second():
        tok = ctx.tokens.get("carol-backup") or create_virtual(ctx, "carol-backup")
        need_carol(ctx)
        room(ctx, 6)  # m5b runs in this step too
        s = step_now()
        enable(ctx, "carol", tok, s - 1)
        state["s"] = s
        devs = {d.serial_number for d in mfa_serials(ctx, need_root(ctx), user_name="carol")}
        expect(devs == {tok.serial, need_token(ctx, "carol-phone").serial},
               f"carol's devices: {sorted(devs)}")
        return f"carol has {len(devs)} devices"
    r.run("m5a", "second virtual device enabled for carol", second)

    def assigned():
        tok = need_token(ctx, "carol-backup")
        if "s" not in state:
            raise CheckFailed("not enabled (m5a failed)")
        # Fresh codes that would be accepted if the device were free: only the assignment refuses.
        e = expect_error(grpc.StatusCode.ALREADY_EXISTS, "EntityAlreadyExists",
                         lambda: enable(ctx, "carol", tok, state["s"] + 1))
        return str(e)
    r.run("m5b", "EnableMfaDevice of an assigned device (fresh codes) -> EntityAlreadyExists", assigned)

    def unknown():
        serial = f"arn:aws:iam::{ctx.account}:mfa/no-such-device"
        e = expect_error(NOT_FOUND, "NoSuchEntity",
                         lambda: b.iam("EnableMfaDevice", need_root(ctx), user_name="carol",
                                       serial_number=serial, authentication_code1="123456",
                                       authentication_code2="654321"))
        return str(e)
    r.run("m5c", "EnableMfaDevice of an unknown serial -> NoSuchEntity", unknown)

    def resync():
        tok = need_token(ctx, "carol-backup")
        if "s" not in state:
            raise CheckFailed("not enabled (m5a failed)")
        root = need_root(ctx)

        def resync_at(first):
            c1, c2 = codes(ctx, tok, first)
            return b.iam("ResyncMfaDevice", root, user_name="carol", serial_number=tok.serial,
                         authentication_code1=c1, authentication_code2=c2)
        # The device "runs" 12 steps fast: outside the ±10 search.
        e = expect_error(INVALID_ARGUMENT, "InvalidAuthenticationCode", lambda: resync_at(step_now() + 12))
        # 4 steps fast: found, and the device is re-centred on it.
        s = step_now()
        resync_at(s + 4)
        state["resynced"] = s
        return f"+12 steps: {e.reason}; +4 steps: accepted"
    r.run("m5d", "ResyncMfaDevice: a device 12 steps fast is refused, 4 steps fast is accepted", resync)

    def recentred():
        tok = need_token(ctx, "carol-backup")
        if "resynced" not in state:
            raise CheckFailed("not resynced (m5d failed)")
        s = state["resynced"]
        # One code for s+6: outside +-1 of the clock, but the next step of a device re-centred on
        # its latest resync code (s+5), so only a recorded drift lets it through. (This assumes the
        # drift is measured on the second, newer code; RFC 6238 section 6 leaves that open.)
        # Control first: a code for s+9 is outside both the clock's window and the re-centred one
        # (s+4..s+7 at the latest), so a broker that accepted any well-formed code fails here.
        expect(step_now() in (s, s + 1), "timing: too many steps since the resync")

        def gst(code):
            return b.call(STS, "GetSessionToken",
                          sts_pb2.GetSessionTokenRequest(serial_number=tok.serial, token_code=code),
                          sts_pb2.GetSessionTokenResponse, need_carol(ctx))
        far = tok.code(s + 9)
        ctx.codes.add(far)
        e = expect_error(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied", lambda: gst(far),
                         message_contains="MultiFactorAuthentication failed")
        tc = tok.code(s + 6)
        ctx.codes.add(tc)
        resp = gst(tc)
        c = resp.credentials
        expect(bool(c.session_token), "no session token")
        ctx.secrets["carol's session secret"] = c.secret_access_key
        ctx.secrets["carol's session token"] = c.session_token
        # The session records the MFA (the session-token claims documented in src/credentials/token.rs): amr ["mfa"] in the token's claims.
        payload = c.session_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expect(claims.get("amr") == ["mfa"], f"session token amr {claims.get('amr')!r}")
        return f"resync step + 9: {e.reason}; resync step + 6: accepted, session carries amr"
    r.run("m5e", "after the resync, carol's GetSessionToken with a code 6 steps ahead works "
                 "(9 ahead does not)", recentred)

    def delete():
        tok = need_token(ctx, "carol-backup")
        root = need_root(ctx)
        e1 = expect_error(grpc.StatusCode.FAILED_PRECONDITION, "DeleteConflict",
                          lambda: b.iam("DeleteVirtualMfaDevice", root, serial_number=tok.serial))
        b.iam("DeactivateMfaDevice", root, user_name="carol", serial_number=tok.serial)
        b.iam("DeleteVirtualMfaDevice", root, serial_number=tok.serial)
        e2 = expect_error(NOT_FOUND, "NoSuchEntity",
                          lambda: b.iam("DeleteVirtualMfaDevice", root, serial_number=tok.serial))
        del ctx.tokens["carol-backup"]
        return f"assigned: {e1.reason}; deactivate+delete ok; again: {e2.reason}"
    r.run("m5f", "DeleteVirtualMfaDevice: assigned -> DeleteConflict; deactivated -> ok; again -> NoSuchEntity",
          delete)


def check_m6(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def go():
        root = need_root(ctx)
        phone = need_token(ctx, "carol-phone")
        spare = create_virtual(ctx, "spare")
        lists, raws = {}, []
        for status in ("Assigned", "Unassigned", "Any", None):
            req = iam_pb2.ListVirtualMfaDevicesRequest()
            if status:
                req.assignment_status = status
            body = req.SerializeToString()
            raw = b.raw_call(IAM, "ListVirtualMfaDevices", body,
                             sign(b.host, f"/{IAM}/ListVirtualMfaDevices", body, root, "iam"))
            raws.append(raw)
            lists[status] = iam_pb2.ListVirtualMfaDevicesResponse.FromString(raw).virtual_mfa_devices
        serials = {k: [d.serial_number for d in v] for k, v in lists.items()}
        assigned, unassigned, anyl = (set(serials[k]) for k in ("Assigned", "Unassigned", "Any"))
        for k, v in serials.items():
            expect(len(v) == len(set(v)), f"{k}: duplicates in {v}")
        expect(not assigned & unassigned, f"in both Assigned and Unassigned: {assigned & unassigned}")
        expect(assigned | unassigned == anyl, f"Assigned+Unassigned {sorted(assigned | unassigned)} "
                                              f"!= Any {sorted(anyl)}")
        expect(sorted(serials[None]) == sorted(serials["Any"]), "no assignment_status != Any")
        expect(phone.serial in assigned, f"{phone.serial} not Assigned")
        expect(spare.serial in unassigned, f"{spare.serial} not Unassigned")
        expect(not any(s.endswith("/carol-backup") for s in anyl), "the deleted device is still listed")
        entry = next(d for d in lists["Assigned"] if d.serial_number == phone.serial)
        expect(entry.HasField("user") and entry.user.user_name == "carol", "Assigned entry has no user carol")
        expect(entry.HasField("enable_date"), "Assigned entry has no enable_date")
        for k, v in lists.items():
            for d in v:
                expect(not d.base32_string_seed and not d.qr_code_png and not d.otpauth_uri,
                       f"{k}: {d.serial_number} carries a seed/PNG/URI")
        blob = b"".join(raws)
        for tok in ctx.tokens.values():
            expect(tok.seed_b32.encode() not in blob, "a seed is in the response bytes")
        expect(PNG_SIGNATURE not in blob, "a PNG is in the response bytes")
        return (f"Assigned {len(assigned)}, Unassigned {len(unassigned)}, Any {len(anyl)}; "
                "no seeds/PNGs/URIs")
    r.run("m6", "ListVirtualMfaDevices Assigned/Unassigned/Any consistent, no seeds or PNGs", go)


def check_m7(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker
    rnd = secrets.SystemRandom()
    serial1 = "GAKT%08d" % rnd.randrange(10 ** 8)
    serial2 = "GAKT%08d" % rnd.randrange(10 ** 8)
    seed1 = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    seed2_hex = secrets.token_hex(20)
    bad_seed = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    bad_hex = secrets.token_hex(20)
    remember_seed(ctx, "hardware 1", seed1)
    ctx.secrets["seed hardware 2 (hex)"] = seed2_hex
    ctx.secrets["seed hardware 2 (hex, uppercase)"] = seed2_hex.upper()
    remember_seed(ctx, "bad line 2", bad_seed)
    ctx.secrets["seed bad line 4 (hex)"] = bad_hex
    good1 = f"{serial1},{seed1},6,30,SHA1"
    good2 = f"{serial2},hex:{seed2_hex},6,30,SHA256"
    hw2 = Token(serial2, base64.b32encode(bytes.fromhex(seed2_hex)).decode().rstrip("="), hashlib.sha256)
    hw1 = Token(serial1, seed1)

    def mixed():
        root = need_root(ctx)
        text = "\n".join([
            good1,
            f"GAKT{rnd.randrange(10 ** 8):08d},{bad_seed},6,30,MD5",  # line 2: unknown algorithm
            good2,
            f"GAKT{rnd.randrange(10 ** 8):08d},hex:{bad_hex}zz,6,30,SHA1",  # line 4: not hex
        ]) + "\n"
        e = expect_error(INVALID_ARGUMENT, "InvalidInput",
                         lambda: b.iam("ImportHardwareMfaDevices", root, seed_file=text))
        for n in (2, 4):
            expect(re.search(rf"(?<!\d){n}(?!\d)", e.message) is not None, f"line {n} not named")
        for label, s in ctx.secrets.items():
            expect(s not in e.message, f"the message contains {label}")
        for chunk in (bad_seed[:8], bad_hex[:8], seed1[:8], seed2_hex[:8]):
            expect(chunk not in e.message, "the message contains part of a seed")
        # All or nothing: the good line 1 was not imported.
        e2 = expect_error(NOT_FOUND, "NoSuchEntity", lambda: enable(ctx, "carol", hw1, step_now()))
        return f"{e}; then enabling {serial1}: {e2.reason}"
    r.run("m7a", "import with bad lines 2 and 4 -> InvalidInput naming them, no seeds, nothing imported",
          mixed)

    def good():
        root = need_root(ctx)
        raw_req = iam_pb2.ImportHardwareMfaDevicesRequest(seed_file=good1 + "\n" + good2 + "\n")
        body = raw_req.SerializeToString()
        raw = b.raw_call(IAM, "ImportHardwareMfaDevices", body,
                         sign(b.host, f"/{IAM}/ImportHardwareMfaDevices", body, root, "iam"))
        resp = iam_pb2.ImportHardwareMfaDevicesResponse.FromString(raw)
        expect(list(resp.serial_numbers) == [serial1, serial2], f"serial_numbers {list(resp.serial_numbers)}")
        expect(seed1.encode() not in raw and seed2_hex.encode() not in raw, "a seed is in the response")
        ctx.tokens["hw1"], ctx.tokens["hw2"] = hw1, hw2
        return ", ".join(resp.serial_numbers)
    r.run("m7b", "import of two good lines (base32/SHA1, hex/SHA256) -> their serials", good)

    def use():
        tok = need_token(ctx, "hw2")
        root = need_root(ctx)
        b.iam("CreateUser", root, user_name="dave")
        ctx.dave = True
        room(ctx, 3)
        enable(ctx, "dave", tok, step_now() - 1)
        devs = [d.serial_number for d in mfa_serials(ctx, root, user_name="dave")]
        expect(devs == [tok.serial], f"dave's devices {devs}")
        return f"{tok.serial} (hex seed, SHA256) enabled for dave"
    r.run("m7c", "EnableMfaDevice(dave, imported SHA256 token, pyotp codes) -> ok", use)


def check_m8(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def summary():
        sm = dict(b.iam("GetAccountSummary", need_root(ctx)).summary_map)
        for k in ("Users", "MFADevices", "MFADevicesInUse", "AccountMFAEnabled"):
            expect(k in sm, f"no {k} in summary_map {sm}")
        users = 2 if ctx.dave else 1
        expect(sm["Users"] == users, f"Users {sm['Users']} != {users}")
        in_use = 2 if ctx.dave else 1  # carol-phone, dave's hardware token
        expect(sm["MFADevicesInUse"] == in_use, f"MFADevicesInUse {sm['MFADevicesInUse']} != {in_use}")
        expect(sm["AccountMFAEnabled"] == 0, f"AccountMFAEnabled {sm['AccountMFAEnabled']} (root has no MFA)")
        # Virtual devices now: carol-phone (assigned), spare (unassigned); plus two imported tokens.
        anyl = b.iam("ListVirtualMfaDevices", need_root(ctx), assignment_status="Any").virtual_mfa_devices
        expect(sm["MFADevices"] >= max(in_use, len(anyl)),
               f"MFADevices {sm['MFADevices']} < in use {in_use} / virtual {len(anyl)}")
        r.note("m8a", f"MFADevices = {sm['MFADevices']} with {len(anyl)} virtual devices (1 assigned) "
                      f"and 2 imported hardware tokens (1 assigned)")
        return ", ".join(f"{k}={sm[k]}" for k in ("Users", "MFADevices", "MFADevicesInUse",
                                                   "AccountMFAEnabled"))
    r.run("m8a", "GetAccountSummary: Users, MFADevicesInUse, AccountMFAEnabled", summary)

    def report():
        root = need_root(ctx)
        e = expect_error(grpc.StatusCode.FAILED_PRECONDITION, "ReportNotPresent",
                         lambda: b.iam("GetCredentialReport", root))
        states = []
        deadline = time.monotonic() + 10
        while True:
            st = b.iam("GenerateCredentialReport", root).state
            states.append(st)
            if st == "COMPLETE" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect(states[-1] == "COMPLETE", f"GenerateCredentialReport states {states}")
        rep = b.iam("GetCredentialReport", root)
        expect(rep.report_format == "text/csv", f"report_format {rep.report_format!r}")
        rows = list(csv.reader(io.StringIO(rep.content.decode("utf-8"))))
        expect(rows and rows[0] == CREDENTIAL_REPORT_COLUMNS,
               f"header {rows[0] if rows else None} is not AWS's 22 columns")
        recs = {row[0]: dict(zip(rows[0], row)) for row in rows[1:] if row}
        expect(all(len(row) == 22 for row in rows[1:] if row), "a row without 22 fields")
        expect("carol" in recs, f"no carol row: {sorted(recs)}")
        expect(recs["carol"]["mfa_active"] == "true", f"carol mfa_active {recs['carol']['mfa_active']!r}")
        expect(recs["carol"]["arn"] == f"arn:aws:iam::{ctx.account}:user/carol", "carol's arn")
        if ctx.dave:
            expect(recs.get("dave", {}).get("mfa_active") == "true", "dave's mfa_active is not true")
        root_row = recs.get("<root_account>")
        expect(root_row is not None, f"no <root_account> row: {sorted(recs)}")
        expect(root_row["mfa_active"] == "false", f"root mfa_active {root_row['mfa_active']!r}")
        return (f"before: {e.reason}; states {states}; {len(recs)} rows, carol mfa_active=true, "
                f"root false")
    r.run("m8b", "credential report: ReportNotPresent, then COMPLETE and AWS's CSV with mfa_active", report)


def check_m9(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker

    def create():
        return str(expect_error(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied",
                                lambda: b.iam("CreateVirtualMfaDevice", need_carol(ctx),
                                              virtual_mfa_device_name="carols-own")))
    r.run("m9a", "carol CreateVirtualMfaDevice -> AccessDenied", create)

    def deactivate():
        tok = need_token(ctx, "carol-phone")
        e = expect_error(grpc.StatusCode.PERMISSION_DENIED, "AccessDenied",
                         lambda: b.iam("DeactivateMfaDevice", need_carol(ctx), user_name="carol",
                                       serial_number=tok.serial))
        devs = [d.serial_number for d in mfa_serials(ctx, need_root(ctx), user_name="carol")]
        expect(devs == [tok.serial], f"carol's devices now {devs}")
        return str(e)
    r.run("m9b", "carol DeactivateMfaDevice(her own) -> AccessDenied, device still enabled", deactivate)


def check_m10(ctx: MfaCtx, r: Results) -> None:
    b = ctx.broker
    data_dir = b.data_dir
    creds_path = ctx.root_creds_path
    state = {}

    def root_mfa():
        root = need_root(ctx)
        tok = create_virtual(ctx, "root-mfa")
        room(ctx, 4)
        s = step_now()
        enable(ctx, "", tok, s - 1)  # empty user_name: the caller, i.e. root
        state["first"] = s - 1
        devs = [d.serial_number for d in mfa_serials(ctx, root)]
        expect(devs == [tok.serial], f"root's ListMfaDevices() {devs}")
        sm = b.iam("GetAccountSummary", root).summary_map
        expect(sm.get("AccountMFAEnabled") == 1, f"AccountMFAEnabled {sm.get('AccountMFAEnabled')}")
        return f"{tok.serial}; AccountMFAEnabled=1"
    r.run("m10a", "root enables its own device (empty user_name)", root_mfa)

    def recover():
        tok = need_token(ctx, "root-mfa")
        old_text = ctx.root_creds_text or open(creds_path, encoding="utf-8").read()
        rc = b.stop()
        expect(rc == 0, f"broker exit {rc} after SIGTERM")
        t0 = int(time.time())
        env = {k: v for k, v in os.environ.items() if not k.startswith("STS_BROKER_")}
        env.update(b.extra_env)
        p = subprocess.run([b.binary, "recover-root", "--data-dir", data_dir], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        ctx.recover_output = out + err
        expect(p.returncode == 0, f"recover-root exit {p.returncode}: {err.strip()[-500:]}")
        new_text = open(creds_path, encoding="utf-8").read()
        expect(new_text != old_text, "root-credentials unchanged")
        new = Creds.from_shared_file(creds_path)
        ctx.secrets["new root secret"] = new.secret_access_key
        state["new"] = new
        expect(AKIA_RE.match(new.access_key_id) is not None, f"new key id {new.access_key_id!r}")
        expect(new.access_key_id != need_root(ctx).access_key_id, "same key id as before")
        mode = os.stat(creds_path).st_mode & 0o777
        expect(mode == 0o600, f"new root-credentials mode {oct(mode)}")
        replaced = glob.glob(os.path.join(data_dir, "root-credentials.replaced-*"))
        expect(len(replaced) == 1, f"replaced files: {replaced}")
        suffix = replaced[0].rsplit("-", 1)[1]
        expect(suffix.isdigit() and abs(int(suffix) - t0) < 120, f"suffix {suffix!r} is not the unix time")
        expect(open(replaced[0], encoding="utf-8").read() == old_text, "the replaced file is not the old one")
        expect(new.access_key_id in out, "stdout does not name the new key id")
        expect(tok.serial in out or "root-mfa" in out, f"stdout does not name the device: {out!r}")
        expect(new.secret_access_key not in out + err, "the new secret is printed")
        expect(need_root(ctx).secret_access_key not in out + err, "the old secret is printed")
        return f"exit 0; stdout: {out.strip()!r}"
    r.run("m10b", "stop; recover-root: new key file, old kept as .replaced-<unix>, no secret printed",
          recover)

    def after():
        if b.proc is None:
            b.start()
        new = state.get("new")
        if new is None:
            raise CheckFailed("no new root key (m10b failed)")
        expect(b.whoami(new).arn == f"arn:aws:iam::{ctx.account}:root", "new key is not root")
        devs = [d.serial_number for d in mfa_serials(ctx, new)]
        expect(devs == [], f"root's ListMfaDevices() after recovery {devs}")
        sm = b.iam("GetAccountSummary", new).summary_map
        expect(sm.get("AccountMFAEnabled") == 0, f"AccountMFAEnabled {sm.get('AccountMFAEnabled')}")
        tok = need_token(ctx, "root-mfa")
        un = [d.serial_number for d in b.iam("ListVirtualMfaDevices", new,
                                              assignment_status="Unassigned").virtual_mfa_devices]
        expect(tok.serial in un, "root-mfa is not Unassigned")
        old = need_root(ctx)
        try:
            arn = b.whoami(old).arn
        except grpc.RpcError as err:
            raise CheckFailed(f"the old root key no longer works: {err.code().name} {err.details()}")
        expect(arn == f"arn:aws:iam::{ctx.account}:root", f"old key arn {arn!r}")
        return "new key is root; no root MFA devices; AccountMFAEnabled=0; old key still works"
    r.run("m10c", "restart: new root key works, root has no MFA device, old key still valid", after)

    def guard_survives():
        tok = need_token(ctx, "root-mfa")
        new = state.get("new")
        if new is None or "first" not in state:
            raise CheckFailed("no recovery (m10a/m10b failed)")
        first = state["first"]
        now = step_now()
        expect(now in (first + 1, first + 2), f"{now - first - 1} steps since m10a (timing)")
        e = expect_error(INVALID_ARGUMENT, "InvalidAuthenticationCode",
                         lambda: enable(ctx, "", tok, first + 1, new))
        enable(ctx, "", tok, first + 2, new)
        devs = [d.serial_number for d in mfa_serials(ctx, new)]
        expect(devs == [tok.serial], f"root's devices {devs}")
        return f"used step: {e.reason}; next unused pair accepted"
    r.run("m10d", "after recovery and restart the replay guard still refuses used steps", guard_survives)


def check_m11(ctx: MfaCtx, r: Results) -> None:
    def go():
        texts = broker_logs(ctx.broker)
        texts["recover-root output"] = ctx.recover_output
        problems = leaks(texts, ctx.secrets, ctx.codes)
        expect(not problems, "; ".join(problems[:5]))
        size = sum(len(t) for t in texts.values())
        return (f"{len(ctx.secrets)} secrets and {len(ctx.codes)} codes absent from "
                f"{len(texts)} outputs ({size} bytes)")
    r.run("m11a", "broker logs (at trace level) and recover-root output: no seed, code or secret", go)

    def data_files():
        data_dir = ctx.broker.data_dir
        names = sorted(n for n in os.listdir(data_dir)
                       if not n.startswith("root-credentials") and n != "master.key")
        expect(any(n.endswith(".db") for n in names), f"no database file in {names}")
        needles = {label: s.encode() for label, s in ctx.secrets.items() if label.startswith("seed ")}
        for label, s in list(ctx.secrets.items()):
            if label.startswith("seed ") and "lowercase" not in label and "uppercase" not in label:
                raw = (bytes.fromhex(s) if "(hex" in label
                       else base64.b32decode(s + "=" * (-len(s) % 8)))
                needles[label.replace("seed", "raw seed bytes")] = raw
        problems, size = [], 0
        for n in names:
            with open(os.path.join(data_dir, n), "rb") as f:
                blob = f.read()
            size += len(blob)
            problems += [f"{n} contains {label}" for label, x in needles.items() if x in blob]
            for c in sorted(ctx.codes):
                if re.search(rb"(?<![\d.])" + re.escape(c.encode()) + rb"(?!\d)", blob):
                    problems.append(f"{n} contains code {c}")
        expect(not problems, "; ".join(problems[:5]))
        return f"{', '.join(names)} ({size} bytes): no seed (text or raw bytes) and no code"
    r.run("m11b", "audit trail and database files hold no seed (text or raw) and no code", data_files)


def run_all(ctx: MfaCtx, r: Results) -> None:
    check_root_identity(ctx, r, "a")
    t0 = time.monotonic()
    for fn in (check_m1, check_m2, check_m3, check_m4, check_m5, check_m6, check_m7, check_m8,
               check_m9, check_m10, check_m11):
        fn(ctx, r)
    r.note("time", f"MFA checks took {time.monotonic() - t0:.1f}s, {ctx.slept:.1f}s of it waiting "
                   "for step boundaries")


# --------------------------------------------------------------------------- main


def main() -> int:
    # The broker logs at trace level, so that the hygiene check (m11) reads all it says.
    return run_traced(__doc__.split("\n\n")[0], run_all, MfaCtx, globals(), "INTEROP_MFA_BROKER_LOG")


if __name__ == "__main__":
    sys.exit(main())
