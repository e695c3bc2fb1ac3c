"""The signer's ACME account keys and signatures, asked for by the real
scheduler (its test hook acme-signer relays ACME_ACCOUNT_GET, ACME_JWS_SIGN
and ACME_EAB_SIGN and logs the answers): JWKs and thumbprints recomputed
here, JWS signatures (ES256, ES384, RS256) verified with the openssl CLI,
key files 0600 under key_dir/acme wrapped with the CA passphrase and loaded
again by a restarted signer, another alg refused, EAB HMACs of a secret
sealed through POST /api/v1/issuers as Python's hmac computes them, bad
input refused, and no key material in any log. Key rollover: a pending key
(key_dir/acme/<issuer>.key.next) of another algorithm, kept by a restarted
signer, signing keyChange inner JWS objects only, committed over the
account key or aborted; retirement of a deactivated account's key; their
bad input refused."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TEST_HOOKS, Api, Cases, Certward, Postgres, check, log, make_key, make_root, psql, teardown,
                     wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
PASSPHRASE = "acme passphrase " + os.urandom(6).hex()


# ---- helpers ----

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def log_text(name):
    try:
        with open(os.path.join(cw.logs, name + ".log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


seq = [0]


def ask(req):
    """req sent to the signer by the scheduler; ("ok", {kv}) or ("error",
    (code, message)), or ("unsent", the hook's answer) when the scheduler's
    encoder refused it."""
    seq[0] += 1
    path = os.path.join(reqdir, "%d.json" % seq[0])
    with open(path, "w") as f:
        json.dump(req, f)
    os.chmod(path, 0o644)
    start = len(log_text("scheduler"))
    out = cw.ctl("test-hook", "scheduler", "acme-signer", path, check_rc=False)
    if "sent to the signer" not in out.stderr:
        return "unsent", out.stdout + out.stderr
    tag = 'msg="acme-signer %s: ' % path

    def answered():
        for line in log_text("scheduler")[start:].splitlines():
            if tag in line:
                return line
        return None
    line = wait_for("the answer to %s" % path, answered, timeout=60)
    if tag + "ok" in line:
        return "ok", dict(re.findall(r" (jwk|thumbprint|signature|type|file)=(\S+)", line))
    m = re.search(r'acme-signer [^:]*: error: (.*?)" code=(\d+)', line)
    check(m, "unreadable answer: %r" % line)
    return "error", (int(m.group(2)), m.group(1))


def account(issuer_id, alg):
    kind, a = ask({"message": "ACME_ACCOUNT_GET", "issuer_id": issuer_id, "alg": alg})
    check(kind == "ok" and a["type"] == "ACME_ACCOUNT", "GET %s %s: %r" % (issuer_id, alg, (kind, a)))
    jwk_text = bytes.fromhex(a["jwk"]).decode()
    return jwk_text, json.loads(jwk_text), a["thumbprint"]


def jws_sign(issuer_id, signing_input):
    return ask({"message": "ACME_JWS_SIGN", "issuer_id": issuer_id, "signing_input": signing_input})


def signing_input(alg, payload, **extra):
    protected = dict({"alg": alg, "nonce": b64u(os.urandom(16)), "url": "https://127.0.0.1:14000/acme/new-order"},
                     **extra)
    return b64u(json.dumps(protected).encode()) + "." + b64u(json.dumps(payload).encode())


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    return der(0x02, b"\0" + b if b[0] & 0x80 else b)


def jwk_pem(jwk):
    """The SubjectPublicKeyInfo of a public JWK, as PEM, built by hand."""
    if jwk["kty"] == "EC":
        curve = {"P-256": "2a8648ce3d030107", "P-384": "2b81040022"}[jwk["crv"]]
        alg = der(0x30, der(0x06, bytes.fromhex("2a8648ce3d0201")) + der(0x06, bytes.fromhex(curve)))
        key = b"\x04" + unb64u(jwk["x"]) + unb64u(jwk["y"])
    else:
        alg = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
        key = der(0x30, der_int(unb64u(jwk["n"])) + der_int(unb64u(jwk["e"])))
    spki = der(0x30, alg + der(0x03, b"\0" + key))
    b = base64.b64encode(spki).decode()
    return "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % "\n".join(
        b[i:i + 64] for i in range(0, len(b), 64))


def verifies(jwk, alg, text, sig):
    """openssl's word on sig (as the JWS carries it) over text."""
    d = tempfile.mkdtemp(dir=root)
    pub, data, sigf = (os.path.join(d, n) for n in ("pub.pem", "data", "sig"))
    with open(pub, "w") as f:
        f.write(jwk_pem(jwk))
    with open(data, "wb") as f:
        f.write(text.encode())
    if alg.startswith("ES"):
        w = len(sig) // 2  # r||s to the DER openssl wants
        sig = der(0x30, der_int(sig[:w]) + der_int(sig[w:]))
    with open(sigf, "wb") as f:
        f.write(sig)
    out = subprocess.run(["openssl", "dgst", "-sha384" if alg == "ES384" else "-sha256", "-verify", pub,
                          "-signature", sigf, data], capture_output=True, text=True, timeout=30)
    shutil.rmtree(d)
    return out.returncode == 0 and "Verified OK" in out.stdout


def acme_dir():
    return os.path.join(cw.state, "signer", "acme")


def every_log():
    text = ""
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name), errors="replace") as f:
            text += f.read()
    with open(os.path.join(cw.root, "certwardd.out"), errors="replace") as f:
        return text + f.read()


