#!/bin/bash
# Benchmark, not a test: certificates issued per second through the API with
# the issuing CA's key on a SoftHSM2 token (signer.ca_backend: pkcs11)
# against the key in a file (ca_backend: file), in one run on one machine.
#
# Usage: bench/hsm.sh [CERTIFICATES]   (default 500; as root on Debian 12)
#
# What it does: what bench/lib.sh does (packages, users, release build,
# private PostgreSQL and certwardd on CPU 0, the clients on the others,
# everything removed on exit); through the API a team, an owner, a Local
# issuer, a renewal policy and a profile (bench_inventory); CERTIFICATES
# ECDSA P-256 CSRs made in advance (bench-N.example.com, one key). Then a
# SoftHSM2 token in the temporary directory (its files owned by
# certward-signer when run as root), its PIN file and configuration, and
# `certward ca init --backend pkcs11`: the CA key made on the token and a
# self-signed CA certificate signed there. Then BENCH_ROUNDS times, in
# turns, certwardd started (same database, same issuer) with
#
#   file     lib.sh's configuration: the signer's own CA, keys in key_dir
#   pkcs11   the same and ca_backend: pkcs11 with the token
#
# and CERTIFICATES POST /api/v1/certificates with a csr_pem, BENCH_CLIENTS
# clients at once, each on its own HTTPS/1.1 keep-alive connection (Python's
# http.client on the load CPUs); every answer must be a 201, a certificate
# of each run must verify against the CA certwardd publishes, and with
# pkcs11 certward_pkcs11_signatures_total must grow by CERTIFICATES or more.
# certward-p11's CPU counts as the server's.
#
# It prints (stdout) the machine, the median certificates per second of
# each backend with their range, and the ratio pkcs11/file. A failed setup,
# a failed request or a certificate that does not verify makes it exit 1.
#
# Environment (besides bench/lib.sh's BENCH_ROUNDS (3), BENCH_BUILD_DIR,
# BENCH_REV, BENCH_PIN):
#   BENCH_CLIENTS    concurrent clients (default 8)
#   BENCH_SESSIONS   signer.pkcs11_sessions (default 2)
set -eu

prog=hsm.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

n=${1:-500}
clients=${BENCH_CLIENTS:-8}
sessions=${BENCH_SESSIONS:-2}
for v in "$n" "$clients" "$sessions"; do
	case $v in '' | *[!0-9]* | 0*) die "CERTIFICATES, BENCH_CLIENTS and BENCH_SESSIONS must be positive integers, not '$v'" ;; esac
done
[ "$n" -le 100000 ] || die "CERTIFICATES above 10^5: $n"
[ "$sessions" -le 16 ] || die "BENCH_SESSIONS: 1 to 16"

bench_packages softhsm2-util:softhsm2 pkcs11-tool:opensc
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && { module=$m; break; }
done
[ -n "$module" ] || die "no SoftHSM2 module (libsofthsm2.so) found"

bench_build
[ -x "$build/certward-p11" ] || die "the build did not produce $build/certward-p11"
bench_cpus
bench_start_certward
bench_wait_ready
bench_inventory

# --- the CSRs, made in advance ------------------------------------------------------

say "making $n CSRs"
mkdir "$tmp/csr"
for i in $(seq 1 "$n"); do
	openssl req -new -key "$tmp/leaf.key" -out "$tmp/csr/$i.pem" -subj "/CN=bench-$i.example.com" \
		-addext "subjectAltName=DNS:bench-$i.example.com" 2>/dev/null || die "openssl req failed"
done

# $tmp/issue.py BASE KEY CSR_DIR N CLIENTS KIND TEAM OWNER ISSUER POLICY
# PROFILE: the N CSRs through POST /api/v1/certificates, CLIENTS at a time
# on keep-alive connections; prints "SECONDS OK" and the first
# certificate's id on a second line
cat >"$tmp/issue.py" <<'EOF'
import http.client, json, ssl, sys, threading, time
from urllib.parse import urlsplit
base, key, csr_dir, n, clients, kind, team, owner, issuer, policy, profile = sys.argv[1:]
n, clients = int(n), int(clients)
url = urlsplit(base)
bodies = []
for i in range(1, n + 1):
    bodies.append(json.dumps({"name": "bench-%s-%d" % (kind, i), "common_name": "bench-%d.example.com" % i,
        "owner_id": owner, "team_id": team, "issuer_id": issuer, "renewal_policy_id": policy,
        "certificate_profile_id": profile, "csr_pem": open("%s/%d.pem" % (csr_dir, i)).read()}).encode())
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
ctx = ssl._create_unverified_context()  # loopback, the bench's own server
lock = threading.Lock()
state = {"next": 0, "ok": 0, "bad": [], "first": None}

