"""certward ca init --backend pkcs11 and certward ca import-cert against a
real SoftHSM2 token made in a temporary directory, through the real
certward-p11 (no certwardd): self-signed CA certificates made on the token
(P-256, P-384, RSA) checked with openssl, the private key never
extractable, no second key under a label and no file replaced; a CSR
signed by an openssl-made root and intermediate and imported back with its
chain; certificates for another key, not a CA, without keyCertSign,
expired or with a broken chain refused; a wrong PIN named by its CKR_ code
and never shown; usage errors."""
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Cases, SoftHSM, check, log, make_root, remove_root

RUN = Cases()
case = RUN.case
WRONG_PIN = "58204719"
TOKEN = "cw-ca-cli"
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer",
             "nonnull attribute specified here")
SANITIZER_REPORTS = []


def run(cmd, env=None, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def ok(cmd, what, env=None):
    out = run(cmd, env=env)
    check(out.returncode == 0, "%s failed (%d):\n%s%s" % (what, out.returncode, out.stdout, out.stderr))
    return out.stdout


class Cli:
    """One run of the real certward: its exit status, stdout and the lines
    of stderr (sanitizer reports are kept aside and fail the test at the
    end)."""

    def __init__(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTWARD_")}
        out = run([os.path.join(BUILD, "certward")] + list(args), env=env)
        self.args = args
        self.rc = out.returncode
        self.stdout = out.stdout
        self.err = []
        for line in out.stderr.splitlines():
            if any(k in line for k in SANITIZER):
                SANITIZER_REPORTS.append("certward %s: %s" % (" ".join(args[:2]), line))
            else:
                self.err.append(line)
        text = self.stdout + out.stderr
        check(hsm.pin not in text and WRONG_PIN not in text, "a PIN in the output of %r:\n%s" % (args, text))

    def expect(self, rc, what):
        check(self.rc == rc, "%s: exit %d, want %d\nstdout: %s\nstderr: %s"
              % (what, self.rc, rc, self.stdout, "\n".join(self.err)))
        return self

    def error_line(self, *words):
        """The failure said on one line of stderr holding every word."""
        check(len(self.err) == 1, "want one line on stderr, got: %r" % self.err)
        for w in words:
            check(w in self.err[0], "%r not in: %s" % (w, self.err[0]))
        return self.err[0]


def write_config(name, label, ca_cert_file="", pin_file=None, extra=""):
    path = os.path.join(root, name + ".yml")
    with open(path, "w") as f:
        f.write("master:\n  libexec_dir: %s\n" % BUILD)
        f.write("store:\n  dsn: \"postgresql:///certward\"\n")
        f.write("signer:\n")
        if ca_cert_file:
            f.write("  ca_cert_file: %s\n" % ca_cert_file)
        f.write("  pkcs11_module: %s\n  pkcs11_token_label: %s\n  pkcs11_key_label: %s\n"
                "  pkcs11_pin_file: %s\n  pkcs11_env: \"SOFTHSM2_CONF=%s\"\n%s"
                % (hsm.MODULE, TOKEN, label, pin_file or hsm.pin_file, hsm.conf, extra))
    return path


def privkeys():
    """pkcs11-tool's private key objects: {label: text of the object}."""
    rc, out = hsm.tool("--list-objects", "--type", "privkey")
    check(rc == 0, "pkcs11-tool --list-objects: %s" % out)
    keys = {}
    for block in out.split("Private Key Object")[1:]:
        for line in block.splitlines():
            if line.strip().startswith("label:"):
                keys[line.split(":", 1)[1].strip()] = block
    return keys


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def x509_text(path):
    return ok(["openssl", "x509", "-in", path, "-noout", "-text"], "openssl x509 -text")


def verify_self_signed(path):
    out = ok(["openssl", "verify", "-CAfile", path, path], "openssl verify")
    check(out.strip() == "%s: OK" % path, "openssl verify: %r" % out)


def pem_certs(path):
    with open(path) as f:
        return f.read().count("-----BEGIN CERTIFICATE-----")


def files_in(d):
    return sorted(os.listdir(d))


# ---- cases ----

def init_self_signed_p256():
    d = os.path.join(root, "p256")
    os.mkdir(d)
    ca = os.path.join(d, "ca.pem")
    cfg = write_config("p256", "ca-p256", ca_cert_file=ca)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg, "--subject", "CN=Example HSM CA,O=Example")
    out.expect(0, "ca init P-256")
    check(out.err == [], "stderr: %r" % out.err)
    for want in ('label "ca-p256"', "ecdsa-p256", "made on the token, not extractable", ca,
                 "signer.ca_backend: pkcs11", "start certwardd"):
        check(want in out.stdout, "%r not in the output:\n%s" % (want, out.stdout))
    fp = ok(["openssl", "x509", "-in", ca, "-noout", "-fingerprint", "-sha256"], "fingerprint")
    check(fp.strip().split("=", 1)[1] in out.stdout, "fingerprint %s not in:\n%s" % (fp, out.stdout))
    check(os.stat(ca).st_mode & 0o777 == 0o644, "mode %o" % (os.stat(ca).st_mode & 0o777))
    text = x509_text(ca)
    for want in ("CA:TRUE", "Certificate Sign", "CRL Sign", "Subject: CN = Example HSM CA, O = Example",
                 "Issuer: CN = Example HSM CA, O = Example", "Subject Key Identifier",
                 "ecdsa-with-SHA256", "Version: 3"):
        check(want in text, "%r not in the certificate:\n%s" % (want, text))
    check(text.count("critical") >= 2, "basicConstraints and keyUsage not critical:\n%s" % text)
    verify_self_signed(ca)
    keys = privkeys()
    check("ca-p256" in keys, "no private key ca-p256 on the token: %r" % list(keys))
    for want in ("never extractable", "sensitive", "EC"):
        check(want in keys["ca-p256"], "%r not in the key's attributes:\n%s" % (want, keys["ca-p256"]))
    check(files_in(d) == ["ca.pem"], "files left: %r" % files_in(d))


def second_init_same_label_refused():
    d = os.path.join(root, "p256")
    ca = os.path.join(d, "ca.pem")
    before = digest(ca)
    cfg = write_config("p256b", "ca-p256", ca_cert_file=ca)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg, "--out", os.path.join(d, "again.pem"))
    out.expect(1, "a second ca init with the same label")
    out.error_line("already holds a private key", '"ca-p256"', "nothing was changed")
    check(digest(ca) == before, "the first certificate changed")
    check(files_in(d) == ["ca.pem"], "files left: %r" % files_in(d))
    check(list(privkeys()).count("ca-p256") == 1, "a second key")