def refused(kind_ans, needle, code=22):
    kind, ans = kind_ans
    check(kind == "error" and ans[0] == code and needle in ans[1], "not refused with %r: %r" % (needle, kind_ans))


# ---- cases ----

def es256_account():
    """The first GET makes a P-256 key in key_dir/acme/<issuer>.key (0600,
    wrapped with the passphrase, its directory 0700); the JWK is in RFC
    7638's member order and its thumbprint is the one computed here; a
    second GET gives the same key."""
    text, jwk, thumb = account("acme-es256", "ES256")
    check(list(jwk) == ["crv", "kty", "x", "y"] and jwk["crv"] == "P-256" and jwk["kty"] == "EC", "jwk: %s" % text)
    check(len(unb64u(jwk["x"])) == 32 and len(unb64u(jwk["y"])) == 32, "coordinates: %s" % text)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    check(text == canonical, "not the RFC 7638 form: %s" % text)
    check(thumb == b64u(hashlib.sha256(canonical.encode()).digest()), "thumbprint %s" % thumb)
    check(account("acme-es256", "ES256") == (text, jwk, thumb), "a second GET gave another key")
    path = os.path.join(acme_dir(), "acme-es256.key")
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600 and stat.S_IMODE(os.stat(acme_dir()).st_mode) == 0o700,
          "modes %o %o" % (st.st_mode, os.stat(acme_dir()).st_mode))
    with open(path) as f:
        check("BEGIN ENCRYPTED PRIVATE KEY" in f.read(), "the account key is not wrapped")
    out = subprocess.run(["openssl", "pkey", "-in", path, "-passin", "file:" + passfile, "-pubout"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and out.stdout == jwk_pem(jwk), "the file's key is not the JWK's: %r" % out)
    made = [l for l in log_text("signer").splitlines() if "made an ACME account key" in l]
    check(len(made) == 1 and "issuer_id=acme-es256 alg=ES256 thumbprint=" + thumb in made[0], "%r" % made)


def signatures_verify():
    """JWS signatures of each algorithm verify with the JWK (openssl): r||s
    of 64 and 96 bytes, RSA PKCS#1 v1.5 of a 3072-bit key; a changed input
    does not verify."""
    for issuer, alg, size in (("acme-es256", "ES256", 64), ("acme-es384", "ES384", 96),
                              ("acme-rs256", "RS256", 384)):
        _, jwk, _ = account(issuer, alg)
        if alg == "RS256":
            check(list(jwk) == ["e", "kty", "n"] and jwk["e"] == "AQAB" and len(unb64u(jwk["n"])) == 384,
                  "RSA jwk: %r" % jwk)
        elif alg == "ES384":
            check(jwk["crv"] == "P-384" and len(unb64u(jwk["x"])) == 48, "P-384 jwk: %r" % jwk)
        for payload in ({"identifiers": [{"type": "dns", "value": "www.example.com"}]}, ""):
            text = signing_input(alg, payload, kid="https://127.0.0.1:14000/acme/acct/1")
            if payload == "":
                text = text.split(".")[0] + "."  # POST-as-GET: an empty payload
            kind, ans = jws_sign(issuer, text)
            check(kind == "ok" and ans["type"] == "ACME_JWS_SIGNATURE", "%s: %r" % (alg, (kind, ans)))
            sig = bytes.fromhex(ans["signature"])
            check(len(sig) == size, "%s: %d bytes" % (alg, len(sig)))
            check(verifies(jwk, alg, text, sig), "%s: the signature does not verify" % alg)
            check(not verifies(jwk, alg, text + "A", sig), "%s: a changed input verifies" % alg)
    m = cw.metrics("signer")
    check(m.get("acme_jws_signatures_total") == 6, "metrics: %r" % m.get("acme_jws_signatures_total"))


def another_alg_refused():
    """A key is of one alg for good: a GET with another is refused, and so
    is an alg that is not one of the three, or a JWS naming another alg."""
    refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-es256", "alg": "ES384"}),
            "the account key is ES256")
    refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-rs256", "alg": "ES256"}),
            "the account key is RS256")
    refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-new", "alg": "HS256"}),
            "alg: one of ES256, ES384, RS256")
    refused(jws_sign("acme-es256", signing_input("RS256", {})), "the protected header's alg is not ES256")
    refused(jws_sign("acme-es256", signing_input("none", {})), "the protected header's alg is not ES256")
    check(not os.path.exists(os.path.join(acme_dir(), "acme-new.key")), "a refused GET made a key")


