#!/usr/bin/env python3
"""Checks that botocore takes `sts-broker credential-process` as a credential_process source (AWS CLI User Guide, 'Sourcing credentials with an external process').

A user of the broker points a profile of ~/.aws/config at the CLI, as the README shows, and expects
an AWS SDK to pick the MFA session up with nothing else: this script does exactly that with
botocore's own credential chain (its ProcessProvider runs the command, parses the JSON, and turns
`Expiration` into a refreshable credential), then signs a GetCallerIdentity with what botocore
resolved. Usually started by tests/interop/run.sh:

    check_credential_process.py --broker target/debug/sts-broker --stubs DIR_WITH_GENERATED_PB2

Prints one line per check and finally `N passed, M failed`; exits 1 if anything failed.

The device's codes come from `--totp-secret-file` (the CI path of issue 6), so the CLI computes
them itself; the Python side only uses pyotp to enable the device. The CLI's cache lives under a
temporary XDG_CACHE_HOME, so a second resolution must be served from it without a new code.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

import botocore.credentials
import botocore.exceptions
import botocore.session
import pyotp

from broker_harness import (  # the pb2 names are rebound by load_stubs (run_main's script_globals)
    CheckFailed, Creds, Ctx, Results, check_root_identity, expect, need_root, run_main)

STEP = 30
ASIA_RE = re.compile(r"^ASIA[A-Z2-7]{16}$")


@dataclass
class CpCtx(Ctx):
    work: str = ""
    user: Optional[Creds] = None
    serial: str = ""
    seed_file: str = ""
    config_file: str = ""
    first: Optional[botocore.credentials.ReadOnlyCredentials] = None
    enabled_step: int = -1
    secrets: dict = field(default_factory=dict)


def write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def botocore_session(ctx: CpCtx, profile: str) -> botocore.session.Session:
    """A botocore session that sees only our config file: no other profile, env key or IMDS."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE"):
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = ctx.config_file
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(ctx.work, "no-such-credentials")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["XDG_CACHE_HOME"] = os.path.join(ctx.work, "cache")
    return botocore.session.Session(profile=profile)


def setup(ctx: CpCtx, r: Results) -> None:
    b = ctx.broker

    def go():
        root = need_root(ctx)
        ctx.work = tempfile.mkdtemp(prefix="sts-credproc-")
        b.iam("CreateUser", root, user_name="carol")
        key = b.iam("CreateAccessKey", root, user_name="carol").access_key
        ctx.user = Creds(key.access_key_id, key.secret_access_key)
        ctx.secrets["carol's long-term secret"] = key.secret_access_key
        dev = b.iam("CreateVirtualMfaDevice", root, virtual_mfa_device_name="carol-phone")
        dev = dev.virtual_mfa_device
        ctx.serial = dev.serial_number
        totp = pyotp.TOTP(dev.base32_string_seed)
        # (now-1, now) must stay inside the window, and cp1 must still run in this step.
        if STEP - (time.time() % STEP) < 10:
            time.sleep(STEP - (time.time() % STEP) + 0.1)
        now = int(time.time()) // STEP
        b.iam("EnableMfaDevice", root, user_name="carol", serial_number=ctx.serial,
              authentication_code1=totp.at((now - 1) * STEP),
              authentication_code2=totp.at(now * STEP))

        creds_file = os.path.join(ctx.work, "credentials")
        write_private(creds_file, "[carol]\n"
                      f"aws_access_key_id = {key.access_key_id}\n"
                      f"aws_secret_access_key = {key.secret_access_key}\n")
        ctx.seed_file = os.path.join(ctx.work, "carol.seed")
        write_private(ctx.seed_file, dev.base32_string_seed + "\n")
        base = [ctx.broker.binary, "credential-process", "--endpoint", f"http://{b.host}",
                "--credentials-file", creds_file, "--profile", "carol", "--no-prompt"]
        good = base + ["--serial-number", ctx.serial, "--totp-secret-file", ctx.seed_file,
                       "--duration-seconds", "3600"]
        # A code that is certainly wrong now: the device's code for a step an hour ago.
        wrong = totp.at((now - 120) * STEP)
        if wrong in {totp.at(s * STEP) for s in range(now - 2, now + 3)}:
            wrong = f"{(int(wrong) + 1) % 1_000_000:06d}"
        bad = base + ["--serial-number", ctx.serial, "--token-code", wrong, "--no-cache"]
        nocode = base + ["--serial-number", ctx.serial, "--no-cache"]
        config = (f"[profile carol-mfa]\ncredential_process = {shlex.join(good)}\n\n"
                  f"[profile carol-badcode]\ncredential_process = {shlex.join(bad)}\n\n"
                  f"[profile carol-nocode]\ncredential_process = {shlex.join(nocode)}\n")
        ctx.config_file = os.path.join(ctx.work, "config")
        write_private(ctx.config_file, config)
        ctx.enabled_step = now
        return f"carol with {ctx.serial} enabled; config {ctx.config_file}"
    r.run("cp0", "setup: user, enabled virtual MFA device, ~/.aws/config with credential_process", go)