def client():
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=60)
    while True:
        with lock:
            i = state["next"]
            state["next"] += 1
        if i >= n:
            break
        conn.request("POST", "/api/v1/certificates", body=bodies[i], headers=headers)
        r = conn.getresponse()
        body = r.read()
        with lock:
            if r.status == 201:
                state["ok"] += 1
                if i == 0:
                    state["first"] = json.loads(body)["id"]
            elif len(state["bad"]) < 5:
                state["bad"].append("%d %s" % (r.status, body[:300].decode(errors="replace")))
    conn.close()

threads = [threading.Thread(target=client) for _ in range(clients)]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.monotonic() - t0
for b in state["bad"]:
    print("answer: " + b, file=sys.stderr)
print("%.3f %d" % (secs, state["ok"]))
print(state["first"] or "")
EOF

# metric NAME: its value summed over the workers
metric() {
	curl -ksf "$base/metrics" | awk -v name="$1" '$1 ~ "^" name "({|$)" { s += $NF } END { printf "%d\n", s }'
}

# verify_first ID: the version's certificate verifies against the CA that
# the running certwardd publishes
verify_first() {
	curl -ksf -H "Authorization: Bearer $admin" "$base/api/v1/certificates/$1/versions" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----")' \
			>"$tmp/first.pem" || die "no version for certificate $1"
	openssl verify -CAfile "$tmp/state/tls/ca-root.crt" -untrusted "$tmp/state/tls/ca-issuing.crt" \
		"$tmp/first.pem" >&2 || die "certificate $1 does not verify against the published CA"
}