def bad_input_refused():
    """Bad issuer ids, signing inputs that are not a JWS's, a JWS for an
    issuer without a key, and fields past their bounds (the scheduler's
    encoder does not send them)."""
    refused(jws_sign("acme-none", signing_input("ES256", {})),
            "no account key for issuer acme-none (ACME_ACCOUNT_GET makes it)")
    for bad in ("../../etc", ".hidden", "a/b", ""):
        refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": bad, "alg": "ES256"}), "issuer_id: not a valid id")
        refused(jws_sign(bad, signing_input("ES256", {})), "issuer_id: not a valid id")
    good = signing_input("ES256", {"a": 1})
    for text, needle in (("", "not <protected>.<payload>"), ("abc", "not <protected>.<payload>"),
                         ("." + good.split(".")[1], "not <protected>.<payload>"),
                         (good + ".x", "the payload is not base64url"),
                         (good.split(".")[0] + ".a+b", "the payload is not base64url"),
                         ("!!!." + good.split(".")[1], "not a base64url JSON object"),
                         (b64u(b"[1,2]") + ".", "not a base64url JSON object"),
                         (b64u(b'{"alg":"ES256","alg":"ES256"}') + ".", "not a base64url JSON object"),
                         (b64u(b'{"nonce":"x"}') + ".", "the protected header's alg is not ES256")):
        refused(jws_sign("acme-es256", text), needle)
    # past the catalogue's bounds: refused by the encoder, never sent
    big = signing_input("ES256", {"x": "y" * 13000})
    check(len(big) > 16384, "the oversize input is not oversize")
    kind, ans = jws_sign("acme-es256", big)
    check(kind == "unsent" and "not sent" in ans, "16 KiB+ signing input: %r" % ((kind, ans),))
    kind, ans = ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "a" * 65, "alg": "ES256"})
    check(kind == "unsent" and "not sent" in ans, "65-byte issuer id: %r" % ((kind, ans),))
    # just within the bound: signed
    text = signing_input("ES256", {})
    text = text + "A" * (16384 - len(text) - (16384 - len(text)) % 4)
    check(jws_sign("acme-es256", text)[0] == "ok", "16 KiB signing input refused")
    check(cw.metrics("signer").get("acme_refused_total", 0) >= 20, "refusals not counted")


