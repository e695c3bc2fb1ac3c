#!/bin/bash
# Benchmark, not a test: certificates issued per second (ECDSA P-256 CSRs).
#
# Usage: bench/issue.sh      (from any directory; as root on Debian 12)
#
#   certward   POST /api/v1/certificates with a csr_pem (HTTPS/1.1 keep-alive,
#              h2load): checked, signed by the signer, its ledger line
#              fsynced, the record and its version stored; at
#              BENCH_CONNECTIONS and at 4 connections
#   signer     the signer alone over IPC (bench/signer_call -n: BENCH_IPC_N
#              CSRs in flight at once), its ledger fsynced by group commit
#   openssl    `openssl x509 -req` signing the same CSR, one process per
#              certificate (BENCH_OPENSSL_N of them, on the servers' CPU)
#   cfssl      `cfssl serve` (Debian's golang-cfssl) signing it through
#              POST /api/v1/cfssl/sign, plain HTTP keep-alive, h2load at
#              BENCH_CONNECTIONS
#
# It prints (stdout) the machine, then per contender the certificates per
# second (median of BENCH_ROUNDS runs), and the ratios of certward's
# figures to the peers', and the goal: end to end at least 1,500/s, and
# ahead of cfssl. Missed goals do not change the exit status (0); a failed
# setup, a failed request or a certificate that does not verify does.
#
# What it does: what bench/lib.sh does (packages, users, release build in
# build-bench/, private PostgreSQL and certwardd on CPU 0, the load generator
# on the others, everything removed on exit); sets up a team, an owner, a
# Local issuer, a renewal policy and a profile through the API with the
# first admin key; checks that an issued certificate verifies with openssl
# against the published CA; then measures.
#
# Environment (besides bench/lib.sh's BENCH_SECONDS, BENCH_CONNECTIONS,
# BENCH_ROUNDS, BENCH_BUILD_DIR, BENCH_REV, BENCH_PIN):
#   BENCH_IPC_N       CSRs the signer alone gets in flight (default 2000)
#   BENCH_OPENSSL_N   openssl processes per run (default 300)
set -eu

prog=issue.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ipc_n=${BENCH_IPC_N:-2000}
openssl_n=${BENCH_OPENSSL_N:-300}
for v in "$ipc_n" "$openssl_n"; do
	case $v in '' | *[!0-9]* | 0) die "BENCH_IPC_N and BENCH_OPENSSL_N must be positive integers" ;; esac
done
goal_rps=1500

bench_packages h2load:nghttp2-client cfssl:golang-cfssl
bench_build
bench_cpus "cfssl"
bench_start_certward
[ -x "$build/bench/signer_call" ] || die "the build did not produce $build/bench/signer_call"

bench_wait_ready
# --- the inventory, through the API ---------------------------------------------

bench_inventory
openssl req -in "$tmp/leaf.csr" -outform DER -out "$tmp/leaf.der"
python3 - "$tmp" "$team" "$owner" "$issuer" "$policy" "$profile" <<'EOF'
import json, sys
tmp, team, owner, issuer, policy, profile = sys.argv[1:]
csr = open(tmp + "/leaf.csr").read()
json.dump({"name": "bench", "common_name": "bench.example.com", "owner_id": owner, "team_id": team,
           "issuer_id": issuer, "renewal_policy_id": policy, "certificate_profile_id": profile,
           "csr_pem": csr}, open(tmp + "/issue.json", "w"))
json.dump({"certificate_request": csr}, open(tmp + "/cfssl.json", "w"))
EOF
curl -ksf -H "Authorization: Bearer $admin" "$base/api/v1/profiles/$profile" >"$tmp/profile.json" ||
	die "cannot read the profile back"

# one certificate first: it must verify against the published CA
id=$(bench_post /api/v1/certificates "@$tmp/issue.json")
curl -ksf -H "Authorization: Bearer $admin" "$base/api/v1/certificates/$id/versions" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----")' \
		>"$tmp/first.pem" || die "no version for the first certificate"
openssl verify -CAfile "$tmp/state/tls/ca-root.crt" -untrusted "$tmp/state/tls/ca-issuing.crt" "$tmp/first.pem" >&2 ||
	die "the first certificate does not verify"

# --- the peers' CA ------------------------------------------------------------------

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/peer-ca.key" \
	-out "$tmp/peer-ca.pem" -subj "/CN=bench peer CA" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.example.com\n' \
	>"$tmp/leaf.ext"

cfssl_pid=""
bench_stop_more() {
	[ -z "$cfssl_pid" ] || stop_server cfssl "$cfssl_pid"
}
cfssl_port=$(free_port)
"${pin_server[@]}" cfssl serve -address 127.0.0.1 -port "$cfssl_port" -ca "$tmp/peer-ca.pem" \
	-ca-key "$tmp/peer-ca.key" >"$tmp/cfssl.log" 2>&1 &
cfssl_pid=$!
for i in $(seq 1 60); do
	curl -sf -o /dev/null -d @"$tmp/cfssl.json" "http://127.0.0.1:$cfssl_port/api/v1/cfssl/sign" && break
	[ "$i" -lt 60 ] || { log_tail "$tmp/cfssl.log"; die "cfssl serve does not sign"; }
	sleep 0.5
done

# --- measurements ---------------------------------------------------------------------

disturbed=""
: >"$tmp/results"
# h2load_rate KIND OUT: requests/s of a run that must have had no failures
h2load_rate() {
	local line req bad
	line=$(grep '^finished in' "$2") || { cat "$2" >&2; die "no result from h2load ($1)"; }
	req=$(grep '^requests:' "$2")
	bad=$(echo "$req" | awk '{ print $10 + $12 + $14 }')
	[ "$bad" -eq 0 ] || { cat "$2" >&2; die "$1: $req"; }
	echo "$line" | sed 's/.*, \([0-9.]*\) req\/s.*/\1/'
}

