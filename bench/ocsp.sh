#!/bin/bash
# Benchmark, not a test: OCSP responses per second, one ECDSA P-256
# certificate, SHA-1 CertIDs as `openssl ocsp` makes them.
#
# Usage: bench/ocsp.sh      (from any directory; as root on Debian 12)
#
#   certward cached     POST /.well-known/pki/ocsp/{issuer_id} of one request
#                       without a nonce (h2load --h1, keep-alive,
#                       BENCH_CONNECTIONS): the api answers from its cache;
#                       over the plain-HTTP listener (api.plain_listen, what
#                       the peers speak) and over HTTPS
#   certward uncached   the same certificate, requests with a nonce: the api
#                       never caches nor looks them up, so every one costs a
#                       status read in PostgreSQL and a signature by the
#                       signer (its ledger fsynced by group commit); plain
#                       HTTP, three ways: POST of one nonce-bearing request
#                       (h2load -d sends one body), GET of BENCH_OCSP_NONCES
#                       distinct ones (h2load -i, RFC 6960 A.1 URLs; every
#                       connection walks the same list), and POST with hey,
#                       the tool the openssl peer needs
#   openssl             `openssl ocsp -index` as responder (-multi 1: one
#                       CPU), POST of the no-nonce request; it signs every
#                       response and closes the connection after each
#                       (HTTP/1.0), which h2load does not survive (it hangs
#                       after its run), so hey drives it
#   cfssl               `cfssl ocspserve` (Debian's golang-cfssl) serving a
#                       response signed beforehand by `cfssl ocspsign`, POST
#                       of the no-nonce request (h2load, keep-alive)
#
# The peers answer for the very certificate certward issued, under
# certward's issuing CA (the requests are byte for byte the same), but sign
# with their own responder (an ECDSA P-256 key and self-signed certificate
# made here: the CA's key stays in the signer), which the verification
# trusts with -VAfile. Responses are valid 4 h (certward's
# signer.ocsp_validity; openssl -nmin 240, cfssl -interval 4h).
#
# Before measuring, one answer of each contender (certward: plain and HTTPS,
# cached, nonce POST and nonce GET) must pass `openssl ocsp -respin -reqin
# -CAfile -resp_text`: "Response verify OK", "Cert Status: good", no
# warning (the nonce echoed). During the runs every answer must be as large
# as the verified one (mean body size within 3 bytes: an OCSP error answer,
# e.g. tryLater, is 5 bytes with HTTP status 200), and certward's /metrics
# must show the cached runs answered from the cache and the uncached ones
# signed, none of them an error. Otherwise the script fails.
#
# It prints (stdout) the machine, then per contender the median of
# BENCH_ROUNDS runs of responses/s, p50 and p99 latency (h2load
# --log-file; hey's own percentiles) and the range of responses/s, the
# ratios of certward cached (plain, and HTTPS) to each peer and of certward
# uncached (POST, hey) to openssl, which also signs each response, and the
# goal: cached (plain HTTP POST) at least 20,000/s. A missed goal does not
# change the exit status (0); a failed setup, request or verification does.
#
# What it does: what bench/lib.sh does (packages, users, release build in
# build-bench/, private PostgreSQL and certwardd on CPU 0, the load
# generator on the others, everything removed on exit), then restarts
# certwardd with api.plain_listen added to lib.sh's configuration (lib.sh
# has no knob for it); sets up a team, an owner, a Local issuer, a renewal
# policy and a profile through the API like bench/issue.sh and issues one
# certificate; starts openssl ocsp and cfssl ocspserve on CPU 0 (openssl
# -port listens on every address, 127.0.0.1 is what is used); then
# measures, the contenders in turns each round.
#
# Environment (besides bench/lib.sh's BENCH_SECONDS, BENCH_CONNECTIONS,
# BENCH_ROUNDS, BENCH_BUILD_DIR, BENCH_REV, BENCH_PIN):
#   BENCH_OCSP_NONCES   distinct nonce-bearing requests for the GET run
#                       (default 2000)
set -eu

prog=ocsp.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

nonces=${BENCH_OCSP_NONCES:-2000}
case $nonces in '' | *[!0-9]* | 0) die "BENCH_OCSP_NONCES must be a positive integer" ;; esac
goal_rps=20000