def init_refuses_existing_file():
    d = os.path.join(root, "p256")
    ca = os.path.join(d, "ca.pem")
    before = digest(ca)
    cfg = write_config("exists", "ca-exists", ca_cert_file=ca)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg)
    out.expect(1, "ca init over an existing ca_cert_file")
    out.error_line(ca, "exists already", "not replaced")
    check(digest(ca) == before, "the existing file changed")
    check("ca-exists" not in privkeys(), "a key was made although the file exists")
    check(files_in(d) == ["ca.pem"], "files left: %r" % files_in(d))
    # no ca_cert_file and no --out: said so, nothing made
    cfg = write_config("nofile", "ca-nofile")
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg)
    out.expect(1, "ca init without ca_cert_file")
    out.error_line("signer.ca_cert_file is not set", "--out")
    check("ca-nofile" not in privkeys(), "a key was made without a file to write")


def init_rsa_and_p384():
    for alg, label, sig in (("rsa-2048", "ca-rsa", "sha256WithRSAEncryption"),
                            ("ecdsa-p384", "ca-p384", "ecdsa-with-SHA384")):
        path = os.path.join(root, label + ".pem")
        cfg = write_config(label, label)
        out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg, "--algorithm", alg, "--out", path,
                  "--days", "30", "--subject", "CN=%s test CA" % alg)
        out.expect(0, "ca init " + alg)
        check("signer.ca_cert_file: " + path in out.stdout, "next step: %s" % out.stdout)
        text = x509_text(path)
        check(sig in text, "%r not in:\n%s" % (sig, text))
        check("CN = %s test CA" % alg in text, text)
        verify_self_signed(path)
        end = ok(["openssl", "x509", "-in", path, "-noout", "-checkend", str(29 * 86400)], "checkend")
        check("will not expire" in end, end)
        check(run(["openssl", "x509", "-in", path, "-noout", "-checkend", str(31 * 86400)]).returncode == 1,
              "valid beyond --days 30")
        check("never extractable" in privkeys()[label], "%s extractable" % label)