def restart_keeps_keys():
    """A restarted signer reads the wrapped keys again: the same JWKs, and
    signatures that verify with them."""
    before = {i: account(i, a) for i, a in (("acme-es256", "ES256"), ("acme-rs256", "RS256"))}
    pid = cw.status()["signer"]["pid"]
    cw.ctl("restart", "signer")
    wait_for("signer back", lambda: cw.all_running() and cw.status()["signer"]["pid"] != pid, timeout=60)
    # the scheduler's channel to the new signer comes with PEER_UP
    wait_for("the scheduler reaches the new signer",
             lambda: ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-es256", "alg": "ES256"})[0] == "ok",
             timeout=30, interval=0.5)
    text = signing_input("ES256", {"after": "restart"})
    kind, ans = jws_sign("acme-es256", text)
    check(kind == "ok" and verifies(before["acme-es256"][1], "ES256", text, bytes.fromhex(ans["signature"])),
          "a signature after the restart: %r" % ((kind, ans),))
    for i, a in (("acme-es256", "ES256"), ("acme-rs256", "RS256")):
        check(account(i, a) == before[i], "%s changed on restart" % i)
    check(sum("made an ACME account key" in l for l in log_text("signer").splitlines()) == 3,
          "a key was made again")


def sealed_of(issuer_id):
    return psql(pg, "SELECT coalesce(encode(secret_config, 'hex'), '') FROM issuers WHERE id = '%s'"
                % issuer_id).strip()


def make_issuer(name, secrets, kind="ACME"):
    config = dict({"directory_url": "https://127.0.0.1:14000/dir", "challenge_type": "http-01",
                   "eab_key_id": "kid-" + name}, **secrets) if kind == "ACME" else secrets
    code, i = api.call("POST", "/api/v1/issuers", admin, {"name": name, "type": kind, "config": config})
    check(code == 201, "POST issuer %s: %r" % (name, (code, i)))
    return i["id"]


def eab():
    """ACME_EAB_SIGN with an issuer's sealed secret_config: the HMAC-SHA256
    Python computes with the base64url key (padded or not); refused without
    eab_hmac_key, with one that is not base64url, with a blob that does not
    open and with a signing input that is not an HS256 JWS's."""
    for name, pad in (("eab-plain", False), ("eab-padded", True)):
        raw = os.urandom(32)
        text_key = base64.urlsafe_b64encode(raw).decode()
        if not pad:
            text_key = text_key.rstrip("=")
        keys[name] = (raw, text_key)
        sealed = sealed_of(make_issuer(name, {"eab_hmac_key": text_key}))
        check(sealed and text_key.encode().hex() not in sealed, "sealed: %r" % sealed[:80])
        _, jwk, _ = account("acme-es256", "ES256")
        text = b64u(json.dumps({"alg": "HS256", "kid": "kid-" + name,
                                "url": "https://127.0.0.1:14000/acme/new-acct"}).encode()) + "." + \
            b64u(json.dumps(jwk, separators=(",", ":")).encode())
        kind, ans = ask({"message": "ACME_EAB_SIGN", "sealed": sealed, "signing_input": text})
        check(kind == "ok" and ans["type"] == "ACME_EAB_SIGNATURE", "%s: %r" % (name, (kind, ans)))
        check(bytes.fromhex(ans["signature"]) == hmac.new(raw, text.encode(), hashlib.sha256).digest(),
              "%s: not the HMAC" % name)
        refused(ask({"message": "ACME_EAB_SIGN", "sealed": sealed, "signing_input": signing_input("ES256", {})}),
                "the protected header's alg is not HS256")
        refused(ask({"message": "ACME_EAB_SIGN", "sealed": sealed, "signing_input": ""}),
                "not <protected>.<payload>")
        flipped = sealed[:-4] + ("0000" if sealed[-4:] != "0000" else "1111")
        refused(ask({"message": "ACME_EAB_SIGN", "sealed": flipped, "signing_input": text}), "do not open")
    hs = b64u(b'{"alg":"HS256"}') + "." + b64u(b"{}")
    # a sealed blob without eab_hmac_key (an ACME issuer's config has no other secret: another type's)
    refused(ask({"message": "ACME_EAB_SIGN", "sealed": sealed_of(make_issuer("eab-none", {"api_token": "t0k"},
                                                                             kind="VaultPKI")),
                 "signing_input": hs}), "the issuer has no eab_hmac_key")
    refused(ask({"message": "ACME_EAB_SIGN", "sealed": "", "signing_input": hs}), "the issuer has no eab_hmac_key")
    refused(ask({"message": "ACME_EAB_SIGN", "sealed": sealed_of(make_issuer("eab-bad", {"eab_hmac_key": "no*b64!"})),
                 "signing_input": hs}), "the issuer's eab_hmac_key is not base64url")
    m = cw.metrics("signer")
    check(m.get("acme_eab_signatures_total") == 2, "eab metrics: %r" % m.get("acme_eab_signatures_total"))