bench_packages h2load:nghttp2-client hey:hey cfssl:golang-cfssl
bench_build
bench_cpus "openssl ocsp, cfssl"
bench_start_certward
bench_wait_ready

# lib.sh's certwardd has no plain-HTTP listener: the same configuration with
# api.plain_listen, certwardd started again the way lib.sh starts it. The
# load comes from one address: api.ocsp_signed_per_client 0 lets every
# uncached request be signed (as the peers sign them)
plain_port=$(free_port)
stop_server certwardd "$cw_pid"
cw_pid=""
sed -i "s/^  processes: 1\$/&\n  plain_listen: \"127.0.0.1:$plain_port\"\n  ocsp_signed_per_client: 0/" "$tmp/certward.yml"
grep -q "^  plain_listen: \"127.0.0.1:$plain_port\"\$" "$tmp/certward.yml" || die "cannot add api.plain_listen to $tmp/certward.yml"
"$build/certwardd" -c "$tmp/certward.yml" --check-config >&2 || die "$tmp/certward.yml is not valid"
say "starting certwardd again with a plain-HTTP listener on 127.0.0.1:$plain_port"
"${pin_server[@]}" "$build/certwardd" -c "$tmp/certward.yml" </dev/null >>"$tmp/certwardd.out" 2>&1 &
cw_pid=$!
plain=http://127.0.0.1:$plain_port
if ! wait_health certward "$cw_pid" "$cw_url" || ! wait_health "certward (plain HTTP)" "$cw_pid" "$plain/health"; then
	log_tail "$tmp/certwardd.out" "$tmp"/log/*.log
	die "certward does not answer on $cw_url and $plain/health"
fi
bench_wait_ready
show_processes certwardd "$cw_pid"

# --- the inventory and one certificate, through the API --------------------------

bench_inventory
python3 - "$tmp" "$team" "$owner" "$issuer" "$policy" "$profile" <<'EOF'
import json, sys
tmp, team, owner, issuer, policy, profile = sys.argv[1:]
json.dump({"name": "bench", "common_name": "bench.example.com", "owner_id": owner, "team_id": team,
           "issuer_id": issuer, "renewal_policy_id": policy, "certificate_profile_id": profile,
           "csr_pem": open(tmp + "/leaf.csr").read()}, open(tmp + "/issue.json", "w"))
EOF
id=$(bench_post /api/v1/certificates "@$tmp/issue.json")
curl -ksf -H "Authorization: Bearer $admin" "$base/api/v1/certificates/$id/versions" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----")' \
		>"$tmp/leaf.pem" || die "no version for the certificate"
ca=$tmp/state/tls/ca-issuing.crt
cat "$tmp/state/tls/ca-root.crt" "$ca" >"$tmp/ca-bundle.pem"
openssl verify -CAfile "$tmp/state/tls/ca-root.crt" -untrusted "$ca" "$tmp/leaf.pem" >&2 ||
	die "the issued certificate does not verify"
serial=$(openssl x509 -in "$tmp/leaf.pem" -noout -serial | cut -d= -f2)
say "issuer $issuer, certificate $id, serial $serial"

# --- the requests ---------------------------------------------------------------------

openssl ocsp -issuer "$ca" -cert "$tmp/leaf.pem" -no_nonce -reqout "$tmp/req.der" >/dev/null ||
	die "openssl ocsp cannot make the request"
openssl ocsp -issuer "$ca" -cert "$tmp/leaf.pem" -nonce -reqout "$tmp/nonce.der" >/dev/null ||
	die "openssl ocsp cannot make the nonce request"
# the GET run's distinct requests: openssl's nonce request with other
# random 16-byte nonces in the same place (what openssl -nonce would make)
python3 - "$tmp/nonce.der" "$tmp/nonce-get" "$nonces" "$plain/.well-known/pki/ocsp/$issuer" <<'EOF' || die "cannot make the GET requests"
import base64, os, sys, urllib.parse
src, prefix, n, url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
der = open(src, "rb").read()
mark = bytes.fromhex("06092b0601050507300102" "04120410")  # id-pkix-ocsp-nonce, OCTET STRING { OCTET STRING (16) }
at = der.find(mark)
if at < 0 or der.find(mark, at + 1) >= 0 or len(der) < at + len(mark) + 16:
    sys.exit("no single 16-byte nonce in " + src)
at += len(mark)
with open(prefix + ".uris", "w") as f:
    for i in range(n):
        d = der[:at] + os.urandom(16) + der[at + 16:]
        if i == 0:
            open(prefix + "-0.der", "wb").write(d)
        f.write(url + "/" + urllib.parse.quote(base64.b64encode(d).decode(), safe="") + "\n")
EOF
say "requests: $(stat -c %s "$tmp/req.der") bytes without a nonce, $(stat -c %s "$tmp/nonce.der") with one; $nonces distinct GET URLs of $(head -n 1 "$tmp/nonce-get.uris" | wc -c) bytes"

# check NAME REQUEST RESPONSE [openssl ocsp options]: the response must
# verify and say good; prints its size
check() {
	local name=$1 req=$2 resp=$3 out
	shift 3
	[ -s "$resp" ] || die "$name: empty answer"
	out=$(openssl ocsp -respin "$resp" -reqin "$req" -CAfile "$tmp/ca-bundle.pem" "$@" -resp_text 2>&1) || true
	if ! grep -q '^Response verify OK' <<<"$out" || ! grep -q 'Cert Status: good' <<<"$out" ||
		grep -Eqi 'warning|error|failure' <<<"$out"; then
		echo "$out" >&2
		die "$name: the answer does not verify as good (openssl ocsp -respin $resp -reqin $req -CAfile $tmp/ca-bundle.pem $* -resp_text)"
	fi
	say "$name: verify OK, good, $(stat -c %s "$resp") bytes; $(grep -m1 'Public Key Algorithm' <<<"$out" | sed 's/^ *//') $(grep -m1 'NIST CURVE' <<<"$out" | sed 's/^ *//')"
	stat -c %s "$resp"
}
ocsp_post() { # URL BODY OUT
	curl -ksf -H 'Content-Type: application/ocsp-request' --data-binary "@$2" -o "$3" "$1" || die "POST $1 failed"
}