def openssl_ext(name, text):
    path = os.path.join(root, name + ".ext")
    with open(path, "w") as f:
        f.write(text)
    return path


CA_EXT = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


def sign_csr(csr, out, ca, ca_key, ext, serial):
    ok(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", str(serial),
        "-days", "30", "-sha256", "-extfile", openssl_ext("e%d" % serial, ext), "-out", out],
       "openssl x509 -req")


def outside_ca():
    """An outside root and intermediate made with openssl."""
    d = os.path.join(root, "outside")
    os.mkdir(d)
    p = lambda n: os.path.join(d, n)
    ok(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("root.key"), "-out", p("root.pem"), "-subj", "/CN=Outside Root/O=Elsewhere",
        "-days", "60", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "root")
    ok(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("mid.key"), "-out", p("mid.csr"), "-subj", "/CN=Outside Intermediate"], "mid csr")
    sign_csr(p("mid.csr"), p("mid.pem"), p("root.pem"), p("root.key"), CA_EXT, 10)
    with open(p("chain.pem"), "w") as f:
        f.write(open(p("mid.pem")).read() + open(p("root.pem")).read())
    return p


def csr_and_import():
    global SUB
    d = os.path.join(root, "sub")
    os.mkdir(d)
    ca = os.path.join(d, "ca.pem")
    csr = os.path.join(d, "sub.csr")
    cfg = write_config("sub", "ca-sub", ca_cert_file=ca)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg, "--csr", csr,
              "--subject", "CN=Example Issuing CA,O=Example\\, Inc.")
    out.expect(0, "ca init --csr")
    for want in ("CSR: " + csr, "import-cert", "--cert signed.pem", "--chain chain.pem", 'label "ca-sub"'):
        check(want in out.stdout, "%r not in:\n%s" % (want, out.stdout))
    check(not os.path.exists(ca), "--csr wrote ca_cert_file")
    v = run(["openssl", "req", "-in", csr, "-verify", "-noout", "-subject"])
    check(v.returncode == 0 and "verify OK" in v.stdout + v.stderr, "openssl req -verify: %s%s" % (v.stdout, v.stderr))
    check('CN = Example Issuing CA, O = "Example, Inc."' in v.stdout, "CSR subject: %r" % v.stdout)
    text = ok(["openssl", "req", "-in", csr, "-noout", "-text"], "req -text")
    check("CA:TRUE" in text and "Certificate Sign" in text, "the CSR asks for no CA extensions:\n%s" % text)
    again = Cli("ca", "init", "--backend", "pkcs11", "-c", write_config("sub2", "ca-sub2"), "--csr", csr)
    again.expect(1, "--csr over an existing file").error_line("exists already")

    p = outside_ca()
    signed = os.path.join(d, "signed.pem")
    sign_csr(csr, signed, p("mid.pem"), p("mid.key"), CA_EXT, 20)
    # the file a CA certificate is imported into may be replaced
    with open(ca, "w") as f:
        f.write("an older certificate\n")
    out = Cli("ca", "import-cert", "-c", cfg, "--cert", signed, "--chain", p("chain.pem"))
    out.expect(0, "ca import-cert")
    check(ca in out.stdout and "Example Issuing CA" in out.stdout, out.stdout)
    check(pem_certs(ca) == 3, "%s holds %d certificates, want 3" % (ca, pem_certs(ca)))
    with open(ca) as f:
        first = f.read().split("-----END CERTIFICATE-----")[0]
    with open(signed) as f:
        check(f.read().startswith(first), "the issuing CA is not first in %s" % ca)
    issuing = os.path.join(d, "issuing.pem")
    with open(issuing, "w") as f:
        f.write(first + "-----END CERTIFICATE-----\n")
    v = ok(["openssl", "verify", "-CAfile", p("root.pem"), "-untrusted", p("mid.pem"), issuing], "verify")
    check(v.strip().endswith("OK"), v)
    v = ok(["openssl", "verify", "-CAfile", p("root.pem"), "-untrusted", ca, issuing], "verify whole file")
    check(os.stat(ca).st_mode & 0o777 == 0o644, "mode %o" % (os.stat(ca).st_mode & 0o777))
    SUB = (cfg, ca, csr, p)