def expect_refused(ctx: CpCtx, profile: str, want: str) -> str:
    """Resolving PROFILE through botocore fails with a message that contains WANT and no secret."""
    expect(bool(ctx.config_file), "setup failed")
    s = botocore_session(ctx, profile)
    try:
        creds = s.get_credentials()
        got = creds.get_frozen_credentials() if creds else None
    except botocore.exceptions.CredentialRetrievalError as e:
        msg = str(e)
        expect(want in msg, f"botocore's error does not say {want!r}: {msg!r}")
        for label, secret in ctx.secrets.items():
            expect(secret not in msg, f"the error contains {label}")
        return msg[:200]
    raise CheckFailed(f"profile {profile} resolved credentials {got!r}")


def check_resolves(ctx: CpCtx, r: Results) -> None:
    b = ctx.broker

    def spent():
        expect(ctx.enabled_step == int(time.time()) // STEP,
               "the step of enabling is over; setup took too long")
        # Enabling spent this step's code, so the seed file's current code is refused, and the
        # CLI says why and when to retry instead of leaving a bare "invalid code".
        return expect_refused(ctx, "carol-mfa", "try again in")
    r.run("cp1", "this step's code was spent by enabling: refused, with when to retry", spent)
    time.sleep(max(0.0, (ctx.enabled_step + 1) * STEP - time.time()) + 0.2)

    def go():
        expect(bool(ctx.config_file), "setup failed")
        s = botocore_session(ctx, "carol-mfa")
        creds = s.get_credentials()
        expect(creds is not None, "botocore found no credentials for profile carol-mfa")
        expect(creds.method == "custom-process",
               f"botocore used the {creds.method!r} provider, not custom-process")
        frozen = creds.get_frozen_credentials()
        expect(ASIA_RE.match(frozen.access_key) is not None,
               f"access key {frozen.access_key!r} is not a temporary ASIA key")
        expect(frozen.access_key != ctx.user.access_key_id, "got the long-term key back")
        expect(len(frozen.secret_key) == 40, f"secret is {len(frozen.secret_key)} chars")
        expect(bool(frozen.token), "no session token")
        ctx.secrets["session secret"] = frozen.secret_key
        expiry = getattr(creds, "_expiry_time", None)
        expect(isinstance(expiry, datetime.datetime), f"botocore kept no expiry ({expiry!r})")
        expect(expiry.tzinfo is not None, f"expiry {expiry!r} has no time zone")
        left = (expiry - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        expect(3500 < left <= 3600, f"expiry is {left:.0f}s away, --duration-seconds was 3600")
        ctx.first = frozen
        return f"{frozen.access_key}, refreshable, expires in {left:.0f}s"
    r.run("cp2", "botocore's credential_process provider resolves an MFA session", go)

    def signed():
        expect(ctx.first is not None, "cp2 failed")
        f = ctx.first
        who = b.whoami(Creds(f.access_key, f.secret_key, f.token))
        want = f"arn:aws:iam::{ctx.account}:user/carol"
        expect(who.arn == want, f"GetCallerIdentity says {who.arn!r}, not {want!r}")
        claims = json.loads(_b64(f.token.split(".")[1]))
        expect(claims.get("amr") == ["mfa"], f"token amr is {claims.get('amr')!r}, not ['mfa']")
        return f"{who.arn}, amr {claims['amr']}"
    r.run("cp3", "the resolved credentials sign a call and carry MFA", signed)

    def cached():
        expect(ctx.first is not None, "cp2 failed")
        # A second SDK process (a new botocore session) within the step: the CLI must answer from
        # its cache, or it would have to spend a second code of the same step and be refused.
        again = botocore_session(ctx, "carol-mfa").get_credentials().get_frozen_credentials()
        expect(again.access_key == ctx.first.access_key,
               f"second resolution got {again.access_key}, not the cached {ctx.first.access_key}")
        files = [os.path.join(d, n) for d, _, ns in os.walk(os.path.join(ctx.work, "cache"))
                 for n in ns]
        expect(bool(files), "no cache file was written")
        modes = {oct(os.stat(p).st_mode & 0o777) for p in files}
        expect(modes == {"0o600"}, f"cache file modes {modes}")
        return f"same {again.access_key} from the cache ({len(files)} file, mode 0600)"
    r.run("cp4", "a second botocore session is served from the CLI's cache", cached)


def check_failures(ctx: CpCtx, r: Results) -> None:
    r.run("cp5", "a wrong code: botocore raises CredentialRetrievalError with the broker's reason",
          lambda: expect_refused(ctx, "carol-badcode", "MultiFactorAuthentication failed"))
    r.run("cp6", "no code and --no-prompt: botocore raises with the CLI's message",
          lambda: expect_refused(ctx, "carol-nocode", "--no-prompt"))


def _b64(seg: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def run_all(ctx: CpCtx, r: Results) -> None:
    check_root_identity(ctx, r, "a")
    setup(ctx, r)
    check_resolves(ctx, r)
    check_failures(ctx, r)
    if ctx.work:
        import shutil
        shutil.rmtree(ctx.work, ignore_errors=True)


def main() -> int:
    return run_main(__doc__.split("\n\n")[0], run_all, CpCtx, globals())


if __name__ == "__main__":
    sys.exit(main())
