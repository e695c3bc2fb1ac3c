"""Every executable answers --version and --help, and links only what it needs
(DESIGN.md §1): the store is the only one with libpq and has no BoringSSL;
the master has neither."""
import os
import subprocess
import sys

BUILD = os.environ["CERTWARD_BUILD_DIR"]


def needed(exe):
    out = subprocess.run(["readelf", "-d", os.path.join(BUILD, exe)], capture_output=True,
                         text=True, check=True).stdout
    return [l.split("[")[1].split("]")[0] for l in out.splitlines() if "(NEEDED)" in l]


def has(libs, prefix):
    return any(l.startswith(prefix) for l in libs)


failed = 0
rules = {
    # the master links BoringSSL's libcrypto (for the bootstrap admin key's
    # SHA-256 and randomness: docs/architecture.md), never its TLS library
    "certwardd": {"libpq": False, "libssl": False},
    "certward-store": {"libpq": True, "boringssl": False},
    "certward-api": {"libpq": False},
    "certward-signer": {"libpq": False},
    "certward-scheduler": {"libpq": False},
    "certward-deploy": {"libpq": False},
    "certward-notifier": {"libpq": False},
    "certward": {"libpq": False},
    "certward-agent": {"libpq": False},
}
passed = 0
for exe, want in rules.items():
    libs = needed(exe)
    ok = True
    got = {"libpq": has(libs, "libpq.so"),
           # BoringSSL's sonames are libcrypto.so.0/libssl.so.0; OpenSSL 3's are .so.3
           "boringssl": has(libs, "libcrypto.so.0") or has(libs, "libssl.so.0"),
           "libssl": has(libs, "libssl.so")}
    for k, v in want.items():
        if got[k] != v:
            print("FAIL %s: %s linked=%s, want %s (NEEDED: %s)" % (exe, k, got[k], v, ", ".join(libs)))
            ok = False
    passed += ok
    failed += not ok
for exe in rules:
    ok = True
    for flag, want in (("--version", exe + " "), ("--help", "usage: " + exe)):
        out = subprocess.run([os.path.join(BUILD, exe), flag], capture_output=True, text=True, timeout=30)
        if out.returncode != 0 or want not in out.stdout:
            print("FAIL %s %s: rc=%d stdout=%r stderr=%r" % (exe, flag, out.returncode, out.stdout, out.stderr))
            ok = False
    # a worker started by hand explains itself instead of misbehaving
    if exe.startswith("certward-") and exe != "certward-agent":
        out = subprocess.run([os.path.join(BUILD, exe)], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 or "must be started by certwardd" not in out.stderr:
            print("FAIL %s without certwardd: rc=%d stderr=%r" % (exe, out.returncode, out.stderr))
            ok = False
    passed += ok
    failed += not ok
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