def import_refusals():
    cfg, ca, csr, p = SUB
    before = digest(ca)
    d = os.path.dirname(ca)

    def refused(cert, what, *words, chain=None):
        args = ["ca", "import-cert", "-c", cfg, "--cert", cert] + (["--chain", chain] if chain else [])
        out = Cli(*args)
        out.expect(1, what)
        out.error_line(*words)
        check(digest(ca) == before, "%s changed %s" % (what, ca))

    # another key's CA certificate
    ok(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", os.path.join(d, "other.key"), "-out", os.path.join(d, "other.csr"),
        "-subj", "/CN=Example Issuing CA"], "other csr")
    sign_csr(os.path.join(d, "other.csr"), os.path.join(d, "other.pem"), p("mid.pem"), p("mid.key"), CA_EXT, 30)
    refused(os.path.join(d, "other.pem"), "another key",
            'the certificate is not for the key labelled "ca-sub" on the token')
    # not a CA; a CA without keyCertSign
    sign_csr(csr, os.path.join(d, "leaf.pem"), p("mid.pem"), p("mid.key"),
             "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n", 31)
    refused(os.path.join(d, "leaf.pem"), "not a CA", "not a CA certificate", "CA:TRUE")
    sign_csr(csr, os.path.join(d, "nosign.pem"), p("mid.pem"), p("mid.key"),
             "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n", 32)
    refused(os.path.join(d, "nosign.pem"), "no keyCertSign", "keyCertSign")
    # expired: openssl ca sets the dates
    cadir = os.path.join(d, "openssl-ca")
    os.makedirs(os.path.join(cadir, "new"))
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("40\n")
    conf = openssl_ext("ca", "[ca]\ndefault_ca = cw\n[cw]\ndatabase = %s/index.txt\nnew_certs_dir = %s/new\n"
                             "serial = %s/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                             "x509_extensions = caext\n[any]\ncommonName = supplied\norganizationName = optional\n"
                             "[caext]\n%s" % (cadir, cadir, cadir, CA_EXT))
    ok(["openssl", "ca", "-batch", "-config", conf, "-cert", p("mid.pem"), "-keyfile", p("mid.key"),
        "-in", csr, "-out", os.path.join(d, "expired.pem"), "-notext",
        "-startdate", "20200101000000Z", "-enddate", "20210101000000Z"], "openssl ca (expired)")
    refused(os.path.join(d, "expired.pem"), "expired", "has expired")
    # a chain that skips the intermediate, and one in the wrong order
    signed = os.path.join(d, "signed.pem")
    refused(signed, "chain without the intermediate", "--chain certificate 1", "did not sign", chain=p("root.pem"))
    wrong = os.path.join(d, "wrong-order.pem")
    with open(wrong, "w") as f:
        f.write(open(p("root.pem")).read() + open(p("mid.pem")).read())
    refused(signed, "chain in the wrong order", "did not sign", chain=wrong)
    # not a certificate, not there
    refused(csr, "a CSR as --cert", "no PEM certificate")
    refused(os.path.join(d, "missing.pem"), "a missing file", "cannot read", "No such file")