ocsp_post "$plain/.well-known/pki/ocsp/$issuer" "$tmp/req.der" "$tmp/cw.resp"
size_cw=$(check "certward, plain HTTP POST" "$tmp/req.der" "$tmp/cw.resp")
ocsp_post "$base/.well-known/pki/ocsp/$issuer" "$tmp/req.der" "$tmp/cw-https.resp"
check "certward, HTTPS POST" "$tmp/req.der" "$tmp/cw-https.resp" >/dev/null
cmp -s "$tmp/cw.resp" "$tmp/cw-https.resp" || die "certward's second no-nonce answer is not the first one, from its cache"
ocsp_post "$plain/.well-known/pki/ocsp/$issuer" "$tmp/nonce.der" "$tmp/cw-nonce.resp"
size_cw_nonce=$(check "certward, plain HTTP POST with a nonce" "$tmp/nonce.der" "$tmp/cw-nonce.resp")
curl -sf -o "$tmp/cw-get.resp" "$(head -n 1 "$tmp/nonce-get.uris")" || die "GET of an OCSP request failed"
check "certward, plain HTTP GET with a nonce" "$tmp/nonce-get-0.der" "$tmp/cw-get.resp" >/dev/null

# --- the peers --------------------------------------------------------------------------

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/peer-responder.key" \
	-out "$tmp/peer-responder.pem" -subj "/CN=bench peer OCSP responder" -days 30 \
	-addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=OCSPSigning 2>/dev/null ||
	die "openssl req cannot make the peers' responder"
printf 'V\t%s\t\t%s\tunknown\t%s\n' \
	"$(date -u -d "$(openssl x509 -in "$tmp/leaf.pem" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)" "$serial" \
	"$(openssl x509 -in "$tmp/leaf.pem" -noout -subject -nameopt compat | sed 's/^subject=//')" >"$tmp/index.txt"