measure_certward() { # CONNECTIONS
	local before after rps
	mode="certward/$1"
	before=$(contrib/pg.sh psql "$tmp/pg" -At -c 'SELECT count(*) FROM certificate_versions')
	say "certward, $1 connections: POST /api/v1/certificates with a csr_pem"
	run_load certward "$cw_pid $pg_pid" "$tmp/h2load.out" h2load --h1 -t "$((load_ncpu < $1 ? load_ncpu : $1))" \
		-c "$1" -D "$seconds" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d "$tmp/issue.json" "$base/api/v1/certificates"
	rps=$(h2load_rate "certward" "$tmp/h2load.out")
	after=$(contrib/pg.sh psql "$tmp/pg" -At -c 'SELECT count(*) FROM certificate_versions')
	say "  $rps certificates/s; $((after - before)) versions stored"
	echo "certward$1 $rps" >>"$tmp/results"
}

measure_signer() {
	local out n s rps
	mode="signer"
	mkdir -p "$tmp/sc-keys" "$tmp/sc-certs"
	chmod 700 "$tmp/sc-keys"
	say "the signer alone: $ipc_n CSRs in flight over IPC"
	out=$("${pin_server[@]}" "$build/bench/signer_call" -n "$ipc_n" "$build/certward-signer" "$tmp/sc-keys" \
		"$tmp/sc-certs" bench "0" "$tmp/profile.json" "$tmp/leaf.der" 2>"$tmp/signer_call.log") ||
		{ log_tail "$tmp/signer_call.log"; die "signer_call failed"; }
	read -r _ n s < <(echo "$out" | grep '^timed')
	rps=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')
	say "  $rps certificates/s ($n in $s s)"
	rm -rf "$tmp/sc-keys" "$tmp/sc-certs"
	echo "signer $rps" >>"$tmp/results"
}

measure_openssl() {
	local t0 t1 rps
	mode="openssl"
	say "openssl x509 -req, $openssl_n processes one after the other"
	t0=$(date +%s.%N)
	for _ in $(seq 1 "$openssl_n"); do
		"${pin_server[@]}" openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/peer-ca.pem" -CAkey "$tmp/peer-ca.key" \
			-CAserial "$tmp/peer-ca.srl" -CAcreateserial -days 90 -extfile "$tmp/leaf.ext" -out "$tmp/o.pem" 2>/dev/null ||
			die "openssl x509 -req failed"
	done
	t1=$(date +%s.%N)
	rps=$(awk -v n="$openssl_n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
	say "  $rps certificates/s"
	echo "openssl $rps" >>"$tmp/results"
}

measure_cfssl() {
	local rps
	mode="cfssl"
	say "cfssl serve, $conns connections: POST /api/v1/cfssl/sign"
	run_load cfssl "$cfssl_pid" "$tmp/h2load.out" h2load --h1 -t "$h2_threads" -c "$conns" -D "$seconds" \
		-H 'Content-Type: application/json' -d "$tmp/cfssl.json" "http://127.0.0.1:$cfssl_port/api/v1/cfssl/sign"
	rps=$(h2load_rate "cfssl" "$tmp/h2load.out")
	say "  $rps certificates/s"
	echo "cfssl $rps" >>"$tmp/results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
	say "round $r of $rounds"
	measure_certward "$conns"
	measure_certward 4
	measure_signer
	measure_cfssl
	measure_openssl
done

# --- report ---------------------------------------------------------------------------

print_machine "h2load $(h2load --version 2>&1 | head -n 1 | awk '{ print $NF }'), $(openssl version | cut -d' ' -f1-2), cfssl $(dpkg-query -W -f='${Version}' golang-cfssl)"
echo "load:     $seconds s a run (openssl: $openssl_n processes), $rounds rounds, medians; load average before: $load_before"
echo "CSR:      ECDSA P-256, one DNS name; profile: ECDSA 256+, serverAuth, *.example.com, 90 days"
echo
awk -v rounds="$rounds" -v goal="$goal_rps" -v conns="$conns" "$awk_median"'
	{ n[$1]++; v[$1, n[$1]] = $2 }
	END {
		split("certward" conns " certward4 signer cfssl openssl", order, " ")
		label["certward" conns] = "certward end to end, " conns " connections"
		label["certward4"] = "certward end to end, 4 connections"
		label["signer"] = "certward signer alone (IPC, pipelined)"
		label["cfssl"] = "cfssl serve, " conns " connections"
		label["openssl"] = "openssl x509 -req, a process each"
		printf "%-42s %12s\n", "contender", "certs/s"
		for (i = 1; i <= 5; i++) {
			k = order[i]
			m[k] = median(v, k, n[k])
			printf "%-42s %12.1f\n", label[k], m[k]
		}
		e2e = m["certward" conns]
		printf "\nratios: certward end to end / cfssl %.2f, / openssl %.2f; signer alone / cfssl %.2f\n",
			e2e / m["cfssl"], e2e / m["openssl"], m["signer"] / m["cfssl"]
		printf "goal: end to end at least %d/s: %s; ahead of cfssl: %s\n", goal,
			(e2e >= goal ? "yes" : "NO"), (e2e > m["cfssl"] ? "yes" : "NO")
	}' "$tmp/results"
[ -z "$disturbed" ] || echo "DISTURBED: other activity on the machine during:$disturbed (see the CPU lines on stderr)"
