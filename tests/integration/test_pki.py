"""The signer's CA and signing ledger against the real openssl CLI: the root
and issuing CA made on first start (each key algorithm), kept across
restarts, wrapped with a passphrase; an issuing CA signed by a root made
with `openssl req -x509` loaded in subordinate mode, and the certificates
that must be refused; `certward ledger verify` on the ledger, intact and
tampered with."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AS_ROOT, BUILD, SOURCE, Api, Cases, Certward, Postgres, check, log, make_key, make_root, openssl,
                     psql, teardown, wait_for)

RUN = Cases(lambda: cw)
ctx = {}
case = RUN.case


def text_of(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout


def ledger_verify(path):
    return subprocess.run([os.path.join(BUILD, "certward"), "ledger", "verify", path],
                          capture_output=True, text=True, timeout=30)


def fresh(name, extra=""):
    """A certwardd of its own (state, logs) on the shared PostgreSQL."""
    r = os.path.join(root, name)
    os.makedirs(r)
    os.chmod(r, 0o755)
    c = Certward(r, pg.dsn, extra=extra)
    started.append(c)
    return c


def signer_log(c):
    try:
        with open(os.path.join(c.logs, "signer.log")) as f:
            return f.read()
    except OSError:
        return ""


def published(c, name):
    return os.path.join(c.state, "tls", name)


def key_dir(c):
    return os.path.join(c.state, "signer")


def self_signed_ca():
    """First start: a root and an issuing CA (P-256), keys 0600 for the
    signer alone, the chain published, every signature in the ledger."""
    wait_for("signer running", lambda: cw.status()["signer"]["state"] == "running", timeout=30)
    root_crt, issuing_crt = published(cw, "ca-root.crt"), published(cw, "ca-issuing.crt")
    wait_for("CA published", lambda: os.path.exists(published(cw, "ca-chain.crt")), timeout=30)
    out = openssl("verify", "-CAfile", root_crt, issuing_crt)
    check(out.stdout.strip().endswith(": OK"), "verify: %r" % out.stdout)
    # the chain file is issuing then root
    with open(published(cw, "ca-chain.crt")) as f:
        chain = f.read()
    with open(issuing_crt) as f, open(root_crt) as g:
        check(chain == f.read() + g.read(), "ca-chain.crt is not issuing + root")
    t = text_of(issuing_crt)
    for needle in ("CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "prime256v1",
                   "Subject: CN = certward Issuing CA", "Issuer: CN = certward Root CA",
                   "X509v3 Authority Key Identifier", "X509v3 Subject Key Identifier"):
        check(needle in t, "issuing CA lacks %r:\n%s" % (needle, t))
    r = text_of(root_crt)
    check("CA:TRUE" in r and "pathlen" not in r and "Subject: CN = certward Root CA" in r, "root:\n%s" % r)
    for k in ("root.key", "issuing.key"):
        st = os.stat(os.path.join(key_dir(cw), "ca", k))
        check(st.st_mode & 0o777 == 0o600, "%s mode %o" % (k, st.st_mode & 0o777))
        if AS_ROOT:
            import pwd
            check(pwd.getpwuid(st.st_uid).pw_name == "certward-signer", "%s owner %d" % (k, st.st_uid))
        with open(os.path.join(key_dir(cw), "ca", k)) as f:
            check("BEGIN PRIVATE KEY" in f.read(), "%s is not PKCS#8" % k)
    out = ledger_verify(os.path.join(key_dir(cw), "ledger"))
    check(out.returncode == 0 and "3 signatures, chain intact" in out.stdout, "ledger: %r" % (out,))
    # the ledger names the three certificates by serial (the third: the agent identity CA)
    serials = [openssl("x509", "-in", p, "-noout", "-serial").stdout.strip().split("=")[1].lower()
               for p in (root_crt, issuing_crt, published(cw, "agent-ca.crt"))]
    with open(os.path.join(key_dir(cw), "ledger")) as f:
        lines = f.read().splitlines()
    check([l.split()[4].lstrip("0") for l in lines] == [s.lstrip("0") for s in serials],
          "ledger serials %r against %r" % ([l.split()[4] for l in lines], serials))
    check(cw.metrics("signer").get("ledger_entries") == 3, "ledger_entries metric")


def kept_across_restarts():
    """A restarted signer uses the same CA and signs nothing new."""
    before = openssl("x509", "-in", published(cw, "ca-issuing.crt"), "-noout", "-fingerprint").stdout
    pid = cw.status()["signer"]["pid"]
    cw.ctl("restart", "signer")
    wait_for("signer back", lambda: cw.status()["signer"]["state"] == "running" and
             cw.status()["signer"]["pid"] != pid, timeout=30)
    after = openssl("x509", "-in", published(cw, "ca-issuing.crt"), "-noout", "-fingerprint").stdout
    check(before == after, "the issuing CA changed on restart")
    out = ledger_verify(os.path.join(key_dir(cw), "ledger"))
    check("3 signatures" in out.stdout, "ledger after restart: %r" % out.stdout)


def agent_ca_published():
    """The agent identity CA made at first start next to the issuing CA
    (ledger line 3), published, handed to the api with its certificate
    (TLS_CERT): the api names it, and only it, as the CA of the client
    certificates it accepts; a restarted signer keeps it."""
    path = published(cw, "agent-ca.crt")
    wait_for("agent CA published", lambda: os.path.exists(path), timeout=30)
    before = fingerprint(path)
    check(before not in (fingerprint(published(cw, "ca-issuing.crt")), fingerprint(published(cw, "ca-root.crt"))),
          "the agent CA is the issuing CA")
    with open(os.path.join(key_dir(cw), "ledger")) as f:
        third = f.read().splitlines()[2].split()
    serial = openssl("x509", "-in", path, "-noout", "-serial").stdout.strip().split("=")[1].lower()
    check(third[3] == "agent-ca" and third[4].lstrip("0") == serial.lstrip("0"), "ledger line 3: %r" % third)
    out = wait_for("the api's handshake", lambda: (lambda o: o if "Verify return code: 0 (ok)" in o.stdout else None)(
        subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % cw.api_port, "-servername", "localhost",
                        "-CAfile", published(cw, "api.crt")], input="Q\n", capture_output=True, text=True,
                       timeout=30)), timeout=30)
    names = out.stdout.split("Acceptable client certificate CA names")[1].split("Requested Signature")[0] \
        if "Acceptable client certificate CA names" in out.stdout else ""
    check(names.strip() == "CN = certward Agent Identity CA", "client CA names: %r" % names)
    check("agent_identities_signed_total" in cw.metrics("signer"), "agent identities not counted")
    pid = cw.status()["signer"]["pid"]
    cw.ctl("restart", "signer")
    wait_for("signer back", lambda: cw.status()["signer"]["state"] == "running" and
             cw.status()["signer"]["pid"] != pid, timeout=30)
    check(fingerprint(path) == before, "the agent CA changed on restart")
    check("3 signatures" in ledger_verify(os.path.join(key_dir(cw), "ledger")).stdout, "the restart signed something")


def key_algorithms():
    """Each configurable algorithm makes a chain openssl accepts."""
    want = {"ecdsa-p384": "secp384r1", "rsa-2048": "Public-Key: (2048 bit)", "ed25519": "ED25519"}
    for alg, needle in want.items():
        c = fresh("alg-" + alg, "signer:\n  ca_key_algorithm: %s\n  ca_name: test %s\n" % (alg, alg))
        c.start()
        wait_for("%s CA published" % alg, lambda: os.path.exists(published(c, "ca-chain.crt")), timeout=60)
        out = openssl("verify", "-CAfile", published(c, "ca-root.crt"), published(c, "ca-issuing.crt"))
        check(out.stdout.strip().endswith(": OK"), "%s: %r" % (alg, out.stdout))
        t = text_of(published(c, "ca-issuing.crt"))
        check(needle in t and "CN = test %s Issuing CA" % alg in t, "%s:\n%s" % (alg, t))
        c.kill_everything()


def passphrase():
    """Keys wrapped with a passphrase: encrypted on disk, opened with it,
    and a wrong one stops the signer with a clear message."""
    pf = os.path.join(root, "ca-pass")
    with open(pf, "w") as f:
        f.write("correct horse battery staple\n")
    os.chmod(pf, 0o644)  # the signer user reads it in this test
    c = fresh("pass", "signer:\n  ca_key_passphrase_file: %s\n" % pf)
    c.start()
    wait_for("CA published", lambda: os.path.exists(published(c, "ca-chain.crt")), timeout=60)
    k = os.path.join(key_dir(c), "ca", "issuing.key")
    with open(k) as f:
        check("BEGIN ENCRYPTED PRIVATE KEY" in f.read(), "the issuing key is not encrypted")
    openssl("pkey", "-in", k, "-passin", "file:" + pf, "-noout")
    check(openssl("pkey", "-in", k, "-passin", "pass:wrong", "-noout", ok=False).returncode != 0,
          "a wrong passphrase opened the key")
    with open(pf, "w") as f:
        f.write("not the passphrase at all\n")
    c.ctl("restart", "signer", check_rc=False)
    wait_for("wrong passphrase reported", lambda: "wrong passphrase" in signer_log(c), timeout=30)
    check("not the passphrase" not in signer_log(c), "the passphrase reached the log")
    c.kill_everything()


def make_outside_root(d):
    """A root CA as an enterprise would make it, with openssl req -x509."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", os.path.join(d, "root.key"), "-out", os.path.join(d, "root.pem"),
            "-subj", "/O=Example Corp/CN=Example Enterprise Root", "-days", "3650")


def make_sub(d, name, ext):
    """A key and a certificate signed by the outside root, with extensions ext."""
    key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    extfile = os.path.join(d, name + ".ext")
    with open(extfile, "w") as f:
        f.write(ext)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/O=Example Corp/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, "root.pem"), "-CAkey",
            os.path.join(d, "root.key"), "-CAcreateserial", "-out", crt, "-days", "800",
            "-extfile", extfile)
    for p in (key, crt):
        os.chmod(p, 0o644)  # the signer user reads them in this test
    return key, crt


def chain_file(d, name, *pems):
    path = os.path.join(d, name)
    with open(path, "w") as out:
        for p in pems:
            with open(p) as f:
                out.write(f.read())
    os.chmod(path, 0o644)
    return path