def wrong_pin():
    pin = os.path.join(root, "wrong.pin")
    with open(pin, "w") as f:
        f.write(WRONG_PIN + "\n")
    os.chmod(pin, 0o600)
    cfg = write_config("wrongpin", "ca-wrongpin", ca_cert_file=os.path.join(root, "wrongpin.pem"), pin_file=pin)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg)
    out.expect(1, "ca init with a wrong PIN")
    out.error_line("CKR_PIN_INCORRECT")
    check(not os.path.exists(os.path.join(root, "wrongpin.pem")), "a file written with a wrong PIN")
    check([n for n in os.listdir(root) if n.startswith("wrongpin.pem")] == [], "temporary file left")
    cfg, ca, csr, p = SUB
    cfg2 = write_config("wrongpin2", "ca-sub", ca_cert_file=ca, pin_file=pin)
    out = Cli("ca", "import-cert", "-c", cfg2, "--cert", os.path.join(os.path.dirname(ca), "signed.pem"))
    out.expect(1, "import-cert with a wrong PIN")
    out.error_line("CKR_PIN_INCORRECT")
    check("ca-wrongpin" not in privkeys(), "a key made with a wrong PIN")


def token_missing():
    cfg = write_config("notoken", "ca-x", ca_cert_file=os.path.join(root, "x.pem"))
    text = open(cfg).read().replace("pkcs11_token_label: %s" % TOKEN, "pkcs11_token_label: no-such-token")
    with open(cfg, "w") as f:
        f.write(text)
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", cfg)
    out.expect(1, "ca init without the token")
    out.error_line("no-such-token")
    out = Cli("ca", "init", "--backend", "pkcs11", "-c", os.path.join(root, "missing.yml"))
    out.expect(1, "ca init with a missing config").error_line("missing.yml")


def usage_errors():
    keys_before = sorted(privkeys())
    cfg = write_config("usage", "ca-usage", ca_cert_file=os.path.join(root, "usage.pem"))
    for args, words in (
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--algorithm", "dsa-1024"], ["--algorithm", "dsa-1024"]),
            (["ca", "init", "--backend", "file", "-c", cfg], ["--backend file", "first start"]),
            (["ca", "init", "--backend", "hsm", "-c", cfg], ["--backend", "hsm"]),
            (["ca", "init", "-c", cfg], ["--backend pkcs11"]),
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--days", "0"], ["--days"]),
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--subject", "no equals sign"], ["--subject"]),
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--subject", "XX=1"], ["--subject"]),
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--csr", "a.csr", "--out", "b.pem"], ["--csr"]),
            (["ca", "init", "--backend", "pkcs11", "-c", cfg, "--bogus", "1"], ["--bogus"]),
            (["ca", "import-cert", "-c", cfg], ["--cert"]),
            (["ca", "import-cert", "-c", cfg, "--cert"], ["--cert", "value"])):
        out = Cli(*args)
        out.expect(2, " ".join(args))
        out.error_line(*words)
    check(sorted(privkeys()) == keys_before, "a usage error touched the token")
    check(not os.path.exists(os.path.join(root, "usage.pem")), "a usage error wrote a file")


def help_lists_both():
    out = Cli("--help").expect(0, "--help")
    check("ca init --backend pkcs11" in out.stdout and "ca import-cert" in out.stdout, out.stdout)
    out = Cli("ca", "init", "--help").expect(0, "ca init --help")
    check("--algorithm" in out.stdout and "--csr" in out.stdout, out.stdout)
    out = Cli("ca", "import-cert", "--help").expect(0, "ca import-cert --help")
    check("--chain" in out.stdout, out.stdout)


if not os.path.exists(SoftHSM.MODULE):
    log("SoftHSM2 is not installed (contrib/install-deps.sh installs softhsm2)")
    sys.exit(1)
root = make_root("cw-ca-cli-")
SUB = None
try:
    hsm = SoftHSM(os.path.join(root, "hsm"), label=TOKEN)
    case(help_lists_both)
    case(init_self_signed_p256)
    case(second_init_same_label_refused)
    case(init_refuses_existing_file)
    case(init_rsa_and_p384)
    case(csr_and_import)
    if SUB:
        case(import_refusals)
        case(wrong_pin)
    case(token_missing)
    case(usage_errors)
    if SANITIZER_REPORTS:
        RUN.fail("sanitizer reports:\n" + "\n".join(SANITIZER_REPORTS[:20]))
finally:
    remove_root(root)
RUN.finish()