def key_msg(message, issuer_id, **fields):
    return ask(dict({"message": message, "issuer_id": issuer_id}, **fields))


def jwk_of(a):
    text = bytes.fromhex(a["jwk"]).decode()
    return text, json.loads(text)


def key_change_input(alg, new_jwk, old_jwk, account="https://127.0.0.1:14000/my-account/1", header_jwk=None,
                     **payload):
    """The inner JWS of a keyChange (RFC 8555 7.3.5), as the scheduler makes it."""
    protected = {"alg": alg, "jwk": header_jwk or new_jwk, "url": "https://127.0.0.1:14000/rollover-account-key"}
    body = dict({"account": account, "oldKey": old_jwk}, **payload)
    return b64u(json.dumps(protected).encode()) + "." + b64u(json.dumps(body).encode())


def openssl_pub(path):
    out = subprocess.run(["openssl", "pkey", "-in", path, "-passin", "file:" + passfile, "-pubout"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "%s does not open: %s" % (path, out.stderr))
    return out.stdout


def rollover():
    """ACME_KEY_NEXT makes a pending key of another algorithm in
    <issuer>.key.next (0600, wrapped), refuses a second one while it is
    pending and gives it back with alg ""; a restarted signer still has it.
    ACME_JWS_SIGN_NEXT signs a keyChange inner JWS with it (openssl verifies
    with the new JWK) and nothing else, while ACME_JWS_SIGN still signs with
    the account key. ACME_KEY_COMMIT with another thumbprint is refused; with
    the pending key's it replaces the account key's file (.next gone), asked
    again it answers the same. ACME_KEY_ABORT removes a pending key."""
    old_text, old, old_tp = account("acme-roll", "ES256")
    path = os.path.join(acme_dir(), "acme-roll.key")
    refused(key_msg("ACME_KEY_NEXT", "acme-roll", alg=""), "no key rollover is pending for issuer acme-roll", 2)
    kind, a = key_msg("ACME_KEY_NEXT", "acme-roll", alg="ES384")
    check(kind == "ok" and a["type"] == "ACME_ACCOUNT", "NEXT: %r" % ((kind, a),))
    new_text, new = jwk_of(a)
    check(new["crv"] == "P-384" and a["thumbprint"] == b64u(hashlib.sha256(new_text.encode()).digest()),
          "the pending JWK: %s %s" % (new_text, a["thumbprint"]))
    new_tp = a["thumbprint"]
    st = os.stat(path + ".next")
    check(stat.S_IMODE(st.st_mode) == 0o600, "the pending key's mode %o" % st.st_mode)
    with open(path + ".next") as f:
        check("BEGIN ENCRYPTED PRIVATE KEY" in f.read(), "the pending key is not wrapped")
    check(openssl_pub(path + ".next") == jwk_pem(new) and openssl_pub(path) == jwk_pem(old),
          "the files' keys are not the JWKs'")
    refused(key_msg("ACME_KEY_NEXT", "acme-roll", alg="ES256"), "a key rollover is pending for issuer acme-roll", 17)
    # a crash between the CA's answer and the commit: the pending key is on disk
    pid = cw.status()["signer"]["pid"]
    cw.ctl("restart", "signer")
    wait_for("signer back", lambda: cw.all_running() and cw.status()["signer"]["pid"] != pid, timeout=60)
    wait_for("the scheduler reaches the new signer",
             lambda: key_msg("ACME_KEY_NEXT", "acme-roll", alg="")[0] == "ok", timeout=30, interval=0.5)
    kind, a = key_msg("ACME_KEY_NEXT", "acme-roll", alg="")
    check(kind == "ok" and jwk_of(a)[1] == new and a["thumbprint"] == new_tp, "the pending key after a restart")
    # the inner JWS, by the new key
    text = key_change_input("ES384", new, old)
    kind, ans = ask({"message": "ACME_JWS_SIGN_NEXT", "issuer_id": "acme-roll", "signing_input": text})
    check(kind == "ok" and ans["type"] == "ACME_JWS_SIGNATURE", "SIGN_NEXT: %r" % ((kind, ans),))
    sig = bytes.fromhex(ans["signature"])
    check(len(sig) == 96 and verifies(new, "ES384", text, sig), "the inner JWS does not verify with the new key")
    for bad, needle in ((key_change_input("ES384", new, old, header_jwk=old), "jwk is not the pending key"),
                        (key_change_input("ES384", new, new), "oldKey is not the account key"),
                        (key_change_input("ES384", new, old, account=7), "not a keyChange object"),
                        (key_change_input("ES256", new, old), "the protected header's alg is not ES384"),
                        (signing_input("ES384", {"identifiers": []}, jwk=new), "not a keyChange object"),
                        (signing_input("ES384", {}, kid="https://127.0.0.1:14000/my-account/1"),
                         "jwk is not the pending key"),
                        ("", "not <protected>.<payload>")):
        refused(ask({"message": "ACME_JWS_SIGN_NEXT", "issuer_id": "acme-roll", "signing_input": bad}), needle)
    refused(ask({"message": "ACME_JWS_SIGN_NEXT", "issuer_id": "acme-es256",
                 "signing_input": key_change_input("ES256", old, old)}), "no key rollover is pending", 2)
    # the outer JWS: the account key still
    text = signing_input("ES256", {"x": 1}, kid="https://127.0.0.1:14000/my-account/1")
    kind, ans = jws_sign("acme-roll", text)
    check(kind == "ok" and verifies(old, "ES256", text, bytes.fromhex(ans["signature"])), "the outer JWS")
    refused(key_msg("ACME_KEY_COMMIT", "acme-roll", thumbprint=old_tp), "has another thumbprint")
    kind, a = key_msg("ACME_KEY_COMMIT", "acme-roll", thumbprint=new_tp)
    check(kind == "ok" and jwk_of(a)[1] == new and a["thumbprint"] == new_tp, "COMMIT: %r" % ((kind, a),))
    check(not os.path.exists(path + ".next") and openssl_pub(path) == jwk_pem(new),
          "the account key's file after the commit")
    check(key_msg("ACME_KEY_COMMIT", "acme-roll", thumbprint=new_tp) == (kind, a), "a second COMMIT")
    kind, a = ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-roll", "alg": ""})
    check(kind == "ok" and a["thumbprint"] == new_tp, "ACCOUNT_GET with no alg: %r" % ((kind, a),))
    refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-roll", "alg": "ES256"}), "the account key is ES384")
    text = signing_input("ES384", {"after": "rollover"}, kid="https://127.0.0.1:14000/my-account/1")
    kind, ans = jws_sign("acme-roll", text)
    check(kind == "ok" and verifies(new, "ES384", text, bytes.fromhex(ans["signature"])), "signed by the new key")
    # abort
    kind, a = key_msg("ACME_KEY_NEXT", "acme-roll", alg="RS256")
    check(kind == "ok" and jwk_of(a)[1]["kty"] == "RSA" and os.path.exists(path + ".next"), "NEXT RS256")
    refused(key_msg("ACME_KEY_ABORT", "acme-roll", thumbprint=new_tp), "has another thumbprint")
    kind, d = key_msg("ACME_KEY_ABORT", "acme-roll", thumbprint=a["thumbprint"])
    check(kind == "ok" and d["type"] == "ACME_KEY_DONE" and not os.path.exists(path + ".next"), "ABORT: %r" % (d,))
    check(key_msg("ACME_KEY_ABORT", "acme-roll", thumbprint=a["thumbprint"])[0] == "ok", "ABORT with none pending")
    refused(key_msg("ACME_KEY_NEXT", "acme-roll", alg=""), "no key rollover is pending", 2)
    check(openssl_pub(path) == jwk_pem(new), "an abort touched the account key")
    lines = log_text("signer")
    check("made a pending ACME account key" in lines and "the pending ACME account key is the account key now"
          in lines and "previous=" + old_tp in lines and "discarded the pending ACME account key" in lines,
          "the signer's log lines of the rollover")


def retire():
    """ACME_KEY_RETIRE with another thumbprint is refused; with the account
    key's, the file becomes <issuer>.key.deactivated.<unix time> (a pending
    key goes with it), the key signs nothing more, ACME_ACCOUNT_GET "" finds
    none and the next ACME_ACCOUNT_GET makes a new key. An issuer with no
    key: nothing to retire."""
    _, old, tp = account("acme-retire", "ES256")
    check(key_msg("ACME_KEY_NEXT", "acme-retire", alg="ES256")[0] == "ok", "a pending key")
    refused(key_msg("ACME_KEY_RETIRE", "acme-retire", thumbprint=account("acme-es256", "ES256")[2]),
            "has another thumbprint")
    before = int(time.time())
    kind, d = key_msg("ACME_KEY_RETIRE", "acme-retire", thumbprint=tp)
    check(kind == "ok" and d["type"] == "ACME_KEY_DONE", "RETIRE: %r" % ((kind, d),))
    m = re.fullmatch(r"acme-retire\.key\.deactivated\.(\d+)", d.get("file", ""))
    check(m and before <= int(m.group(1)) <= time.time() + 1, "the retired file's name: %r" % d)
    names = sorted(n for n in os.listdir(acme_dir()) if n.startswith("acme-retire."))
    check(names == [d["file"]], "files left: %r" % names)
    check(openssl_pub(os.path.join(acme_dir(), d["file"])) == jwk_pem(old), "the retired file's key")
    refused(ask({"message": "ACME_ACCOUNT_GET", "issuer_id": "acme-retire", "alg": ""}), "no account key", 2)
    refused(jws_sign("acme-retire", signing_input("ES256", {})), "no account key for issuer acme-retire")
    _, fresh, tp2 = account("acme-retire", "ES256")
    check(tp2 != tp and fresh != old, "no new key after the retirement")
    kind, d = key_msg("ACME_KEY_RETIRE", "acme-nokey", thumbprint=tp)
    check(kind == "ok" and d.get("file") == "-", "RETIRE without a key: %r" % ((kind, d),))


def rollover_bad_input():
    """Bad issuer ids and algorithms, an issuer without an account key, and
    fields past their bounds (never sent)."""
    for message, field in (("ACME_KEY_NEXT", {"alg": "ES256"}), ("ACME_KEY_COMMIT", {"thumbprint": "x"}),
                           ("ACME_KEY_ABORT", {"thumbprint": "x"}), ("ACME_KEY_RETIRE", {"thumbprint": "x"}),
                           ("ACME_JWS_SIGN_NEXT", {"signing_input": signing_input("ES256", {})})):
        for bad in ("../../etc", "a/b", ""):
            refused(ask(dict({"message": message, "issuer_id": bad}, **field)), "issuer_id: not a valid id")
        kind, ans = ask(dict({"message": message, "issuer_id": "a" * 65}, **field))
        check(kind == "unsent" and "not sent" in ans, "%s, a 65-byte issuer id: %r" % (message, (kind, ans)))
    for alg in ("HS256", "none", "es256"):
        refused(key_msg("ACME_KEY_NEXT", "acme-es256", alg=alg), "alg: one of ES256, ES384, RS256")
    refused(key_msg("ACME_KEY_NEXT", "acme-none", alg="ES256"), "no account key for issuer acme-none", 2)
    refused(key_msg("ACME_KEY_COMMIT", "acme-none", thumbprint="x" * 43), "no account key for issuer acme-none", 2)
    refused(key_msg("ACME_KEY_COMMIT", "acme-es256", thumbprint="x" * 43), "no key rollover is pending", 2)
    kind, ans = key_msg("ACME_KEY_COMMIT", "acme-es256", thumbprint="x" * 65)
    check(kind == "unsent", "a 65-byte thumbprint: %r" % ((kind, ans),))
    kind, ans = key_msg("ACME_KEY_NEXT", "acme-es256", alg="ES256384X")
    check(kind == "unsent", "a 9-byte alg: %r" % ((kind, ans),))
    big = key_change_input("ES256", {"x": "y" * 13000}, {})
    kind, ans = ask({"message": "ACME_JWS_SIGN_NEXT", "issuer_id": "acme-es256", "signing_input": big})
    check(kind == "unsent", "a 16 KiB+ signing input: %r" % ((kind, ans),))
    check(not [n for n in os.listdir(acme_dir()) if n.startswith("acme-none") or n.endswith(".tmp")],
          "a refused request left a file")


def no_key_material_in_logs():
    """Neither the account keys, the EAB keys nor the passphrase reach a log."""
    text = every_log()
    for name in os.listdir(acme_dir()):
        out = subprocess.run(["openssl", "pkey", "-in", os.path.join(acme_dir(), name), "-passin",
                              "file:" + passfile, "-outform", "DER"], capture_output=True, timeout=30)
        check(out.returncode == 0, "%s does not open" % name)
        private = out.stdout
        for chunk in (base64.b64encode(private).decode()[40:100], private.hex()[80:200]):
            check(chunk not in text, "%s: key material in a log" % name)
        with open(os.path.join(acme_dir(), name)) as f:
            body = f.read().splitlines()[1]
        check(body not in text, "%s: its PEM in a log" % name)
    for raw, text_key in keys.values():
        for needle in (raw.hex(), text_key.rstrip("="), base64.b64encode(raw).decode().rstrip("=")):
            check(needle not in text, "an EAB key in a log")
    check(PASSPHRASE not in text, "the passphrase in a log")


root = make_root("certward-acme-signer-")
reqdir = tempfile.mkdtemp(prefix="cwa", dir="/tmp")  # the hook's argument holds 32 bytes
os.chmod(reqdir, 0o755)
pg = cw = None
keys = {}
try:
    if not TEST_HOOKS:
        log("SKIP: the scheduler relays these messages through a test hook: needs -Dtest_hooks=true")
    else:
        pg = Postgres(root, 16100 + os.getpid() % 90)
        passfile = os.path.join(root, "ca-pass")
        with open(passfile, "w") as f:
            f.write(PASSPHRASE + "\n")
        os.chmod(passfile, 0o644)  # the signer user reads it in this test
        cw = Certward(root, pg.dsn, extra="signer:\n  ca_key_passphrase_file: %s\n" % passfile)
        cw.start()
        api = Api(cw)
        wait_for("schema current", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=60)
        admin = make_key(pg, "acme-admin", "admin")
        case(es256_account)
        case(signatures_verify)
        case(another_alg_refused)
        case(bad_input_refused)
        case(restart_keeps_keys)
        case(eab)
        case(rollover)
        case(retire)
        case(rollover_bad_input)
        case(no_key_material_in_logs)
        RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
    shutil.rmtree(reqdir, ignore_errors=True)
RUN.finish()