openssl_pid=""
cfssl_pid=""
bench_stop_more() {
	# openssl's -multi parent waits for its child, which TERM does not stop
	# at once: the child first
	[ -z "$openssl_pid" ] || { pkill -TERM -P "$openssl_pid" || true; stop_server "openssl ocsp" "$openssl_pid"; }
	[ -z "$cfssl_pid" ] || stop_server cfssl "$cfssl_pid"
}
openssl_port=$(free_port)
"${pin_server[@]}" openssl ocsp -index "$tmp/index.txt" -port "$openssl_port" -rsigner "$tmp/peer-responder.pem" \
	-rkey "$tmp/peer-responder.key" -CA "$ca" -nmin 240 -ignore_err -multi 1 -timeout 10 >"$tmp/openssl.log" 2>&1 &
openssl_pid=$!

python3 -c 'import json, sys; print(json.load(sys.stdin)["ocspResponse"])' >"$tmp/cfssl.responses" < <(
	cfssl ocspsign -ca "$ca" -responder "$tmp/peer-responder.pem" -responder-key "$tmp/peer-responder.key" \
		-cert "$tmp/leaf.pem" -status good -interval 4h 2>"$tmp/cfssl-sign.log") ||
	{ log_tail "$tmp/cfssl-sign.log"; die "cfssl ocspsign failed"; }
# wait_answer NAME URL OUT LOG: POSTs req.der until the peer answers into OUT
wait_answer() {
	for i in $(seq 1 60); do
		curl -sf -o "$3" -H 'Content-Type: application/ocsp-request' --data-binary "@$tmp/req.der" "$2" && return 0
		sleep 0.5
	done
	log_tail "$4"
	die "$1 does not answer"
}

cfssl_port=$(free_port)
"${pin_server[@]}" cfssl ocspserve -address 127.0.0.1 -port "$cfssl_port" -responses "$tmp/cfssl.responses" \
	-loglevel 3 >"$tmp/cfssl.log" 2>&1 &
cfssl_pid=$!

wait_answer "openssl ocsp -index" "http://127.0.0.1:$openssl_port/" "$tmp/openssl.resp" "$tmp/openssl.log"
size_openssl=$(check "openssl ocsp -index" "$tmp/req.der" "$tmp/openssl.resp" -VAfile "$tmp/peer-responder.pem")
wait_answer "cfssl ocspserve" "http://127.0.0.1:$cfssl_port/" "$tmp/cfssl.resp" "$tmp/cfssl.log"
size_cfssl=$(check "cfssl ocspserve" "$tmp/req.der" "$tmp/cfssl.resp" -VAfile "$tmp/peer-responder.pem")
show_processes "openssl ocsp" "$openssl_pid"
show_processes cfssl "$cfssl_pid"

# --- measurements -------------------------------------------------------------------------

: >"$tmp/results"
limit=$((seconds + 60)) # a hung load generator is a failed run

# sizes_ok NAME MEAN EXPECTED: every answer as large as the verified one
sizes_ok() {
	awk -v m="$2" -v e="$3" 'BEGIN { exit !(m - e <= 3 && e - m <= 3) }' ||
		die "$1: answers of $2 bytes on average, the verified one has $3: some were not OCSP responses like it"
}

# ocsp_delta RESULT: how much ocsp_requests_total{result="RESULT"} grew
# between $tmp/metrics.before and $tmp/metrics.after (every api process)
ocsp_delta() {
	awk -v r="result=\"$1\"" '$1 ~ /^certward_ocsp_requests_total[{]/ && index($1, r) { s[FILENAME] += $NF }
		END { printf "%d\n", s[ARGV[2]] - s[ARGV[1]] }' "$tmp/metrics.before" "$tmp/metrics.after"
}