# start_certward CONFIG: certwardd with CONFIG, until /ready answers (with
# ca_backend: pkcs11, /ready includes the token's CA)
start_certward() {
	"${pin_server[@]}" "$build/certwardd" -c "$1" </dev/null >"$tmp/certwardd.out" 2>&1 &
	cw_pid=$!
	if ! wait_health certward "$cw_pid" "$cw_url"; then
		log_tail "$tmp/certwardd.out" "$tmp"/log/*.log
		die "certward does not answer on $cw_url"
	fi
	bench_wait_ready
}

# measure KIND ROUND: the n issuances; appends "KIND RATE" to $tmp/results
measure() {
	local secs ok id rate sigs=0 sigs_before=0 p11_pid="" signer_pid
	mode=$1
	signer_pid=$(pgrep -P "$cw_pid" -x certward-signer) || die "no certward-signer under certwardd"
	if [ "$1" = pkcs11 ]; then
		# certward-p11 is the signer's child: its CPU counts as the server's
		p11_pid=$(pgrep -P "$signer_pid" -x certward-p11) || die "no certward-p11 under the signer"
		sigs_before=$(metric certward_pkcs11_signatures_total)
	fi
	say "$1, round $2: $n certificates, $clients clients"
	run_load "certward ($1)" "$cw_pid $pg_pid $p11_pid" "$tmp/issue.out" python3 "$tmp/issue.py" "$base" \
		"$admin" "$tmp/csr" "$n" "$clients" "$1-$2" "$team" "$owner" "$issuer" "$policy" "$profile"
	read -r secs ok <<<"$(sed -n 1p "$tmp/issue.out")"
	id=$(sed -n 2p "$tmp/issue.out")
	[ "${ok:-0}" -eq "$n" ] || { cat "$tmp/issue.out" >&2; die "$1: ${ok:-0} of $n issuances answered 201"; }
	if [ "$1" = pkcs11 ]; then
		sigs=$(($(metric certward_pkcs11_signatures_total) - sigs_before))
		[ "$sigs" -ge "$n" ] || die "the token made $sigs signatures for $n certificates"
	fi
	verify_first "$id"
	rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	say "  $n in $secs s: $rate certificates/s${p11_pid:+ ($sigs token signatures)}"
	echo "$1 $rate" >>"$tmp/results"
}

say "stopping certwardd: the inventory is in place"
stop_server certwardd "$cw_pid"
cw_pid=""

# --- a SoftHSM2 token --------------------------------------------------------------------

hsm=$tmp/hsm
signer_user=""
[ "$as_root" -eq 0 ] || signer_user=certward-signer
install -d -m 0700 ${signer_user:+-o "$signer_user"} "$hsm" "$hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" >"$hsm/softhsm2.conf"
chmod 0644 "$hsm/softhsm2.conf"
(umask 077 && printf '12345678\n' >"$hsm/pin")
as_signer() {
	if [ -n "$signer_user" ]; then runuser -u "$signer_user" -- "$@"; else "$@"; fi
}
as_signer env SOFTHSM2_CONF="$hsm/softhsm2.conf" softhsm2-util --init-token --free --label certward-bench \
	--so-pin 87654321 --pin 12345678 >&2 || die "softhsm2-util --init-token failed"
p11_config=$tmp/certward-pkcs11.yml
{
	cat "$tmp/certward.yml"
	# the signer section is lib.sh's last
	echo "  ca_cert_file: \"$hsm/ca-chain.pem\""
	echo "  pkcs11_module: \"$module\""
	echo "  pkcs11_token_label: certward-bench"
	echo "  pkcs11_pin_file: \"$hsm/pin\""
	echo "  pkcs11_sessions: $sessions"
	echo "  pkcs11_env: \"SOFTHSM2_CONF=$hsm/softhsm2.conf\""
} >"$p11_config"
say "certward ca init --backend pkcs11 (the key made on the token)"
"$build/certward" ca init -c "$p11_config" --backend pkcs11 --subject "CN=certward bench HSM CA" >&2 ||
	die "certward ca init --backend pkcs11 failed"
[ -z "$signer_user" ] || chown -R "$signer_user:" "$hsm"
echo "  ca_backend: pkcs11" >>"$p11_config"
"$build/certwardd" -c "$p11_config" --check-config >&2 || die "$p11_config is not valid"

# --- the runs: file, pkcs11, file, pkcs11, ... ---------------------------------------------

disturbed=""
: >"$tmp/results"
for r in $(seq 1 "$rounds"); do
	for kind in file pkcs11; do
		if [ "$kind" = file ]; then config=$tmp/certward.yml; else config=$p11_config; fi
		say "starting certwardd with ca_backend: $kind"
		start_certward "$config"
		if [ "$kind" = pkcs11 ]; then
			grep -q 'issuing CA ready' "$tmp/log/signer.log" ||
				{ log_tail "$tmp/log/signer.log"; die "the token's CA is not ready"; }
		fi
		[ "$r" -gt 1 ] || show_processes certwardd "$cw_pid"
		measure "$kind" "$r"
		stop_server certwardd "$cw_pid"
		cw_pid=""
	done
done

# --- results ---------------------------------------------------------------------------------

# stats KIND: "median min max" of KIND's rates
stats() {
	awk -v k="$1" '$1 == k { v[++n] = $2 }
		END {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			printf "%s %s %s\n", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[1], v[n]
		}' "$tmp/results"
}
read -r file_med file_min file_max <<<"$(stats file)"
read -r p11_med p11_min p11_max <<<"$(stats pkcs11)"

print_machine "python3 $(python3 -c 'import platform; print(platform.python_version())') (http.client, $clients threads), SoftHSM2 $(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null || echo '?')"
echo "issuance through POST /api/v1/certificates: $n ECDSA P-256 CSRs a run, $clients clients, CA key ECDSA P-256;"
echo "certificates/s, median of $rounds runs each (range), the backends in turns:"
printf '  %-32s %8.1f (%s-%s)\n' "ca_backend: file" "$file_med" "$file_min" "$file_max"
printf '  %-32s %8.1f (%s-%s), %d sessions\n' "ca_backend: pkcs11 (SoftHSM2)" "$p11_med" "$p11_min" "$p11_max" \
	"$sessions"
echo "  ratio pkcs11/file: $(awk -v a="$p11_med" -v b="$file_med" 'BEGIN { printf "%.2f", a / b }')"
[ -z "$disturbed" ] || echo "DISTURBED runs (something else used the CPUs):$disturbed"