def subordinate():
    """An issuing CA signed by an outside root is used as given and chains
    to that root; a certificate that cannot be a CA is refused, naming why."""
    d = os.path.join(root, "outside")
    os.makedirs(d)
    os.chmod(d, 0o755)
    make_outside_root(d)
    ca_ext = ("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    key, crt = make_sub(d, "Example Issuing CA", ca_ext)
    chain = chain_file(d, "issuing-chain.pem", crt, os.path.join(d, "root.pem"))
    c = fresh("sub", "signer:\n  ca_mode: subordinate\n  ca_cert_file: %s\n  ca_key_file: %s\n" % (chain, key))
    c.start()
    wait_for("subordinate CA published", lambda: os.path.exists(published(c, "ca-chain.crt")), timeout=60)
    out = openssl("verify", "-CAfile", os.path.join(d, "root.pem"), published(c, "ca-issuing.crt"))
    check(out.stdout.strip().endswith(": OK"), "verify: %r" % out.stdout)
    with open(published(c, "ca-root.crt")) as f, open(os.path.join(d, "root.pem")) as g:
        check(f.read() == g.read(), "ca-root.crt is not the outside root")
    check(not os.path.exists(os.path.join(key_dir(c), "ca")), "subordinate mode made CA files")
    c.kill_everything()

    leaf_key, leaf = make_sub(d, "leaf", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    nosign_key, nosign = make_sub(d, "no-keycertsign", "basicConstraints=critical,CA:TRUE\n"
                                                       "keyUsage=critical,digitalSignature,cRLSign\n")
    other_key, _ = make_sub(d, "other", ca_ext)
    bad = [
        ("leaf", leaf, leaf_key, "is not a CA certificate"),
        ("nosign", nosign, nosign_key, "lacks keyCertSign"),
        ("mismatch", crt, other_key, "does not match the CA certificate"),
        ("order", chain_file(d, "backwards.pem", os.path.join(d, "root.pem"), crt), key, "from the top down"),
        ("long", chain_file(d, "long.pem", crt, *[os.path.join(d, "root.pem")] * 8), key, "more than 8 certificates"),
    ]
    for name, cert, k, needle in bad:
        c = fresh("sub-" + name, "signer:\n  ca_mode: subordinate\n  ca_cert_file: %s\n  ca_key_file: %s\n"
                  % (cert, k))
        c.start()
        wait_for("%s refused" % name, lambda: needle in signer_log(c), timeout=30)
        check(not os.path.exists(published(c, "ca-chain.crt")), "%s: a CA was published" % name)
        c.kill_everything()


def agent_ca_in_subordinate_mode():
    """In subordinate mode the agent identity CA is still the signer's
    own: made in key_dir/agent-ca, self-signed, published; the issuing CA
    is the outside one (subordinate's files)."""
    d = os.path.join(root, "outside")
    c = fresh("sub-agent", "signer:\n  ca_mode: subordinate\n  ca_cert_file: %s\n  ca_key_file: %s\n  ca_name: Sub\n"
              % (os.path.join(d, "issuing-chain.pem"), os.path.join(d, "Example Issuing CA.key")))
    c.start()
    wait_for("agent CA published", lambda: os.path.exists(published(c, "agent-ca.crt")), timeout=60)
    agent_ca = published(c, "agent-ca.crt")
    t = text_of(agent_ca)
    check("Subject: CN = Sub Agent Identity CA" in t and "Issuer: CN = Sub Agent Identity CA" in t, "agent CA:\n" + t)
    check(openssl("verify", "-CAfile", agent_ca, agent_ca).returncode == 0, "the agent CA is not self-signed")
    check(openssl("verify", "-CAfile", agent_ca, published(c, "ca-issuing.crt"), ok=False).returncode != 0,
          "the outside issuing CA verifies against the agent CA")
    check(os.path.exists(os.path.join(key_dir(c), "agent-ca", "ca.key")), "no agent CA key")
    c.kill_everything()


PROFILE = {"allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}, {"algorithm": "RSA", "min_size": 2048}],
           "max_ttl_seconds": 7776000, "allowed_ekus": ["serverAuth", "clientAuth"],
           "required_san_patterns": ["*.example.com", "example.com"], "allow_short_lived": False, "enabled": True}


def csr(d, name, key="ec", subj=None, sans=None):
    """A CSR made by openssl, as DER; key: ec, ec384, rsa1024, rsa2048, ed25519."""
    key_args = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "ec384": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
                "rsa1024": ["-newkey", "rsa:1024"], "rsa2048": ["-newkey", "rsa:2048"],
                "ed25519": ["-newkey", "ed25519"]}[key]
    pem, der = os.path.join(d, name + ".csr"), os.path.join(d, name + ".der")
    args = ["req", "-new"] + key_args + ["-nodes", "-keyout", os.path.join(d, name + ".key"), "-out", pem,
                                         "-subj", subj or "/CN=%s.example.com" % name]
    if sans:
        args += ["-addext", "subjectAltName=" + sans]
    openssl(*args)
    openssl("req", "-in", pem, "-outform", "DER", "-out", der)
    return der


def signer_call(d, profile, validity, *csrs, issuer="iss-test", keys=None, repeat=1):
    """The signer alone (bench/signer_call), sent CERT_SIGN directly (each
    CSR repeat times), with its keys in keys (default d/keys)."""
    pf = os.path.join(d, "profile.json")
    with open(pf, "w") as f:
        json.dump(profile, f)
    out = subprocess.run([os.path.join(BUILD, "bench", "signer_call"), "-n", str(repeat),
                          os.path.join(BUILD, "certward-signer"), keys or os.path.join(d, "keys"),
                          os.path.join(d, "certs"), issuer, str(validity), pf] + list(csrs),
                         capture_output=True, text=True, timeout=120)
    check(out.returncode in (0, 3), "signer_call failed (%d): %s%s" % (out.returncode, out.stdout, out.stderr[-2000:]))
    return out.stdout.splitlines()


def signer_refuses_directly():
    """CERT_SIGN sent to the signer past the api: it signs what the profile
    allows, with the profile's extensions, and refuses each broken rule by
    name; every signature is in its ledger."""
    d = os.path.join(root, "direct")
    os.makedirs(os.path.join(d, "keys"), mode=0o700)
    os.makedirs(os.path.join(d, "certs"))
    good = [csr(d, "web", sans="DNS:web.example.com,DNS:example.com"), csr(d, "rsa", "rsa2048"),
            csr(d, "p384", "ec384", sans="DNS:p384.example.com"), csr(d, "nosan", subj="/CN=nosan.example.com")]
    lines = signer_call(d, PROFILE, 0, *good)
    check(all(l.startswith("signed ") for l in lines) and len(lines) == 4, "signed: %r" % lines)
    chain = os.path.join(d, "certs", "ca-issuing.crt")
    for der, line in zip(good, lines):
        pem = der + ".pem"
        openssl("x509", "-inform", "DER", "-in", der + ".crt", "-out", pem)
        out = openssl("verify", "-CAfile", os.path.join(d, "certs", "ca-root.crt"), "-untrusted", chain, pem)
        check(out.stdout.strip().endswith(": OK"), "verify %s: %r" % (der, out.stdout))
        t = text_of(pem)
        serial = openssl("x509", "-in", pem, "-noout", "-serial").stdout.strip().split("=")[1].lower()
        # 128 random bits: a leading zero byte (1 in 256) makes it 30 hex
        # digits; 24 or fewer would take four zero bytes (1 in 2^32)
        check(line.split()[1].lstrip("0") == serial.lstrip("0") and len(serial) > 24,
              "serial %s against %r" % (serial, line))
        for needle in ("CA:FALSE", "TLS Web Server Authentication, TLS Web Client Authentication",
                       "URI:https://localhost:8443/.well-known/pki/crl/iss-test",
                       "OCSP - URI:https://localhost:8443/.well-known/pki/ocsp/iss-test",
                       "X509v3 Authority Key Identifier", "Issuer: CN = certward Issuing CA"):
            check(needle in t, "%s lacks %r:\n%s" % (der, needle, t))
        nb, na = int(line.split()[2]), int(line.split()[3])
        check(abs((na - nb) - 90 * 86400 - 60) <= 5, "%s: validity %d s, not the 90-day default" % (der, na - nb))
    check("DNS:web.example.com, DNS:example.com" in text_of(good[0] + ".pem"), "SANs copied")
    check("DNS:nosan.example.com" in text_of(good[3] + ".pem"), "the CN stands in for a missing SAN")
    check("Key Encipherment" in text_of(good[1] + ".pem"), "RSA keys get keyEncipherment")

    forged = os.path.join(d, "forged.der")
    with open(good[0], "rb") as f:
        b = bytearray(f.read())
    b[-5] ^= 0x55  # inside the signature
    with open(forged, "wb") as f:
        f.write(b)
    garbage = os.path.join(d, "garbage.der")
    with open(garbage, "wb") as f:
        f.write(b"\x30\x03\x02\x01\x00 not a csr")
    cases = [
        (csr(d, "weak", "rsa1024"), PROFILE, 0, "RSA 1024 is too weak"),
        (csr(d, "ed", "ed25519"), PROFILE, 0, "Ed25519 256 is not allowed by the profile's allowed_key_algorithms"),
        (csr(d, "outside", sans="DNS:www.example.org"), PROFILE, 0, "www.example.org is outside the profile's required_san_patterns"),
        (csr(d, "deep", sans="DNS:a.b.example.com"), PROFILE, 0, "a.b.example.com is outside"),
        (csr(d, "ip", sans="DNS:ip.example.com,IP:192.0.2.7"), PROFILE, 0, "192.0.2.7 is outside"),
        (csr(d, "uri", sans="DNS:uri.example.com,URI:https://example.com/"), PROFILE, 0, "a URI is allowed only as a SPIFFE ID"),
        (csr(d, "cn", subj="/CN=not a host name"), PROFILE, 0, "no subjectAltName, and its CN is not a DNS name"),
        (csr(d, "long"), PROFILE, 7776001, "7776001 seconds is over the profile's max_ttl_seconds (7776000)"),
        (csr(d, "short"), PROFILE, 1800, "under one hour needs a profile with allow_short_lived"),
        (forged, PROFILE, 0, "its signature does not verify"),
        (garbage, PROFILE, 0, "not one DER certificate signing request"),
        (csr(d, "off"), dict(PROFILE, enabled=False), 0, "profile: disabled"),
    ]
    for der, prof, validity, needle in cases:
        lines = signer_call(d, prof, validity, der)
        check(len(lines) == 1 and lines[0].startswith("refused 22: ") and needle in lines[0],
              "%s: expected a refusal naming %r, got %r" % (os.path.basename(der), needle, lines))
        check(not os.path.exists(der + ".crt"), "%s: a certificate was written" % der)
    # a short-lived certificate where the profile allows it: no CRL or OCSP pointers
    lines = signer_call(d, dict(PROFILE, allow_short_lived=True), 1800, csr(d, "brief"))
    check(lines[0].startswith("signed "), "short-lived: %r" % lines)
    openssl("x509", "-inform", "DER", "-in", os.path.join(d, "brief.der.crt"), "-out", os.path.join(d, "brief.pem"))
    t = text_of(os.path.join(d, "brief.pem"))
    check("CRL Distribution" not in t and "OCSP" not in t, "a short-lived certificate points at revocation:\n" + t)
    out = ledger_verify(os.path.join(d, "keys", "ledger"))
    check(out.returncode == 0 and "8 signatures" in out.stdout, "ledger: %r" % out.stdout)  # 3 CA + 4 + 1


def crl_entries_bound():
    """CRL_SIGN sent to the signer past the scheduler: a CRL of three
    entries is signed (openssl lists them with their reason); one that
    announces more entries than a CRL may hold (4,000,000) is refused by
    name before anything is read or signed, and the ledger does not grow."""
    d = os.path.join(root, "direct")  # signer_refuses_directly's keys
    ledger = os.path.join(d, "keys", "ledger")

    def crl_call(entries):
        out = subprocess.run([os.path.join(BUILD, "bench", "signer_call"), "--crl", str(entries),
                              os.path.join(BUILD, "certward-signer"), os.path.join(d, "keys"), os.path.join(d, "certs"),
                              "iss-test", os.path.join(d, "crl.der")], capture_output=True, text=True, timeout=120)
        check(out.returncode in (0, 3), "signer_call --crl failed (%d): %s%s" % (out.returncode, out.stdout, out.stderr[-2000:]))
        return out.stdout.strip()

    line = crl_call(3)
    check(line.startswith("crl "), "three entries: %r" % line)
    text = openssl("crl", "-inform", "DER", "-in", os.path.join(d, "crl.der"), "-noout", "-text").stdout
    for serial in ("01", "02", "03"):
        check("Serial Number: %s" % serial in text, "serial %s not listed:\n%s" % (serial, text))
    check(text.count("Key Compromise") == 3, "reasons:\n%s" % text)
    with open(ledger) as f:
        before = f.read()
    line = crl_call(4000001)
    check(line == "refused 22: 4000001 entries: a CRL holds at most 4000000", "past the bound: %r" % line)
    with open(ledger) as f:
        check(f.read() == before, "the ledger changed for a refused CRL")
    check(ledger_verify(ledger).returncode == 0, "ledger")


def ledger_disk_full():
    """The signer's ledger on a full filesystem (a 256 KiB tmpfs): every
    CERT_SIGN that cannot get its line written is refused with EIO naming
    the ledger, nothing is handed out without its line, the ledger stays
    intact, and signing works again once there is room."""
    if not AS_ROOT:
        log("  (skipped: mounting a tmpfs needs root)")
        return
    d = os.path.join(root, "direct")  # signer_refuses_directly's keys and CSRs
    full = os.path.join(root, "full-keys")
    os.makedirs(full)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", full],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        log("  (skipped: cannot mount a tmpfs: %s)" % out.stderr.strip())
        return
    try:
        subprocess.run(["cp", "-a", os.path.join(d, "keys") + "/.", full], check=True, timeout=30)
        ledger = os.path.join(full, "ledger")
        with open(ledger) as f:
            before = len(f.readlines())
        fd = os.open(os.path.join(full, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)
        csr_der = os.path.join(d, "web.der")
        n = 50
        lines = signer_call(d, PROFILE, 0, csr_der, keys=full, repeat=n)
        refused = [l for l in lines if l.startswith("refused")]
        check(refused, "on a full disk: %r" % lines[-5:])
        check(all(l.startswith("refused 5: cannot write the ledger") and "No space left" in l for l in refused),
              "refusals: %r" % refused[:3])
        check(ledger_verify(ledger).returncode == 0, "ledger after the full disk")
        with open(ledger) as f:
            added = len(f.readlines()) - before
        check(added == n - len(refused), "%d signed, %d ledger lines added" % (n - len(refused), added))
        os.unlink(os.path.join(full, "filler"))
        lines = signer_call(d, PROFILE, 0, csr_der, keys=full)
        check(len(lines) == 1 and lines[0].startswith("signed "), "with room again: %r" % lines)
        check(ledger_verify(ledger).returncode == 0, "ledger after signing again")
    finally:
        subprocess.run(["umount", full], capture_output=True, timeout=30)


def agent_id_call(d, agent_id, der, validity=0):
    """The signer alone (bench/signer_call --agent-id), keys in d/keys:
    the "signed ..." or "refused ..." line, and the PEM printed after it."""
    out = subprocess.run([os.path.join(BUILD, "bench", "signer_call"), "--agent-id", agent_id,
                          os.path.join(BUILD, "certward-signer"), os.path.join(d, "keys"), os.path.join(d, "certs"),
                          str(validity), der], capture_output=True, text=True, timeout=120)
    check(out.returncode in (0, 3), "signer_call --agent-id failed (%d): %s%s"
          % (out.returncode, out.stdout, out.stderr[-2000:]))
    lines = out.stdout.splitlines()
    return lines[0], "".join(l + "\n" for l in lines[1:])


def fingerprint(path):
    return openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256").stdout.strip()


def agent_identities_directly():
    """AGENT_ID_SIGN sent to the signer past the api: an identity for a
    P-256 CSR asking for more (CN=evil, O=x, a SAN) gets CN=<agent id>
    alone, clientAuth alone, no SAN, under the agent identity CA, which is
    not the issuing CA (neither verifies the other's certificates); its
    ledger line is written; each broken rule is refused by name with
    nothing signed; a restarted signer keeps the same agent CA."""
    import hashlib
    d = os.path.join(root, "agent")
    os.makedirs(os.path.join(d, "keys"), mode=0o700)
    os.makedirs(os.path.join(d, "certs"))
    agent_ca, ledger = os.path.join(d, "certs", "agent-ca.crt"), os.path.join(d, "keys", "ledger")
    evil = csr(d, "evil", subj="/CN=evil/O=x", sans="DNS:evil.example.com,DNS:www.example.org")
    line, pem = agent_id_call(d, "agent-01.host_a", evil)
    check(line.startswith("signed ") and "BEGIN CERTIFICATE" in pem, "signed: %r" % line)
    _, serial, nb, na, digest = line.split()
    ident = os.path.join(d, "evil.pem")
    with open(ident, "w") as f:
        f.write(pem)
    with open(evil + ".crt", "rb") as f:
        der = f.read()
    check(openssl("x509", "-inform", "DER", "-in", evil + ".crt").stdout == pem, "the PEM printed is not the DER")
    check(digest == hashlib.sha256(der).hexdigest(), "sha256 %s is not the DER's" % digest)
    out = openssl("verify", "-CAfile", agent_ca, "-purpose", "sslclient", ident)
    check(out.stdout.strip().endswith(": OK"), "verify: %r" % out.stdout)
    check(openssl("verify", "-CAfile", agent_ca, "-purpose", "sslserver", ident, ok=False).returncode != 0,
          "an agent identity verifies as a TLS server certificate")
    subject = openssl("x509", "-in", ident, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip()
    check(subject == "subject=CN=agent-01.host_a", "subject: %r" % subject)
    t = text_of(ident)
    eku = t.split("X509v3 Extended Key Usage:")[1].split("\n")[1].strip()
    check(eku == "TLS Web Client Authentication", "EKU: %r" % eku)
    check("Subject Alternative Name" not in t and "evil" not in t and "O = x" not in t, "CSR content copied:\n" + t)
    for needle in ("Issuer: CN = certward Agent Identity CA", "X509v3 Basic Constraints: critical\n                CA:FALSE",
                   "X509v3 Key Usage: critical\n                Digital Signature\n", "X509v3 Subject Key Identifier",
                   "X509v3 Authority Key Identifier", "Version: 3"):
        check(needle in t, "identity lacks %r:\n%s" % (needle, t))
    check(serial == openssl("x509", "-in", ident, "-noout", "-serial").stdout.strip().split("=")[1].lower()
          and len(serial) > 24, "serial %s" % serial)
    check(int(na) - int(nb) == 30 * 86400 + 60, "validity %d s, not signer.agent_identity_lifetime (30d)"
          % (int(na) - int(nb)))
    with open(evil + ".ca.crt") as f, open(agent_ca) as g:
        check(f.read() == g.read(), "ca_pem is not the published agent-ca.crt")
    # the agent CA: self-signed, a CA for end entities only, of its own
    t = text_of(agent_ca)
    for needle in ("Subject: CN = certward Agent Identity CA", "Issuer: CN = certward Agent Identity CA",
                   "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0",
                   "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n",
                   "X509v3 Subject Key Identifier", "prime256v1"):
        check(needle in t, "agent CA lacks %r:\n%s" % (needle, t))
    check(oct(os.stat(agent_ca).st_mode & 0o777) == "0o644", "agent-ca.crt is not world-readable")
    check(os.stat(os.path.join(d, "keys", "agent-ca", "ca.key")).st_mode & 0o777 == 0o600, "ca.key mode")
    # apart from the issuing CA, both ways
    web = csr(d, "web", sans="DNS:web.example.com")
    lines = signer_call(d, PROFILE, 0, web)
    check(lines[0].startswith("signed "), "CERT_SIGN: %r" % lines)
    server = os.path.join(d, "web.pem")
    openssl("x509", "-inform", "DER", "-in", web + ".crt", "-out", server)
    issuing, ca_root = os.path.join(d, "certs", "ca-issuing.crt"), os.path.join(d, "certs", "ca-root.crt")
    check(openssl("verify", "-CAfile", ca_root, "-untrusted", issuing, server).returncode == 0, "web does not verify")
    check(openssl("verify", "-CAfile", agent_ca, server, ok=False).returncode != 0,
          "a certificate of the issuing CA verifies against agent-ca.crt")
    check(openssl("verify", "-CAfile", ca_root, "-untrusted", issuing, ident, ok=False).returncode != 0 and
          openssl("verify", "-CAfile", issuing, "-partial_chain", ident, ok=False).returncode != 0,
          "an agent identity verifies against the issuing CA")
    check(fingerprint(agent_ca) not in (fingerprint(issuing), fingerprint(ca_root)), "the agent CA is the issuing CA")
    # in the ledger, by serial and by the SHA-256 of the DER
    with open(ledger) as f:
        rows = [l.split() for l in f.read().splitlines()]
    check([r[3] for r in rows] == ["root", "root", "agent-ca", "agent-ca", "iss-test"], "ledger issuers: %r" % rows)
    check(rows[3][4] == serial and rows[3][5] == digest, "ledger line %r for %s" % (rows[3], serial))
    out = ledger_verify(ledger)
    check(out.returncode == 0 and "5 signatures, chain intact" in out.stdout, "ledger: %r" % (out,))

    # each key kind allowed; a validity asked for, and one past the CA's own expiry
    for name, key in (("p384", "ec384"), ("rsa", "rsa2048"), ("ed", "ed25519")):
        line, pem = agent_id_call(d, "a-" + name, csr(d, name, key), validity=7200)
        check(line.startswith("signed "), "%s: %r" % (name, line))
        nb, na = (int(x) for x in line.split()[2:4])
        check(na - nb == 7260, "%s: validity %d s, asked 7200" % (name, na - nb))
    rsa_text = openssl("x509", "-inform", "DER", "-in", os.path.join(d, "rsa.der.crt"), "-noout", "-text").stdout
    check("Digital Signature, Key Encipherment" in rsa_text, "RSA identities get keyEncipherment:\n" + rsa_text)
    line, _ = agent_id_call(d, "a" * 128, csr(d, "long-lived"), validity=10 ** 15)
    ca_end = openssl("x509", "-in", agent_ca, "-noout", "-enddate").stdout.strip()
    mine = openssl("x509", "-inform", "DER", "-in", os.path.join(d, "long-lived.der.crt"), "-noout",
                   "-enddate").stdout.strip()
    check(line.startswith("signed ") and mine == ca_end, "past the CA's expiry: %r, %s against %s" % (line, mine, ca_end))
    # 128 characters, over RFC 5280's 64 for a CN: kept whole, and openssl takes it
    longest = os.path.join(d, "long-lived.pem")
    openssl("x509", "-inform", "DER", "-in", os.path.join(d, "long-lived.der.crt"), "-out", longest)
    check(openssl("x509", "-in", longest, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip() ==
          "subject=CN=" + "a" * 128, "the 128-character id")
    check(openssl("verify", "-CAfile", agent_ca, "-purpose", "sslclient", longest).returncode == 0, "verify the long id")

    # refusals, each naming its rule; nothing signed or written to the ledger
    with open(ledger) as f:
        before = f.read()
    forged = os.path.join(d, "forged.der")
    good = csr(d, "good")
    with open(good, "rb") as f:
        b = bytearray(f.read())
    b[-5] ^= 0x55  # inside the signature
    with open(forged, "wb") as f:
        f.write(b)
    trailing = os.path.join(d, "trailing.der")
    with open(good, "rb") as f, open(trailing, "wb") as g:
        g.write(f.read() + b"\0")
    names = ",".join("DNS:host-%04d.agents.example.com" % i for i in range(400))
    big = os.path.join(d, "big.der")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            os.path.join(d, "big.key"), "-subj", "/CN=big", "-addext", "subjectAltName=" + names,
            "-outform", "DER", "-out", big)
    check(8192 < os.path.getsize(big) <= 16384, "the big CSR is %d bytes" % os.path.getsize(big))
    p521 = os.path.join(d, "p521.der")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes", "-keyout",
            os.path.join(d, "p521.key"), "-subj", "/CN=p521", "-outform", "DER", "-out", p521)
    cases = [
        (forged, "agent-1", "csr: its signature does not verify with its own key"),
        (trailing, "agent-1", "csr: not one DER certificate signing request"),
        (csr(d, "weak", "rsa1024"), "agent-1", "key: RSA 1024 is not allowed (ECDSA P-256 or P-384, RSA of 2048 to 8192 bits, or Ed25519)"),
        (p521, "agent-1", "key: ECDSA on curve secp521r1 is not allowed"),
        (big, "agent-1", "csr: %d bytes is over the bound of 8192 bytes" % os.path.getsize(big)),
        (good, "agents/1", "agent_id: 1 to 128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"),
        (good, ".agent", "agent_id: 1 to 128"),
        (good, "", "agent_id: 1 to 128"),
    ]
    for der, agent_id, needle in cases:
        line, pem = agent_id_call(d, agent_id, der)
        check(line.startswith("refused 22: ") and needle in line and not pem,
              "%s (%r): expected a refusal naming %r, got %r" % (os.path.basename(der), agent_id, needle, line))
        check(not os.path.exists(der + ".crt"), "%s: a certificate was written" % der)
    with open(ledger) as f:
        check(f.read() == before, "the ledger changed for refused identities")

    # a restart (each signer_call is a new signer) keeps the agent CA: same
    # certificate, no new CA line in the ledger
    fp, made = fingerprint(agent_ca), os.stat(os.path.join(d, "keys", "agent-ca", "ca.crt")).st_mtime
    line, _ = agent_id_call(d, "agent-2", good)
    check(line.startswith("signed ") and fingerprint(agent_ca) == fp and
          os.stat(os.path.join(d, "keys", "agent-ca", "ca.crt")).st_mtime == made, "the agent CA changed on restart")
    with open(ledger) as f:
        rows = [l.split() for l in f.read().splitlines()]
    check([r[3] for r in rows].count("agent-ca") == 7, "agent-ca lines: %r" % rows)  # the CA and 6 identities
    check(ledger_verify(ledger).returncode == 0, "ledger")


def count(table, where="true"):
    return int(psql(pg, "SELECT count(*) FROM %s WHERE %s" % (table, where)).strip())


def csr_pem(name, key="ec", sans=None):
    d = os.path.join(root, "rest")
    os.makedirs(d, exist_ok=True)
    der = csr(d, name, key, sans=sans)
    with open(der[:-4] + ".csr") as f:
        return f.read()


def issuance_through_the_api():
    """POST /api/v1/certificates with a csr_pem: checked against the
    profile (400 naming the rule, nothing written), signed by the local CA,
    stored as a version (openssl verify accepts its chain), the record
    Active until the certificate expires; a signer killed while the request
    waits for it fails the request cleanly, and the same request then works."""
    wait_for("api up", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=60)
    admin = make_key(pg, "pki-admin", "admin")

    def post(path, body):
        code, obj = api.call("POST", path, admin, body)
        check(code == 201, "POST %s: %r" % (path, (code, obj)))
        return obj

    team = post("/api/v1/teams", {"name": "pki"})["id"]
    owner = post("/api/v1/owners", {"name": "PKI", "email": "pki@example.com", "team_id": team})["id"]
    local = post("/api/v1/issuers", {"name": "local", "type": "Local"})["id"]
    acme = post("/api/v1/issuers", {"name": "acme", "type": "ACME", "config": {"directory_url": "https://acme.example/dir"}})["id"]
    policy = post("/api/v1/renewal-policies", {"name": "pki-std", "max_retries": 3})["id"]
    profile = post("/api/v1/profiles", dict({k: v for k, v in PROFILE.items() if k != "enabled"}, name="web"))["id"]

    def body(name, pem, issuer=local, **kw):
        b = {"name": name, "common_name": name + ".example.com", "owner_id": owner, "team_id": team,
             "issuer_id": issuer, "renewal_policy_id": policy, "certificate_profile_id": profile, "csr_pem": pem}
        b.update(kw)
        return b

    code, cert = api.call("POST", "/api/v1/certificates", admin, body("web1", csr_pem("web1", sans="DNS:web1.example.com")))
    check(code == 201 and cert["status"] == "Active" and cert["latest_version"]["key_algorithm"] == "ECDSA",
          "issued: %r" % ((code, cert),))
    check(cert["expires_at"] == cert["latest_version"]["not_after"], "expires_at: %r" % cert)
    code, got = api.call("GET", "/api/v1/certificates/" + cert["id"], admin)
    check(got["status"] == "Active" and got["expires_at"], "stored record: %r" % got)
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], admin)
    check(code == 200 and versions["total"] == 1, "versions: %r" % versions)
    chain = versions["data"][0]["pem_chain"]
    leaf = os.path.join(root, "rest", "web1.issued.pem")
    with open(leaf, "w") as f:
        f.write(chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    out = openssl("verify", "-CAfile", published(cw, "ca-root.crt"), "-untrusted", published(cw, "ca-issuing.crt"), leaf)
    check(out.stdout.strip().endswith(": OK"), "verify: %r" % out.stdout)
    check("DNS:web1.example.com" in text_of(leaf), "SAN")
    check(count("issued_serials", "certificate_version_id = '%s'" % versions["data"][0]["id"]) == 1, "serial")
    check(count("audit_events", "action = 'certificate.issued' AND resource_id = '%s'" % cert["id"]) == 1, "audit")

    # refused by the api's own check, naming the rule; nothing written
    before = count("managed_certificates")
    for name, pem, needle, field, status in (
            ("weak", csr_pem("weak", "rsa1024"), "RSA 1024 is too weak", "csr_pem", 400),
            ("outside", csr_pem("outside", sans="DNS:www.example.org"), "outside the profile's required_san_patterns", "csr_pem", 400),
            ("garbage", "not a csr", "not a PEM certificate signing request", "csr_pem", 400),
            ("oversize", "A" * 16385, "longer than 16384 characters", "csr_pem", 400)):
        code, prob = api.call("POST", "/api/v1/certificates", admin, body(name, pem))
        check(code == status and prob.get("field") == field and needle in prob.get("detail", ""),
              "%s: %r" % (name, (code, prob)))
    # an ACME issuer orders the record's names: a CSR for others is refused before anything is stored
    code, prob = api.call("POST", "/api/v1/certificates", admin, body("acme", csr_pem("acme1"), issuer=acme))
    check(code == 400 and prob.get("field") == "csr_pem" and "not the record's" in prob.get("detail", ""),
          "an ACME issuer: %r" % ((code, prob),))
    # an issuer certward does not sign for
    step = post("/api/v1/issuers", {"name": "step", "type": "StepCA"})["id"]
    code, prob = api.call("POST", "/api/v1/certificates", admin, body("step", csr_pem("step1"), issuer=step))
    check(code == 422 and prob.get("field") == "issuer_id", "a StepCA issuer: %r" % ((code, prob),))
    check(count("managed_certificates") == before, "a refused request wrote a record")

    # the signer killed while the request waits for it
    ledger = os.path.join(key_dir(cw), "ledger")
    pid = cw.status()["signer"]["pid"]
    # the handshake needs the signer too (it holds the api's TLS key): a
    # connection made before it stops
    client = Api(cw)
    check(client.call("GET", "/api/v1/auth/check", admin)[0] == 200, "connection")
    os.kill(pid, 19)  # SIGSTOP: the request waits
    result = {}
    retry_pem = csr_pem("retry")

    def request():
        try:
            result["r"] = client.call("POST", "/api/v1/certificates", admin, body("retry", retry_pem))
        except Exception as e:  # reported below
            result["r"] = (0, {"exception": repr(e)})

    t = threading.Thread(target=request)
    t.start()
    time.sleep(1)
    os.kill(pid, 9)
    t.join(30)
    code, prob = result["r"]
    check(code == 503 and "nothing was issued" in prob.get("detail", ""), "with the signer killed: %r" % ((code, prob),))
    check(count("managed_certificates", "name = 'retry'") == 0, "a record without a certificate")
    wait_for("signer restarted", lambda: cw.status()["signer"]["state"] == "running" and
             cw.status()["signer"]["pid"] != pid, timeout=30)
    check(ledger_verify(ledger).returncode == 0, "ledger after the kill")
    code, cert = api.call("POST", "/api/v1/certificates", admin, body("retry", retry_pem))
    check(code == 201 and cert["status"] == "Active", "the retry: %r" % ((code, cert),))
    check(count("certificate_versions v JOIN managed_certificates m ON m.id = v.certificate_id", "m.name = 'retry'") == 1,
          "versions of the retried certificate")
    ctx.update(admin=admin, body=body, local=local, profile=profile, team=team, owner=owner, policy=policy)


def renewal():
    """POST /api/v1/certificates/{id}/renew with a csr_pem: signed now by
    the record's Local issuer, checked against its profile, stored as the
    newest version (the chain verifies; the record's expiry follows it); a
    revoked record is not renewed (409); without a body it stays the
    reference's Renewal job (202)."""
    admin = ctx["admin"]
    cert, first = issue_leaf("renew-me")
    code, v = api.call("POST", "/api/v1/certificates/%s/renew" % cert["id"], admin,
                       {"csr_pem": csr_pem("renew-me-2", sans="DNS:renew-me.example.com")})
    check(code == 201 and v["certificate_id"] == cert["id"] and v["serial_number"] != cert["latest_version"]["serial_number"],
          "renewed: %r" % ((code, v),))
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], admin)
    check(versions["total"] == 2, "versions: %r" % versions)
    newest = [x for x in versions["data"] if x["id"] == v["id"]][0]
    path = os.path.join(root, "rest", "renewed.pem")
    with open(path, "w") as f:
        f.write(newest["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    out = openssl("verify", "-CAfile", published(cw, "ca-root.crt"), "-untrusted", published(cw, "ca-issuing.crt"), path)
    check(out.stdout.strip().endswith(": OK"), "renewed verifies: %r" % out.stdout)
    check(api.call("GET", "/api/v1/certificates/" + cert["id"], admin)[1]["expires_at"] == v["not_after"], "expires_at")
    check(count("audit_events", "action = 'certificate.issued' AND resource_id = '%s'" % cert["id"]) == 2, "audit")
    # the profile's rules hold for a renewal too
    code, prob = api.call("POST", "/api/v1/certificates/%s/renew" % cert["id"], admin, {"csr_pem": csr_pem("weak2", "rsa1024")})
    check(code == 400 and prob.get("field") == "csr_pem", "weak renewal: %r" % ((code, prob),))
    code, _ = api.call("POST", "/api/v1/certificates/%s/renew" % cert["id"], admin)
    check(code == 202, "renewal job: %r" % code)
    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % cert["id"], admin, {"reason": "superseded"})
    code, prob = api.call("POST", "/api/v1/certificates/%s/renew" % cert["id"], admin, {"csr_pem": csr_pem("renew-me-3")})
    check(code == 409, "a revoked record renewed: %r" % ((code, prob),))
    check(api.call("POST", "/api/v1/certificates/mc-nope/renew", admin, {"csr_pem": csr_pem("renew-x")})[0] == 404, "missing")


def held_together(admin, bodies, paths=None, during=None):
    """bodies POSTed (to /api/v1/certificates, or paths) one after another
    while the audit chain's row is locked from psql for 2 s, so that every
    store connection waits and the calls behind them batch; during() runs
    once all are sent, with the holder's process. The (status, body) of
    each."""
    paths = paths or ["/api/v1/certificates"] * len(bodies)
    clients = [Api(cw) for _ in bodies]
    for c in clients:  # connected (the handshake needs the signer) before the lock
        check(c.call("GET", "/api/v1/auth/check", admin)[0] == 200, "connection")
    holder = subprocess.Popen([os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir, "-qAtX", "-d",
                               "certward", "-c", "BEGIN; SELECT 1 FROM audit_chain_head FOR UPDATE; "
                               "SELECT pg_sleep(2); COMMIT"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = [None] * len(bodies)

    def send(i):
        try:
            results[i] = clients[i].call("POST", paths[i], admin, bodies[i])
        except Exception as e:  # reported below
            results[i] = (0, {"exception": repr(e)})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    try:
        wait_for("chain head locked", lambda: psql(pg, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                                   "c.oid = l.relation WHERE c.relname = 'audit_chain_head' "
                                                   "AND l.mode = 'RowShareLock'").strip() != "0", timeout=10)
        for t in threads:
            t.start()
            time.sleep(0.1)
        if during:
            during(holder)
        for t in threads:
            t.join(60)
    finally:
        holder.wait(timeout=30)
    return results


def audit_verifies(admin):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTWARD_")}
    env.update(CERTWARD_SERVER_URL="https://127.0.0.1:%d" % cw.api_port, CERTWARD_API_KEY=admin)
    out = subprocess.run([os.path.join(BUILD, "certward"), "audit", "verify", "--cacert",
                          os.path.join(cw.state, "tls", "api.crt")], capture_output=True, text=True, timeout=300, env=env)
    check(out.returncode == 0, "audit verify: %r" % (out,))


def batched_issuance():
    """Issuances that arrive while every store connection is busy (here:
    the audit chain's row locked from psql) wait for a connection together
    and are written in one transaction, renewals as well: each is answered
    201 with its version only once that commits; when one of them fails in the database
    (an owner that does not exist) it gets its own 422 and the others are
    still written; the audit chain still verifies."""
    admin, body = ctx["admin"], ctx["body"]
    key = 'store_%s_total{op="managed_certificates.create_issued"}'

    def counters():
        m = cw.metrics("store")
        return {k: m.get(key % k, 0) for k in ("batches", "batched_calls", "batch_splits")}

    def good(name):
        return body(name, csr_pem(name, sans="DNS:%s.example.com" % name))

    # all good: one batch (the first two take the connections and wait on the lock)
    before = counters()
    for i, (code, rec) in enumerate(held_together(admin, [good("batch%d" % i) for i in range(6)])):
        check(code == 201 and rec.get("latest_version", {}).get("serial_number"), "call %d: %r" % (i, (code, rec)))
    grew = {k: v - before[k] for k, v in counters().items()}
    check(grew["batches"] >= 1 and grew["batched_calls"] >= 2 and grew["batch_splits"] == 0, "batches: %r" % grew)

    # renewals with a CSR batch the same way
    renew_key = 'store_batched_calls_total{op="certificates.issued"}'
    renewed = [psql(pg, "SELECT id FROM managed_certificates WHERE name = 'batch%d'" % i).strip() for i in range(6)]
    was = cw.metrics("store").get(renew_key, 0)
    # a renewal reads its record first: from the store's cache, so that it
    # gets to its write while the connections wait on the lock (the
    # notifications of the writes above may empty the cache once more)
    time.sleep(0.5)
    for r in renewed:
        check(api.call("GET", "/api/v1/certificates/" + r, admin)[0] == 200, "record %s" % r)
    results = held_together(admin, [{"csr_pem": csr_pem("batch%d-2" % i, sans="DNS:batch%d.example.com" % i)} for i in range(6)],
                            ["/api/v1/certificates/%s/renew" % r for r in renewed])
    for i, (code, v) in enumerate(results):
        check(code == 201 and v.get("certificate_id") == renewed[i], "renewal %d: %r" % (i, (code, v)))
        check(count("certificate_versions", "certificate_id = '%s'" % renewed[i]) == 2, "versions of %s" % renewed[i])
    check(cw.metrics("store").get(renew_key, 0) - was >= 2, "renewals were not batched")

    # one bad among them: the batch is rolled back, each runs again alone
    before = counters()
    bodies = [good("batch%d" % i) for i in range(6, 9)]
    bodies.append(body("batch-bad", csr_pem("batch-bad", sans="DNS:batch-bad.example.com"), owner_id="o-nobody"))
    bodies += [good("batch%d" % i) for i in range(9, 11)]
    results = held_together(admin, bodies)
    for i, (code, rec) in enumerate(results):
        if i == 3:
            check(code == 422 and "does not exist" in rec.get("detail", ""), "the bad one: %r" % ((code, rec),))
        else:
            check(code == 201 and rec.get("latest_version", {}).get("serial_number"), "call %d: %r" % (i, (code, rec)))
    grew = {k: v - before[k] for k, v in counters().items()}
    check(grew["batch_splits"] >= 1, "splits: %r" % grew)

    check(count("certificate_versions v JOIN managed_certificates m ON m.id = v.certificate_id",
                "m.name LIKE 'batch%%'") == 17, "versions stored (11 issued, 6 renewed)")
    check(count("managed_certificates", "name = 'batch-bad'") == 0, "the bad one stored")
    check(count("audit_events e JOIN managed_certificates m ON m.id = e.resource_id",
                "m.name LIKE 'batch%%' AND e.action = 'certificate.issued'") == 17, "audit events")
    audit_verifies(admin)

def batched_issuance_connection_lost():
    """The store's PostgreSQL connections killed while a batch of issuances
    is half written (one of them waits for a row lock on its owner): every
    request is answered, those that waited alone for the chain are stored
    (201), none of the batch is (503, no record and no version), and the
    audit chain verifies."""
    admin, body = ctx["admin"], ctx["body"]
    code, other = api.call("POST", "/api/v1/owners", admin, {"name": "locked", "email": "locked@example.com"})
    check(code == 201, "owner: %r" % ((code, other),))
    names = ["lost%d" % i for i in range(12)]
    bodies = [body(n, csr_pem(n, sans="DNS:%s.example.com" % n), **({"owner_id": other["id"]} if i == 9 else {}))
              for i, n in enumerate(names)]

    def kill_mid_batch(holder):
        # lost9's owner locked: the batch stops at lost9's foreign key check,
        # after writing lost2..lost8 in its transaction
        owner_lock = subprocess.Popen([os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir, "-qAtX", "-d",
                                       "certward", "-c", "BEGIN; SELECT 1 FROM owners WHERE id = '%s' FOR UPDATE; "
                                       "SELECT pg_sleep(4); COMMIT" % other["id"]],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for("owner locked", lambda: psql(pg, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                                  "c.oid = l.relation WHERE c.relname = 'owners' "
                                                  "AND l.mode = 'RowShareLock'").strip() != "0", timeout=10)
            holder.wait(timeout=30)
            # a backend blocked by the one holding the owner's row
            wait_for("the batch waits for the owner", lambda: psql(
                pg, "SELECT count(*) FROM pg_stat_activity a WHERE EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c "
                    "ON c.oid = l.relation WHERE c.relname = 'owners' AND l.mode = 'RowShareLock' AND l.granted "
                    "AND l.pid = ANY(pg_blocking_pids(a.pid)))").strip() != "0", timeout=10)
            psql(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                     "AND pid <> pg_backend_pid() AND application_name <> 'psql'")
        finally:
            owner_lock.wait(timeout=30)

    results = held_together(admin, bodies, during=kill_mid_batch)
    codes = [code for code, _ in results]
    log("  answers: %r" % codes)
    for n, (code, rec) in zip(names, results):
        stored = count("certificate_versions v JOIN managed_certificates m ON m.id = v.certificate_id",
                       "m.name = '%s'" % n)
        check(code in (201, 503), "%s: %r" % (n, (code, rec)))
        check(stored == (1 if code == 201 else 0), "%s answered %d, %d versions stored" % (n, code, stored))
        check(count("managed_certificates", "name = '%s'" % n) == stored, "%s: a record without its version" % n)
    # the first ones ran alone (the api's polls may have had a connection
    # when the second came); lost9's batch was lost
    check(codes[0] == 201 and codes[9] == 503, "answers: %r" % codes)
    wait_for("store reconnected", lambda: api.call("GET", "/ready")[0] == 200, timeout=30)
    audit_verifies(admin)

def issue_leaf(name):
    """A certificate issued through the API: (record, path of its PEM)."""
    code, cert = api.call("POST", "/api/v1/certificates", ctx["admin"],
                          ctx["body"](name, csr_pem(name, sans="DNS:%s.example.com" % name)))
    check(code == 201, "issue %s: %r" % (name, (code, cert)))
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], ctx["admin"])
    path = os.path.join(root, "rest", name + ".issued.pem")
    with open(path, "w") as f:
        f.write(versions["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    return cert, path


def serial_of(pem_path):
    return openssl("x509", "-in", pem_path, "-noout", "-serial").stdout.strip().split("=", 1)[1].upper()


def crl_now(issuer, headers=None):
    """(status, headers, DER) of the served CRL"""
    return api.raw("GET", "/.well-known/pki/crl/" + issuer, headers=headers)


def crl_text(der):
    path = os.path.join(root, "rest", "crl.der")
    with open(path, "wb") as f:
        f.write(der)
    out = openssl("crl", "-inform", "DER", "-in", path, "-noout", "-text", "-CAfile", ca_bundle())
    check("verify OK" in out.stderr + out.stdout, "the CRL does not verify: %r" % out.stderr)
    return out.stdout


def ca_bundle():
    path = os.path.join(root, "rest", "ca-bundle.pem")
    with open(path, "w") as f:
        for name in ("ca-issuing.crt", "ca-root.crt"):
            with open(published(cw, name)) as c:
                f.write(c.read())
    return path


def crl_number(text):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "X509v3 CRL Number" in line:
            return int(lines[i + 1].strip())
    raise AssertionError("no CRL number in %r" % text)


def crl_lists(text, serial):
    return ("Serial Number: " + serial) in text


def ocsp_request(name, *args):
    """A DER OCSP request made by openssl ocsp -reqout for args."""
    path = os.path.join(root, "rest", name + ".req")
    openssl("ocsp", "-issuer", published(cw, "ca-issuing.crt"), "-reqout", path, *args)
    with open(path, "rb") as f:
        return path, f.read()


def ocsp_post(issuer, der, content_type="application/ocsp-request"):
    return api.raw("POST", "/.well-known/pki/ocsp/" + issuer, der, {"Content-Type": content_type})


def ocsp_check(name, req_path, resp, *cert_args):
    """openssl's view of a response to the request at req_path: verified
    against the CA bundle, with the nonce checked when the request had one."""
    path = os.path.join(root, "rest", name + ".resp")
    with open(path, "wb") as f:
        f.write(resp)
    out = openssl("ocsp", "-respin", path, "-reqin", req_path, "-CAfile", ca_bundle(), "-resp_text", ok=False)
    return out.stdout + out.stderr


def revocation():
    """Revoking through the API reaches the CRL (openssl crl lists the serial
    and reason) and OCSP (openssl ocsp: revoked; good for another
    certificate; unknown for a serial never issued; the responder
    certificate verifies; the nonce is echoed); the CRL carries ETag and
    Cache-Control and answers If-None-Match with 304; the CRL number grows
    across a scheduler restart; a bulk revocation costs a few CRLs, not one
    per certificate."""
    local, admin = ctx["local"], ctx["admin"]
    a, a_pem = issue_leaf("rev-a")
    b, b_pem = issue_leaf("rev-b")
    sa, sb = serial_of(a_pem), serial_of(b_pem)

    # the CRL exists before any revocation, signed by the issuing CA
    got = {}

    def served():
        got["r"] = crl_now(local)
        return got["r"][0] == 200
    wait_for("a CRL for the Local issuer", served, timeout=30)
    status, headers, der = got["r"]
    check(headers.get("content-type") == "application/pkix-crl", "content type: %r" % headers)
    check(headers.get("etag", "").startswith('"') and "max-age=" in headers.get("cache-control", ""),
          "ETag / Cache-Control: %r" % headers)
    first = crl_number(crl_text(der))
    status, h304, body = crl_now(local, {"If-None-Match": headers["etag"]})
    check(status == 304 and body == b"" and h304.get("etag") == headers["etag"], "If-None-Match: %r" % status)
    check(crl_now("iss-nope")[0] == 404, "a CRL for an unknown issuer")

    # OCSP before: good
    req_a, der_a = ocsp_request("a-good", "-cert", a_pem, "-no_nonce")
    status, headers, resp = ocsp_post(local, der_a)
    check(status == 200 and headers.get("content-type") == "application/ocsp-response", "OCSP POST: %r" % status)
    text = ocsp_check("a-good", req_a, resp)
    check("Response verify OK" in text and "Cert Status: good" in text, "before revocation: %s" % text)
    check("OCSP Signing" in text and "OCSP No Check" in text, "the responder certificate: %s" % text)

    # revoke a (reason in snake_case); an unknown reason is a 400
    code, prob = api.call("POST", "/api/v1/certificates/%s/revoke" % b["id"], admin, {"reason": "not_a_reason"})
    check(code == 400 and prob.get("field") == "reason", "unknown reason: %r" % ((code, prob),))
    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % a["id"], admin, {"reason": "key_compromise"})
    check(code == 200, "revoke: %r" % code)

    def listed():
        s, h, d = crl_now(local)
        if s != 200:
            return None
        t = crl_text(d)
        return t if crl_lists(t, sa) else None
    text = wait_for("the revoked serial in the CRL", listed, timeout=15)
    check(crl_number(text) > first, "CRL number did not grow")
    check("Key Compromise" in text and not crl_lists(text, sb), "CRL entries: %s" % text)

    # OCSP after: revoked (with the nonce echoed), good for b, unknown for a serial never issued
    req_a2, der_a2 = ocsp_request("a-rev", "-cert", a_pem, "-nonce")
    text = wait_for("OCSP says revoked", lambda: (lambda t: t if "Cert Status: revoked" in t else None)(
        ocsp_check("a-rev", req_a2, ocsp_post(local, der_a2)[2])), timeout=10)
    check("Response verify OK" in text and "Revocation Reason: keyCompromise" in text, "revoked: %s" % text)
    check("WARNING: no nonce" not in text and "nonce verify error" not in text.lower() and "OCSP Nonce" in text,
          "nonce: %s" % text)
    req_b, der_b = ocsp_request("b-good", "-cert", b_pem, "-nonce")
    text = ocsp_check("b-good", req_b, ocsp_post(local, der_b)[2])
    check("Cert Status: good" in text and "Response verify OK" in text, "b: %s" % text)
    req_u, der_u = ocsp_request("unknown", "-serial", "0x1234567890abcdef", "-no_nonce")
    text = ocsp_check("unknown", req_u, ocsp_post(local, der_u)[2])
    check("Cert Status: unknown" in text, "never issued: %s" % text)

    # GET (RFC 6960 A.1), cached: the second answer does not reach the signer
    import base64
    import urllib.parse
    req_bg, der_bg = ocsp_request("b-get", "-cert", b_pem, "-no_nonce")
    path = "/.well-known/pki/ocsp/%s/%s" % (local, urllib.parse.quote(base64.b64encode(der_bg).decode(), safe=""))
    status, headers, resp = api.raw("GET", path)
    check(status == 200 and "max-age=" in headers.get("cache-control", ""), "GET: %r" % ((status, headers),))
    check("Cert Status: good" in ocsp_check("b-get", req_bg, resp), "GET answer")
    signed = cw.metrics("signer").get("ocsp_responses_signed_total", 0)
    for _ in range(5):
        check(api.raw("GET", path)[0] == 200, "cached GET")
    check(cw.metrics("signer").get("ocsp_responses_signed_total", 0) == signed, "a cached response was signed again")

    # the cache forgets on revocation: b revoked answers revoked at once
    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % b["id"], admin, {"reason": "SUPERSEDED"})
    check(code == 200, "revoke b")
    text = wait_for("b revoked through the cache", lambda: (lambda t: t if "Cert Status: revoked" in t else None)(
        ocsp_check("b-get2", req_bg, api.raw("GET", path)[2])), timeout=5)
    check("Revocation Reason: superseded" in text, "reason of b: %s" % text)

    # malformed requests, another CA's certificate, a wrong content type
    for bad in (b"", b"\x30\x03\x02\x01\x01", der_a[:-1], b"A" * 9000):
        status, headers, resp = ocsp_post(local, bad)
        check(status == 200 and resp == b"\x30\x03\x0a\x01\x01", "malformed %r: %r" % (bad[:8], (status, resp)))
    check(ocsp_post(local, der_a, "text/plain")[0] == 415, "content type")
    check(ocsp_post("iss-nope", der_a)[2] == b"\x30\x03\x0a\x01\x06", "unknown issuer: unauthorized")
    # past the bounds: a GET request longer than a path parameter holds (512), an issuer id of 65
    check(api.raw("GET", "/.well-known/pki/ocsp/%s/%s" % (local, "A" * 513))[0] == 404, "an overlong GET request")
    check(api.raw("GET", "/.well-known/pki/ocsp/%s/%s" % (local, "A" * 512))[2] == b"\x30\x03\x0a\x01\x01",
          "a 512-character GET request that is not OCSP")
    check(crl_now("i" * 65)[0] == 404 and ocsp_post("i" * 65, der_a)[2] == b"\x30\x03\x0a\x01\x06",
          "an issuer id longer than 64")

    # the CRL number survives a scheduler restart
    text = wait_for("b in the CRL", lambda: (lambda r: crl_text(r[2]) if r[0] == 200 and crl_lists(crl_text(r[2]), sb)
                                               else None)(crl_now(local)), timeout=15)
    before = crl_number(text)
    cw.ctl("restart", "scheduler")
    c, _ = issue_leaf("rev-c")
    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % c["id"], admin, {"reason": "superseded"})
    sc = serial_of(os.path.join(root, "rest", "rev-c.issued.pem"))
    text = wait_for("c in the CRL", lambda: (lambda r: crl_text(r[2]) if r[0] == 200 and crl_lists(crl_text(r[2]), sc)
                                               else None)(crl_now(local)), timeout=30)
    check(crl_number(text) > before, "CRL number after a restart: %d, before %d" % (crl_number(text), before))

    # 20 revocations at once: a few CRLs, not 20
    ids = [issue_leaf("bulk-%d" % i)[0]["id"] for i in range(20)]
    generated = cw.metrics("scheduler").get("crls_generated_total", 0)
    code, res = api.call("POST", "/api/v1/certificates/bulk-revoke", admin,
                         {"reason": "cessationOfOperation", "certificate_ids": ids})
    check(code == 200 and res["total_revoked"] == 20, "bulk: %r" % ((code, res),))
    time.sleep(3)
    text = crl_text(crl_now(local)[2])
    check(text.count("Cessation Of Operation") == 20, "bulk entries in the CRL")
    made = cw.metrics("scheduler").get("crls_generated_total", 0) - generated
    check(1 <= made <= 3, "CRLs made for one bulk revocation: %d" % made)


def responder_rotation():
    """The OCSP responder certificate is renewed when less than a third of
    its life (and no less than a response's validity) is left: with both
    set to an hour every response is due for a new one; each new responder
    verifies, and rotations are counted."""
    pid = cw.status()["signer"]["pid"]
    cw.write_config("signer:\n  ocsp_responder_validity: 1h\n  ocsp_validity: 1h\n")
    cw.ctl("reload")
    wait_for("the signer restarted with the new settings", lambda: cw.status()["signer"]["pid"] != pid, timeout=30)
    wait_for("workers back after the reload", cw.all_running, timeout=30)
    wait_for("the api reaches the new signer", lambda: cw.ctl("ping", "api", "signer", check_rc=False).returncode == 0,
             timeout=30)
    # an issuer whose responder is made under these settings
    code, iss = api.call("POST", "/api/v1/issuers", ctx["admin"], {"name": "rot-local", "type": "Local"})
    check(code == 201, "issuer: %r" % ((code, iss),))
    local = iss["id"]
    code, cert = api.call("POST", "/api/v1/certificates", ctx["admin"],
                          ctx["body"]("rot", csr_pem("rot", sans="DNS:rot.example.com"), issuer=local))
    check(code == 201, "issued: %r" % ((code, cert),))
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], ctx["admin"])
    pem = os.path.join(root, "rest", "rot.issued.pem")
    with open(pem, "w") as f:
        f.write(versions["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    serials = set()
    for i in range(3):
        req, der = ocsp_request("rot-%d" % i, "-cert", pem, "-nonce")
        text = wait_for("an OCSP answer", lambda: (lambda t: t if "Cert Status: good" in t else None)(
            ocsp_check("rot-%d" % i, req, ocsp_post(local, der)[2])), timeout=20)
        check("Response verify OK" in text, "rotated responder %d: %s" % (i, text))
        # the responder's key hash: a new key with each new certificate
        serials.update(l.split(":", 1)[1].strip() for l in text.splitlines() if "Responder Id:" in l)
    check(len(serials) == 3, "responders: %r" % serials)
    check(cw.metrics("signer").get("ocsp_responder_rotations_total", 0) >= 2, "rotations not counted")
    pid = cw.status()["signer"]["pid"]
    cw.write_config()
    cw.ctl("reload")
    wait_for("the signer restarted with the defaults", lambda: cw.status()["signer"]["pid"] != pid, timeout=30)
    wait_for("workers back", cw.all_running, timeout=30)
    wait_for("the api reaches the new signer", lambda: cw.ctl("ping", "api", "signer", check_rc=False).returncode == 0,
             timeout=30)


def crl_lease():
    """While another node holds an issuer's CRL lease (crl_state.lease_until)
    this scheduler leaves that CRL alone; once the lease is gone it catches
    up with the revocations made meanwhile."""
    local, admin = ctx["local"], ctx["admin"]
    before = crl_number(crl_text(crl_now(local)[2]))
    psql(pg, "UPDATE crl_state SET lease_until = now() + interval '1 hour' WHERE issuer_id = '%s'" % local)
    cert, pem = issue_leaf("leased")
    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % cert["id"], admin, {"reason": "superseded"})
    check(code == 200, "revoke")
    time.sleep(3)
    check(crl_number(crl_text(crl_now(local)[2])) == before, "a CRL was signed under another node's lease")
    psql(pg, "UPDATE crl_state SET lease_until = NULL WHERE issuer_id = '%s'" % local)
    serial = serial_of(pem)
    text = wait_for("the CRL after the lease", lambda: (lambda t: t if crl_lists(t, serial) else None)(
        crl_text(crl_now(local)[2])), timeout=15)
    check(crl_number(text) > before, "CRL number after the lease")
    check(psql(pg, "SELECT lease_until IS NULL FROM crl_state WHERE issuer_id = '%s'" % local).strip() == "t",
          "the lease was not given back")


def ocsp_signing_limited():
    """One client address gets at most api.ocsp_signed_per_client (50)
    responses signed afresh a second: past it the answer is tryLater (no
    signature, no ledger line), and a cached answer is not limited."""
    local = ctx["local"]
    _, pem = issue_leaf("limited")
    reqs = [ocsp_request("lim-%d" % i, "-cert", pem, "-nonce")[1] for i in range(8)]
    lines = cw.metrics("signer").get("ledger_entries", 0)
    results = []

    def burst(der):
        client = Api(cw)
        for _ in range(30):
            results.append(client.raw("POST", "/.well-known/pki/ocsp/" + local, der,
                                      {"Content-Type": "application/ocsp-request"})[2])
    t0 = time.monotonic()
    threads = [threading.Thread(target=burst, args=(r,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    later = sum(1 for r in results if r == b"\x30\x03\x0a\x01\x03")
    signed = len(results) - later
    check(len(results) == 240 and later > 0, "240 nonce requests at once: %d answered tryLater" % later)
    check(signed <= 50 * (int(elapsed) + 2), "%d signed in %.1f s" % (signed, elapsed))
    check(cw.metrics("signer").get("ledger_entries", 0) - lines <= signed + 2, "ledger lines for refused requests")
    # a cached answer costs nothing: not limited
    req_c, der_c = ocsp_request("lim-cached", "-cert", pem, "-no_nonce")
    ocsp_post(local, der_c)
    time.sleep(1.1)
    codes = [ocsp_post(local, der_c)[2] for _ in range(80)]
    check(all(c != b"\x30\x03\x0a\x01\x03" for c in codes), "cached answers were limited")


def intermediates():
    """Intermediate CAs through the API: made below the root with a path
    length and name constraints that openssl shows; a child may not widen
    either (400 naming the field); an issuer whose config names an
    intermediate has its certificates, CRL and OCSP responses signed by it,
    and a name outside the constraints is refused; retiring drains first."""
    local, admin = ctx["local"], ctx["admin"]
    d = os.path.join(root, "ica")
    os.makedirs(d, exist_ok=True)

    def make(issuer, body, status=201):
        code, rec = api.call("POST", "/api/v1/issuers/%s/intermediates" % issuer, admin, body)
        check(code == status, "intermediate %r: %r" % (body.get("name"), (code, rec)))
        return rec

    ops = make(local, {"name": "ops", "subject": {"common_name": "certward Ops CA", "organization": "Example"},
                       "path_len_constraint": 1,
                       "name_constraints": [{"kind": "permitted", "dns": "example.com"},
                                            {"kind": "excluded", "dns": "secret.example.com"}]})
    check(ops["state"] == "active" and ops["parent_ca_id"] is None and ops["path_len_constraint"] == 1, "ops: %r" % ops)
    ops_pem = os.path.join(d, "ops.pem")
    with open(ops_pem, "w") as f:
        f.write(ops["cert_pem"])
    out = openssl("verify", "-CAfile", published(cw, "ca-root.crt"), ops_pem)
    check(out.stdout.strip().endswith(": OK"), "ops verifies: %r" % out.stdout)
    text = text_of(ops_pem)
    check("CA:TRUE, pathlen:1" in text and "Permitted:" in text and "DNS:example.com" in text and
          "Excluded:" in text and "DNS:secret.example.com" in text and "O = Example" in text, "ops: %s" % text)

    # a child may not widen what its parent allows
    prob = make(local, {"name": "wide", "parent_ca_id": ops["id"], "path_len_constraint": 1}, 400)
    check(prob.get("field") == "path_len_constraint", "path length: %r" % prob)
    prob = make(local, {"name": "other", "parent_ca_id": ops["id"],
                        "name_constraints": [{"kind": "permitted", "dns": "example.org"}]}, 400)
    check(prob.get("field") == "name_constraints" and "outside" in prob["detail"], "names: %r" % prob)
    team = make(local, {"name": "team", "parent_ca_id": ops["id"],
                        "name_constraints": [{"kind": "permitted", "dns": "team.example.com"}]})
    check(team["path_len_constraint"] == 0 and team["parent_ca_id"] == ops["id"], "team: %r" % team)
    prob = make(local, {"name": "below-team", "parent_ca_id": team["id"]}, 400)
    check(prob.get("field") == "path_len_constraint", "below a pathlen 0 CA: %r" % prob)
    # what the API refuses before the signer
    for body, field in (({"name": "x", "root_cert_pem": "-----BEGIN"}, "root_cert_pem"),
                        ({"name": "x", "algorithm": "dsa"}, "algorithm"),
                        ({"name": "x", "name_constraints": [{"kind": "allowed", "dns": "a.b"}]}, "name_constraints"),
                        ({"name": "x", "unknown": 1}, "unknown"), ({}, "name"),
                        ({"name": "x", "name_constraints": [{"kind": "permitted", "dns": "a%d.example.com" % i}
                                                            for i in range(33)]}, "name_constraints"),
                        ({"name": "x" * 256}, "name")):
        code, prob = api.call("POST", "/api/v1/issuers/%s/intermediates" % local, admin, body)
        check(code == 400 and prob.get("field") == field, "%r: %r" % (body, (code, prob)))
    viewer = make_key(pg, "pki-viewer", "viewer")
    check(api.call("GET", "/api/v1/issuers/%s/intermediates" % local, viewer)[0] == 403, "viewer")
    check(api.call("POST", "/api/v1/issuers/iss-nope/intermediates", admin, {"name": "x"})[0] == 404, "no issuer")
    code, listing = api.call("GET", "/api/v1/issuers/%s/intermediates" % local, admin)
    check(code == 200 and [r["id"] for r in listing["data"]] == [ops["id"], team["id"]], "list: %r" % listing)
    check(api.call("GET", "/api/v1/intermediates/" + team["id"], admin)[1]["name"] == "team", "get")

    # an issuer signing with the team CA
    code, iss = api.call("POST", "/api/v1/issuers", admin, {"name": "team-local", "type": "Local",
                                                           "config": {"intermediate_id": team["id"]}})
    check(code == 201, "issuer: %r" % ((code, iss),))
    code, cert = api.call("POST", "/api/v1/certificates", admin,
                          ctx["body"]("web.team", csr_pem("web.team", sans="DNS:team.example.com"), issuer=iss["id"]))
    check(code == 201, "issued below team: %r" % ((code, cert),))
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], admin)
    chain = versions["data"][0]["pem_chain"]
    leaf, rest = os.path.join(d, "leaf.pem"), os.path.join(d, "rest.pem")
    parts = chain.split("-----END CERTIFICATE-----\n")
    with open(leaf, "w") as f:
        f.write(parts[0] + "-----END CERTIFICATE-----\n")
    with open(rest, "w") as f:
        f.write("-----END CERTIFICATE-----\n".join(parts[1:]))
    check(chain.count("BEGIN CERTIFICATE") == 4, "leaf, team, ops, root: %d" % chain.count("BEGIN CERTIFICATE"))
    out = openssl("verify", "-CAfile", published(cw, "ca-root.crt"), "-untrusted", rest, leaf)
    check(out.stdout.strip().endswith(": OK"), "leaf below team verifies: %r" % out.stdout)
    check("Issuer: CN = certward Team" in text_of(leaf) or "Issuer: CN = team" in text_of(leaf), "issuer of the leaf")
    # outside team.example.com: the signer refuses, naming the constraint
    code, prob = api.call("POST", "/api/v1/certificates", admin,
                          ctx["body"]("web.other", csr_pem("web.other", sans="DNS:web.example.com"), issuer=iss["id"]))
    check(code == 400 and "name constraints" in prob.get("detail", ""), "outside the constraints: %r" % ((code, prob),))
    # the issuer's CA cannot change now
    code, prob = api.call("PUT", "/api/v1/issuers/" + iss["id"], admin,
                          {"name": "team-local", "type": "Local", "config": {"intermediate_id": ops["id"]}})
    check(code == 409, "changing the CA of an issuer that issued: %r" % ((code, prob),))

    # its CRL and OCSP come from the team CA
    bundle = os.path.join(d, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(chain.split("-----END CERTIFICATE-----\n", 1)[1])
    got = {}
    wait_for("the team issuer's CRL", lambda: got.update(r=crl_now(iss["id"])) or got["r"][0] == 200, timeout=30)
    path = os.path.join(d, "team.crl")
    with open(path, "wb") as f:
        f.write(got["r"][2])
    out = openssl("crl", "-inform", "DER", "-in", path, "-noout", "-issuer", "-CAfile", bundle)
    check("verify OK" in out.stderr + out.stdout and "team" in out.stdout, "CRL signed by team: %r" % (out,))
    reqp = os.path.join(d, "leaf.req")
    with open(os.path.join(d, "team.pem"), "w") as f:
        f.write(parts[1] + "-----END CERTIFICATE-----\n")
    openssl("ocsp", "-issuer", os.path.join(d, "team.pem"), "-cert", leaf, "-no_nonce", "-reqout", reqp)
    with open(reqp, "rb") as f:
        status, _, resp = ocsp_post(iss["id"], f.read())
    respp = os.path.join(d, "leaf.resp")
    with open(respp, "wb") as f:
        f.write(resp)
    out = openssl("ocsp", "-respin", respp, "-reqin", reqp, "-CAfile", bundle, "-resp_text", ok=False)
    check("Response verify OK" in out.stdout + out.stderr and "Cert Status: good" in out.stdout,
          "OCSP by the team responder: %s" % (out.stdout + out.stderr))

    # retiring drains first
    def retire(ica, body, status):
        code, r = api.call("POST", "/api/v1/intermediates/%s/retire" % ica, admin, body)
        check(code == status, "retire %r: %r" % (body, (code, r)))
        return r
    retire(ops["id"], {"confirm": True}, 409)            # active: retire first
    check(retire(ops["id"], {"note": "rotating"}, 200)["state"] == "retiring", "retiring")
    make(local, {"name": "late", "parent_ca_id": ops["id"]}, 409)  # a retiring parent makes nothing new
    check("below it" in retire(ops["id"], {"confirm": True}, 409)["detail"], "children first")
    retire(team["id"], {}, 200)
    code, prob = api.call("POST", "/api/v1/certificates", admin,
                          ctx["body"]("web.late", csr_pem("web.late", sans="DNS:team.example.com"), issuer=iss["id"]))
    check(code == 422 and prob.get("field") == "issuer_id", "a retiring CA signs nothing new: %r" % ((code, prob),))
    retire(team["id"], {"confirm": True}, 200)
    done = retire(ops["id"], {"confirm": True}, 200)
    check(done["state"] == "retired" and done["retired_at"] and done["note"] == "rotating", "retired: %r" % done)
    retire(ops["id"], {"confirm": True}, 409)
    check(count("audit_events", "resource_type = 'intermediate_cas'") >= 6, "audit events of intermediates")


def server_keygen():
    """key_generation "server": refused unless the profile allows it; then
    the signer makes the key, the answer carries it once (it matches the
    certificate), the database keeps it only sealed (secretbox_open with the
    signer's key gives it back), and no log line or later read shows it."""
    admin, local = ctx["admin"], ctx["local"]

    def body(name, profile, **kw):
        b = {"name": name, "common_name": name + ".example.com", "sans": [name + ".example.com"],
             "owner_id": ctx["owner"], "team_id": ctx["team"], "issuer_id": local,
             "renewal_policy_id": ctx["policy"], "certificate_profile_id": profile, "key_generation": "server"}
        b.update(kw)
        return b

    code, prob = api.call("POST", "/api/v1/certificates", admin, body("kg-off", ctx["profile"]))
    check(code == 422 and prob.get("field") == "certificate_profile_id", "off by default: %r" % ((code, prob),))
    code, prof = api.call("POST", "/api/v1/profiles", admin,
                          dict({k: v for k, v in PROFILE.items() if k != "enabled"}, name="keygen", server_keygen=True))
    check(code == 201 and prof["server_keygen"] is True, "profile: %r" % ((code, prof),))
    for extra, field in (({"csr_pem": csr_pem("kg-both")}, "key_generation"), ({"key_algorithm": "dsa"}, "key_algorithm"),
                         ({"key_generation": "agent"}, "key_generation")):
        code, prob = api.call("POST", "/api/v1/certificates", admin, body("kg-bad", prof["id"], **extra))
        check(code == 400 and prob.get("field") == field, "%r: %r" % (extra, (code, prob)))
    # more names than the signer puts in a CSR it makes (100)
    many = ["n%d.example.com" % i for i in range(101)]
    code, prob = api.call("POST", "/api/v1/certificates", admin, body("kg-many", prof["id"], sans=many))
    check(code == 400 and prob.get("field") == "key_generation" and "100" in prob.get("detail", ""),
          "101 names: %r" % ((code, prob),))
    # a key the profile does not allow: the signer's check, named
    code, prob = api.call("POST", "/api/v1/certificates", admin, body("kg-ed", prof["id"], key_algorithm="ed25519"))
    check(code == 400 and prob.get("field") == "key_generation", "ed25519 under the profile: %r" % ((code, prob),))

    code, cert = api.call("POST", "/api/v1/certificates", admin, body("kg", prof["id"], key_algorithm="ECDSA-P384"))
    check(code == 201 and cert["status"] == "Active" and "PRIVATE KEY" in cert.get("private_key_pem", ""),
          "made: %r" % ((code, cert),))
    check(cert["latest_version"]["key_algorithm"] == "ECDSA" and cert["latest_version"]["key_size"] == 384,
          "version: %r" % cert["latest_version"])
    key_pem = cert["private_key_pem"]
    d = os.path.join(root, "kg")
    os.makedirs(d, exist_ok=True)
    code, versions = api.call("GET", "/api/v1/certificates/%s/versions" % cert["id"], admin)
    leaf = os.path.join(d, "leaf.pem")
    with open(leaf, "w") as f:
        f.write(versions["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    with open(os.path.join(d, "key.pem"), "w") as f:
        f.write(key_pem)
    pub_cert = openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout
    pub_key = openssl("pkey", "-in", os.path.join(d, "key.pem"), "-pubout").stdout
    check(pub_cert == pub_key, "the key does not match the certificate")
    out = openssl("verify", "-CAfile", published(cw, "ca-root.crt"), "-untrusted", published(cw, "ca-issuing.crt"), leaf)
    check(out.stdout.strip().endswith(": OK"), "verify: %r" % out.stdout)
    check("DNS:kg.example.com" in text_of(leaf), "SAN of the made key's certificate")
    # never again in clear: not in a later read, a log line or the database
    body_b64 = "".join(key_pem.strip().splitlines()[1:-1])
    check(body_b64 not in json.dumps(api.call("GET", "/api/v1/certificates/" + cert["id"], admin)[1]) and
          body_b64 not in json.dumps(versions), "the key in a later read")
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name), errors="replace") as f:
            check(body_b64[:40] not in f.read(), "the key in %s" % name)
    sealed = psql(pg, "SELECT encode(k.sealed, 'hex') FROM version_keys k JOIN certificate_versions v "
                      "ON v.id = k.certificate_version_id WHERE v.certificate_id = '%s'" % cert["id"]).strip()
    check(sealed and "PRIVATE" not in bytes.fromhex(sealed).decode("latin-1"), "sealed in the database")
    dump = psql(pg, "SELECT string_agg(t::text, '') FROM certificate_versions t")
    check(body_b64[:40] not in dump, "the key in certificate_versions")
    out = subprocess.run([os.path.join(BUILD, "tests", "secretbox_open"), os.path.join(key_dir(cw), "secrets.key"),
                          sealed], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and json.loads(out.stdout)["private_key_pem"] == key_pem, "opened: %r" % out.stderr)


def ledger_tampering():
    """A changed ledger: certward ledger verify names the line, and the
    signer refuses to start on it (it signs nothing without its ledger)."""
    path = os.path.join(key_dir(cw), "ledger")
    saved = path + ".saved"
    shutil.copy2(path, saved)
    with open(path) as f:
        lines = f.read().splitlines(True)
    lines[1] = lines[1].replace("certificate root", "certificate rooT", 1)
    with open(path, "w") as f:
        f.write("".join(lines))
    out = ledger_verify(path)
    check(out.returncode == 1 and "BROKEN at line 2" in out.stdout, "verify: %r" % (out,))
    cw.ctl("restart", "signer", check_rc=False)
    wait_for("signer refuses the ledger", lambda: "broken at line 2" in signer_log(cw), timeout=30)
    shutil.copy2(saved, path)
    os.unlink(saved)
    wait_for("signer back", lambda: cw.status()["signer"]["state"] == "running", timeout=30)
    check(ledger_verify(path).returncode == 0, "restored ledger")


root = make_root("certward-pki-")
pg = cw = None
started = []
try:
    pg = Postgres(root, 16000 + os.getpid() % 90)
    os.makedirs(os.path.join(root, "main"))
    os.chmod(os.path.join(root, "main"), 0o755)
    # batched_issuance holds calls for 2 s: they wait in the store's queue
    cw = Certward(os.path.join(root, "main"), pg.dsn, store_extra="  queue_timeout: 4s\n")
    cw.start()
    api = Api(cw)
    case(self_signed_ca)
    case(kept_across_restarts)
    case(agent_ca_published)
    case(key_algorithms)
    case(passphrase)
    case(subordinate)
    case(agent_ca_in_subordinate_mode)
    case(signer_refuses_directly)
    case(crl_entries_bound)
    case(ledger_disk_full)
    case(agent_identities_directly)
    case(issuance_through_the_api)
    case(renewal)
    case(batched_issuance)
    case(batched_issuance_connection_lost)
    case(revocation)
    case(responder_rotation)
    case(crl_lease)
    case(ocsp_signing_limited)
    case(intermediates)
    case(server_keygen)
    case(ledger_tampering)
    RUN.stop_clean(cw)
finally:
    for c in started:
        c.kill_everything()
    teardown(cw, pg, root)
RUN.finish()