# h2load_run KEY NAME PIDS EXPECTED-SIZE ARGS...: h2load --h1 at
# BENCH_CONNECTIONS with a latency log; appends KEY rps p50 p99 to results
# and sets answered
h2load_run() {
	local key=$1 name=$2 pids=$3 size=$4 out=$tmp/h2load.out log=$tmp/h2load.log req bad rps data lat
	shift 4
	mode=$key
	rm -f "$log"
	run_load "$name" "$pids" "$out" timeout "$limit" h2load --h1 -t "$h2_threads" -c "$conns" -D "$seconds" \
		--log-file="$log" "$@"
	grep -q '^Application protocol: http/1.1' "$out" || { cat "$out" >&2; die "$key: h2load did not speak HTTP/1.1"; }
	rps=$(grep '^finished in' "$out" | sed 's/.*, \([0-9.]*\) req\/s.*/\1/')
	[ -n "$rps" ] || { cat "$out" >&2; die "$key: no result from h2load"; }
	req=$(grep '^requests:' "$out")
	bad=$(echo "$req" | awk '{ print $10 + $12 + $14 }')
	[ "$bad" -eq 0 ] || { cat "$out" >&2; die "$key: $req"; }
	answered=$(echo "$req" | awk '{ print $8 }')
	data=$(grep '^traffic:' "$out" | sed 's/.*(\([0-9]*\)) data.*/\1/')
	sizes_ok "$key" "$(awk -v d="$data" -v n="$answered" 'BEGIN { printf "%.1f", d / n }')" "$size"
	lat=$(cut -f 3 "$log" | sort -n | awk '{ v[NR] = $1 }
		END { printf "%.2f %.2f\n", v[int(NR * 0.50 + 0.999999)] / 1000, v[int(NR * 0.99 + 0.999999)] / 1000 }')
	say "  $rps responses/s, p50/p99 $lat ms; $req"
	echo "$key $rps $lat" >>"$tmp/results"
}

# hey_run KEY NAME PIDS EXPECTED-SIZE URL BODY: hey POST at BENCH_CONNECTIONS
hey_run() {
	local key=$1 name=$2 pids=$3 size=$4 out=$tmp/hey.out rps p50 p99 n
	mode=$key
	run_load "$name" "$pids" "$out" timeout "$limit" hey -z "${seconds}s" -c "$conns" -m POST \
		-T application/ocsp-request -D "$6" "$5"
	rps=$(awk '/Requests\/sec:/ { print $2 }' "$out")
	p50=$(awk '$1 == "50%" { printf "%.2f", $3 * 1000 }' "$out")
	p99=$(awk '$1 == "99%" { printf "%.2f", $3 * 1000 }' "$out")
	answered=$(awk '/^  \[200\]/ { print $2 }' "$out")
	n=$(sed -n '/^Status code distribution:/,$p' "$out" | grep -c '^  \[' || true)
	if [ -z "$rps" ] || [ -z "$answered" ] || [ "$n" -ne 1 ] || grep -q '^Error distribution:' "$out"; then
		cat "$out" >&2
		die "$key: hey had errors or answers other than 200"
	fi
	sizes_ok "$key" "$(awk '/Size\/request:/ { print $2 }' "$out")" "$size"
	say "  $rps responses/s, p50/p99 $p50 $p99 ms; $answered answers"
	echo "$key $rps $p50 $p99" >>"$tmp/results"
}

# certward KEY TOOL SIZE CACHED ARGS...: a run against certward, checked
# against its /metrics
certward() {
	local key=$1 tool=$2 size=$3 cached=$4 hits signed errors
	shift 4
	say "$key: $tool $*"
	curl -ksf "$base/metrics" >"$tmp/metrics.before" || die "no /metrics"
	"$tool" "$key" certward "$cw_pid $pg_pid" "$size" "$@"
	curl -ksf "$base/metrics" >"$tmp/metrics.after" || die "no /metrics"
	hits=$(ocsp_delta cached)
	signed=$(ocsp_delta signed)
	errors=$(($(ocsp_delta try_later) + $(ocsp_delta malformed) + $(ocsp_delta unauthorized)))
	say "  certward /metrics: $hits answered from the cache, $signed signed, $errors errors, for $answered answers"
	[ "$errors" -eq 0 ] || die "$key: certward answered $errors requests with an OCSP error"
	if [ "$cached" -eq 1 ]; then
		if [ "$hits" -lt "$answered" ] || [ "$signed" -gt $((answered / 100)) ]; then die "$key: not answered from the cache"; fi
	else
		if [ "$signed" -lt "$answered" ] || [ "$hits" -ne 0 ]; then die "$key: not every answer was signed"; fi
	fi
}

post_h=(-H 'Content-Type: application/ocsp-request')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
	say "round $r of $rounds"
	certward cw-cached-plain h2load_run "$size_cw" 1 "${post_h[@]}" -d "$tmp/req.der" "$plain/.well-known/pki/ocsp/$issuer"
	say "openssl: hey POST"
	hey_run openssl "openssl ocsp" "$openssl_pid" "$size_openssl" "http://127.0.0.1:$openssl_port/" "$tmp/req.der"
	say "cfssl: h2load POST"
	h2load_run cfssl cfssl "$cfssl_pid" "$size_cfssl" "${post_h[@]}" -d "$tmp/req.der" "http://127.0.0.1:$cfssl_port/"
	certward cw-cached-https h2load_run "$size_cw" 1 "${post_h[@]}" -d "$tmp/req.der" "$base/.well-known/pki/ocsp/$issuer"
	certward cw-nonce-post h2load_run "$size_cw_nonce" 0 "${post_h[@]}" -d "$tmp/nonce.der" "$plain/.well-known/pki/ocsp/$issuer"
	certward cw-nonce-get h2load_run "$size_cw_nonce" 0 -i "$tmp/nonce-get.uris"
	certward cw-nonce-hey hey_run "$size_cw_nonce" 0 "$plain/.well-known/pki/ocsp/$issuer" "$tmp/nonce.der"
done

# --- report ---------------------------------------------------------------------------------

print_machine "h2load $(h2load --version 2>&1 | head -n 1 | awk '{ print $NF }'), hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?'), $(openssl version | cut -d' ' -f1-2), cfssl $(dpkg-query -W -f='${Version}' golang-cfssl)"
echo "load:     $seconds s a run, $conns connections, $rounds rounds, medians; load average before: $load_before"
echo "request:  SHA-1 CertID of one ECDSA P-256 certificate under certward's Local issuer ($(stat -c %s "$tmp/req.der") bytes; with a nonce $(stat -c %s "$tmp/nonce.der")); responses valid 4 h, ECDSA P-256 responders"
echo
awk -v goal="$goal_rps" "$awk_median"'
	{ n[$1]++; v[$1, n[$1]] = $2; p50[$1, n[$1]] = $3; p99[$1, n[$1]] = $4
	  if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if ($2 > hi[$1]) hi[$1] = $2 }
	END {
		split("cw-cached-plain cw-cached-https cw-nonce-post cw-nonce-get cw-nonce-hey openssl cfssl", order, " ")
		label["cw-cached-plain"] = "certward cached, POST, plain HTTP"
		label["cw-cached-https"] = "certward cached, POST, HTTPS"
		label["cw-nonce-post"] = "certward uncached (nonce), POST, plain"
		label["cw-nonce-get"] = "certward uncached (nonces), GET, plain"
		label["cw-nonce-hey"] = "certward uncached (nonce), POST, plain"
		label["openssl"] = "openssl ocsp -index, POST"
		label["cfssl"] = "cfssl ocspserve, POST"
		tool["cw-nonce-hey"] = tool["openssl"] = "hey"
		printf "%-42s %-7s %12s %8s %8s  %s\n", "contender", "tool", "responses/s", "p50 ms", "p99 ms", "range of responses/s"
		for (i = 1; i <= 7; i++) {
			k = order[i]
			m[k] = median(v, k, n[k])
			printf "%-42s %-7s %12.0f %8.2f %8.2f  %.0f-%.0f\n", label[k], (k in tool ? tool[k] : "h2load"), m[k],
				median(p50, k, n[k]), median(p99, k, n[k]), lo[k], hi[k]
		}
		c = m["cw-cached-plain"]; s = m["cw-cached-https"]
		printf "\nratios: certward cached plain / openssl %.2f, / cfssl %.2f; cached HTTPS / openssl %.2f, / cfssl %.2f\n",
			c / m["openssl"], c / m["cfssl"], s / m["openssl"], s / m["cfssl"]
		printf "        certward uncached (hey) / openssl %.2f (both sign every response)\n", m["cw-nonce-hey"] / m["openssl"]
		printf "goal: cached at least %d/s (plain HTTP POST): %s (%.0f/s; HTTPS %.0f/s)\n", goal,
			(c >= goal ? "met" : "missed"), c, s
	}' "$tmp/results"
[ -z "$disturbed" ] || echo "DISTURBED: other activity on the machine during:$disturbed (see the CPU lines on stderr)"
