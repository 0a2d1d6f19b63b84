#!/usr/bin/env python3
"""Rebuilds the seed corpus of the policy, sigv4, seed_file and otpauth targets from the
repository's own test inputs (tests/fixtures/policy, tests/testdata/aws-sig-v4-test-suite and the
examples of src/mfa/import.rs). The session_token seeds are claims, tokens signed with the fuzz targets' fixed key ring (the
Ed25519 key whose seed is 32 bytes of 0x42) and malformed or attacking variants of them; signing
needs the `cryptography` package.
Run from anywhere; rewrites fuzz/corpus/<target>/ for all five targets."""
import base64
import hashlib
import glob
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")

# A few fixture files per area of the engine: operators, set qualifiers, variables, trust and
# resource policies, NotAction/NotResource, the MFA policies the broker exists for.
POLICY_FIXTURES = [
    "op-string", "op-numeric", "op-date", "op-bool-binary-ip-arn-null", "op-set-qualifiers",
    "op-ifexists", "variables-2012", "notaction-notresource", "resource-arn-matching",
    "trust-policy-principals", "s5-2e-bucket-policy-mfa", "s5-1-ex2-deny-without-mfa",
    "grammar-shapes", "evaluation-errors",
]
SIGV4_CASES = [
    "get-vanilla", "post-vanilla", "get-vanilla-query-order-key-case", "get-header-value-trim",
    "get-header-value-multiline", "post-header-key-sort", "get-utf8", "normalize-path/get-slashes",
    "normalize-path/get-relative-relative", "post-sts-token/post-sts-header-after",
    "post-x-www-form-urlencoded",
]


def reset(target):
    path = os.path.join(CORPUS, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(path, name, data):
    with open(os.path.join(path, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def context_lines(case, fixture):
    lines = []
    for e in case.get("typed_context", []):
        lines.append("|".join([e["context_key_name"], e["context_key_type"]] + e["context_key_values"]))
    merged = dict(fixture.get("context", {}))
    merged.update(case.get("context", {}))
    for key, value in merged.items():
        values = value if isinstance(value, list) else [value]
        kind = "stringList" if isinstance(value, list) else "string"
        lines.append("|".join([key, kind] + [str(v).lower() if isinstance(v, bool) else str(v) for v in values]))
    if case.get("credentials") == "MFA":
        lines.append("aws:MultiFactorAuthPresent|boolean|true")
        lines.append("aws:MultiFactorAuthAge|numeric|" + str(case.get("mfa_age", 60)))
    return lines


def policy():
    out = reset("policy")
    for name in POLICY_FIXTURES:
        fixture = json.load(open(os.path.join(ROOT, "tests/fixtures/policy", name + ".json")))
        for i, case in enumerate(fixture["cases"][:2]):
            uses = case.get("use")
            docs = [p for p in fixture["policies"] if not uses or p["id"] in uses] or fixture["policies"]
            doc = json.dumps(docs[0]["document"], separators=(",", ":"))
            request = [case["action"], case.get("resource", "*"), case.get("principal", fixture.get("principal", ""))]
            request += context_lines(case, fixture)
            write(out, "%s-%d" % (name, i), doc + "\0" + "\n".join(request) + "\n")


def sigv4():
    out = reset("sigv4")
    suite = os.path.join(ROOT, "tests/testdata/aws-sig-v4-test-suite")
    for case in SIGV4_CASES:
        base = os.path.basename(case)
        with open(os.path.join(suite, case, base + ".sreq"), "rb") as f:
            write(out, base, f.read().replace(b"\r\n", b"\n"))


SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def seed_file():
    out = reset("seed_file")
    write(out, "good", "# serial,seed,digits,period,algorithm\n"
          "GAHT12345678,%s,6,30,SHA1\n\n"
          "  GAHT12345679 , hex:3132333435363738393031323334353637383930 , 8 , 60 , sha256\n"
          "arn:aws:iam::123456789012:mfa/hw_token-1,base32:gezd gnbv gy3t qojq gezd gnbv gy3t qojq,6,30,SHA-512\n" % SEED)
    write(out, "bom-crlf", "\ufeffGAHT12345678,%s,6,30,SHA1\r\n# c\r\n" % SEED)
    write(out, "bad-lines", "GAHT12345678,{s},6,30,SHA1\nSHORT,{s},6,30,SHA1\n"
          "gaht12345678,{s},6,30,SHA1\nGAHT00000001,JBSWY3DPEHPK3PXP,6,30,SHA1\n"
          "GAHT00000002,{s},7,45,MD5\nGAHT00000003,{s},6,30\n"
          "GAHT00000005,hex:zz32333435363738393031323334353637383930,6,30,SHA1\n".format(s=SEED))
    write(out, "comments-only", "# only\n\n   \n")


def otpauth():
    out = reset("otpauth")
    write(out, "aws-defaults", "sts-broker\nalice@123456789012\nSHA1,6,30\nGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    write(out, "encoded-labels", "ACME Co & Sons\nbob/dev+ops#1?x=\u00fc\nSHA256,8,60\ngezd gnbv gy3t qojq gezd gnbv gy3t qojq")
    write(out, "bad-label", "Bad:Issuer\nalice\nSHA512,8,30\n%s" % SEED)
    write(out, "raw-seed", "sts-broker\nalice\n\n0123456789abcdef0123")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session_token():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    out = reset("session_token")
    key = Ed25519PrivateKey.from_private_bytes(bytes([0x42]) * 32)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = b64(hashlib.sha256(public).digest()[:12])
    now = 1800000000
    claims = {
        "iss": "sts-broker:111122223333", "aud": "sts-broker",
        "sub": "arn:aws:iam::111122223333:user/alice", "iat": now, "nbf": now, "exp": now + 900,
        "jti": "j1", "akid": "ASIAAAAAAAAAAAAAAAAA", "amr": ["mfa"], "auth_time": now,
        "kind": "session", "uid": "AIDAEXAMPLE",
    }
    role = dict(claims, kind="role", sub="arn:aws:sts::111122223333:assumed-role/admin/s1",
                uid="AROAEXAMPLE:s1", role_id="AROAEXAMPLE", src="arn:aws:iam::111122223333:user/alice",
                chained=True, policy='{"Version":"2012-10-17","Statement":[]}')
    del role["amr"], role["auth_time"]

    def compact(v):
        return json.dumps(v, separators=(",", ":")).encode()

    def token(header, body, signer=key):
        signing_input = b64(compact(header)) + "." + b64(compact(body))
        return signing_input + "." + b64(signer.sign(signing_input.encode()))

    header = {"typ": "sts-session+jwt", "alg": "EdDSA", "kid": kid}
    write(out, "claims-session", compact(claims))
    write(out, "claims-role-edited", compact(role) + b"\n40:65 200:48")
    write(out, "claims-expired", compact(dict(claims, exp=now)))
    good = token(header, claims)
    write(out, "token-good", good)
    write(out, "token-role", token(header, role))
    write(out, "token-wrong-audience", token(header, dict(claims, aud="other")))
    write(out, "token-alg-none", b64(compact(dict(header, alg="none"))) + "." + b64(compact(claims)) + ".")
    write(out, "token-jwk-header", token(dict(header, jwk={"kty": "OKP", "crv": "Ed25519", "x": b64(public)}), claims))
    other = Ed25519PrivateKey.from_private_bytes(bytes([0x43]) * 32)
    write(out, "token-other-key", token(header, claims, other))
    write(out, "token-bad-signature", good[:-4] + "AAAA")


if __name__ == "__main__":
    session_token()
    policy()
    sigv4()
    seed_file()
    otpauth()
