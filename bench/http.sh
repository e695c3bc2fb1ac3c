#!/bin/bash
# Benchmark, not a test: certward's HTTPS api against nginx serving a static
# file of the same size, both over TLS 1.3 with an ECDSA P-256 certificate,
# both pinned to the same CPU, measured in the same run.
#
# Usage: bench/http.sh      (from any directory; as root on Debian 12)
#
#   keep-alive   h2load --h1: BENCH_CONNECTIONS connections kept open for
#                BENCH_SECONDS, GET /health (certward) resp. /health, a static
#                file holding certward's 16-byte answer (nginx)
#   handshakes   hey -disable-keepalive: BENCH_CONNECTIONS workers, each request
#                on a new TCP and TLS connection ("Connection: close"), and a
#                full handshake every time: hey (Go) keeps no TLS sessions.
#                Not h2load or wrk with "Connection: close": both reuse their
#                TLS session when they reconnect, and certward resumes it (no
#                signature at all).
#                Checked on the server side after the run: certward's /metrics
#                (connections accepted, handshakes and signer round trips must
#                each equal the requests), nginx's access log (one request per
#                connection, none resumed).
#
# It prints (stdout) the machine, then a table: requests/s of certward and
# nginx and their ratio against the goal (keep-alive >= 0.70 of nginx,
# handshakes >= 0.50); the CPU time each server spent per request and the
# ratio of those (what the servers could do on a CPU of their own, whatever
# the load generator manages); whether a run was limited by the load
# generator rather than the server. Progress and the CPU use of every process
# during each run go to stderr. Missed goals do not change the exit status (0);
# a failed setup or failed requests do.
#
# What it does: installs what is missing (contrib/install-deps.sh, then
# nghttp2-client, hey, nginx), creates the service users
# (contrib/create-users.sh), builds a release build into build-bench/ (reused
# when configured), starts a private PostgreSQL (contrib/pg.sh, as postgres when
# root), certwardd (api on a free loopback port, one api process, the workers as
# the certward users when root) and nginx (worker_processes 1, own prefix and
# configuration), all under one temporary directory, and removes all of it on
# exit. With 2+ CPUs, both servers (and PostgreSQL) run on CPU 0 and the load
# generator on the others; other load on the machine shows in the per-CPU
# figures printed for each run.
#
# Environment:
#   BENCH_SECONDS      duration of each measurement (default 10)
#   BENCH_CONNECTIONS  concurrent connections (default 50)
#   BENCH_ROUNDS       measurements of each kind and server (default 3), taken
#                      in turns (certward, nginx, nginx, certward, ...); the
#                      table shows the medians: this machine's speed drifts
#   BENCH_BUILD_DIR    build directory (default build-bench/, created with
#                      meson setup --buildtype=release -Dtests=false)
#   BENCH_REV          build this git revision (e.g. HEAD), exported with git
#                      archive into the temporary directory, instead of the
#                      working tree (which others may be editing)
prog=http.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# Goals: certward's requests/s as a fraction of nginx's.
goal_keepalive=0.70
goal_handshake=0.50

ngx_pid=""
# shellcheck disable=SC2317 # invoked by bench_finish
bench_stop_more() { stop_server nginx "$ngx_pid"; }

bench_packages h2load:nghttp2-client hey:hey nginx:nginx
bench_build
bench_cpus nginx
bench_start_certward
ngx_port=$(free_port)
while [ "$ngx_port" = "$cw_port" ]; do ngx_port=$(free_port); done

# --- nginx ------------------------------------------------------------------------

ngx=$tmp/nginx
mkdir -p "$ngx/html" "$ngx/logs" "$ngx/tmp"
chmod -R a+rX "$ngx"
curl -ksf "$cw_url" >"$ngx/html/health" # certward's answer, byte for byte
say "generating nginx's self-signed ECDSA P-256 certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$ngx/key.pem" -out "$ngx/cert.pem" 2>/dev/null
cat >"$ngx/nginx.conf" <<EOF
# written by bench/http.sh
worker_processes 1;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events { worker_connections 4096; }
http {
	client_body_temp_path $ngx/tmp/body;
	proxy_temp_path $ngx/tmp/proxy;
	fastcgi_temp_path $ngx/tmp/fastcgi;
	uwsgi_temp_path $ngx/tmp/uwsgi;
	scgi_temp_path $ngx/tmp/scgi;
	# certward logs every request too; these lines also show that each
	# handshake-run request had a connection of its own, not resumed
	log_format bench '\$connection \$connection_requests \$ssl_session_reused \$ssl_protocol \$status';
	access_log $ngx/logs/access.log bench buffer=64k flush=1s;
	keepalive_requests 100000000;
	# TLS 1.3 only; session tickets stay on as by default: certward's
	# BoringSSL issues them too, and hey never uses them
	ssl_protocols TLSv1.3;
	server {
		listen 127.0.0.1:$ngx_port ssl;
		ssl_certificate $ngx/cert.pem;
		ssl_certificate_key $ngx/key.pem;
		root $ngx/html;
		location = /health { default_type application/json; }
	}
}
EOF
say "starting nginx (127.0.0.1:$ngx_port, worker_processes 1; prefix $ngx)"
"${pin_server[@]}" nginx -e "$ngx/logs/error.log" -p "$ngx" -c "$ngx/nginx.conf" </dev/null >"$ngx/logs/stdout" 2>&1 &
ngx_pid=$!
ngx_url=https://127.0.0.1:$ngx_port/health
if ! wait_health nginx "$ngx_pid" "$ngx_url"; then
	log_tail "$ngx/logs/stdout" "$ngx/logs/error.log"
	die "nginx does not answer on $ngx_url"
fi

# --- what is being compared -----------------------------------------------------

key_type() {
	openssl x509 -in "$1" -noout -text | awk '
		/Public Key Algorithm:/ { sub(/.*: /, ""); a = $0 }
		/NIST CURVE:|ASN1 OID:/ { sub(/.*: /, ""); c = $0 }
		END { print a, c }'
}
cw_key=$(key_type "$tmp/state/tls/api.crt")
ngx_key=$(key_type "$ngx/cert.pem")
say "certificate keys: certward $cw_key, nginx $ngx_key"
[ "$cw_key" = "$ngx_key" ] || warn "the two servers' certificates have different key types"
say "bodies: certward $(curl -ksf "$cw_url" | wc -c) bytes, nginx $(curl -ksf "$ngx_url" | wc -c) bytes"

show_processes certward "$cw_pid"
show_processes nginx "$ngx_pid"

# --- measurement helpers -----------------------------------------------------------

# Moves nginx's access log to FILE and makes nginx reopen it, which flushes
# its buffer into FILE; later lines go to a fresh access.log.
ngx_rotate_log() {
	mv "$ngx/logs/access.log" "$1"
	kill -USR1 "$ngx_pid"
	sleep 1.5
}

# record MODE NAME REQ/S REQUESTS: one line of results per run: mode, server,
# req/s, server CPU microseconds per request, server % of one CPU, load
# generator % of its CPUs.
: >"$tmp/results"
record() {
	echo "$1 $2 $3 $(awk -v s="$srv_cpu_s" -v n="$4" 'BEGIN { printf "%.0f", s / n * 1e6 }') $srv_pct $load_pct" >>"$tmp/results"
}

# --- keep-alive ------------------------------------------------------------------

keepalive() {
	local name=$1 pid=$2 url=$3 out=$tmp/h2load.$1 line req logged
	mode=keep-alive
	say "keep-alive: $name: h2load --h1 -t $h2_threads -c $conns -D $seconds $url"
	logged=$(cat "$tmp"/log/*.log | wc -l)
	run_load "$name" "$pid" "$out" h2load --h1 -t "$h2_threads" -c "$conns" -D "$seconds" "$url"
	[ "$name" = nginx ] ||
		say "  certward's logs grew by $(($(cat "$tmp"/log/*.log | wc -l) - logged)) lines during the run (workers write them to a pipe, the master to the files)"
	line=$(grep '^finished in' "$out") || { cat "$out" >&2; die "no result from h2load against $name"; }
	rps=$(echo "$line" | sed 's/.*, \([0-9.]*\) req\/s.*/\1/')
	req=$(grep '^requests:' "$out")
	case $req in *' 0 failed, 0 errored, 0 timeout'*) ;; *) cat "$out" >&2; die "failed requests against $name: $req" ;; esac
	grep -q '^status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx' "$out" || { cat "$out" >&2; die "answers other than 2xx from $name"; }
	say "  $name: $rps req/s; ${req#requests: }; $(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' "$out" | tr '\n' ' ')"
	record keep-alive "$name" "$rps" "$(echo "$req" | awk '{ print $2 }')"
}

# in_turns LABEL FN: runs measurement FN for both servers, BENCH_ROUNDS
# times, in turns: the server measured last in one round comes first in the
# next.
in_turns() {
	local r
	for r in $(seq 1 "$rounds"); do
		say "$1, round $r of $rounds"
		if [ $((r % 2)) -eq 1 ]; then
			"$2" certward "$cw_pid" "$cw_url"
			"$2" nginx "$ngx_pid" "$ngx_url"
		else
			"$2" nginx "$ngx_pid" "$ngx_url"
			"$2" certward "$cw_pid" "$cw_url"
		fi
	done
}

in_turns keep-alive keepalive

# --- new TLS handshakes -----------------------------------------------------------

handshakes() {
	local name=$1 pid=$2 url=$3 out=$tmp/hey.$1 n
	mode=handshakes
	say "handshakes: $name: hey -z ${seconds}s -c $conns -cpus $load_ncpu -disable-keepalive $url"
	if [ "$name" = certward ]; then
		curl -ksf "${url%/health}/metrics" >"$tmp/metrics.before"
	else
		ngx_rotate_log "$tmp/access.before"
	fi
	run_load "$name" "$pid" "$out" hey -z "${seconds}s" -c "$conns" -cpus "$load_ncpu" -disable-keepalive "$url"
	rps=$(awk '/Requests\/sec:/ { print $2 }' "$out")
	n=$(awk '$1 == "[200]" { print $2 }' "$out")
	{ [ -n "$rps" ] && [ -n "$n" ] && ! grep -q 'Error distribution' "$out" &&
		[ "$(awk '/^  \[[0-9]+\]/ { s += $2 } END { print s }' "$out")" = "$n" ]; } || {
		cat "$out" >&2
		die "hey: failed requests or answers other than 200 from $name"
	}
	say "  $name: $rps req/s; $n requests, all 200"
	verify_handshakes "$name" "$url" "$n"
	record handshakes "$name" "$rps" "$n"
}

# Checks, on the server side, that the last run made N full handshakes for N
# requests.
verify_handshakes() {
	local name=$1 url=$2 n=$3 hs signs accepted conns_seen reqs reused
	if [ "$name" = certward ]; then
		curl -ksf "${url%/health}/metrics" >"$tmp/metrics.after"
		accepted=$(cw_delta connections_accepted_total)
		hs=$(cw_delta tls_handshakes_total)
		signs=$(cw_delta tls_sign_requests_total)
		say "  certward /metrics: $accepted connections accepted, $hs handshakes, $signs signatures by the signer, for $n requests"
		{ [ "$accepted" -eq "$n" ] && [ "$hs" -eq "$n" ] && [ "$signs" -eq "$n" ]; } ||
			die "certward: $n requests did not make $n full handshakes"
	else
		ngx_rotate_log "$tmp/access.run"
		reqs=$(wc -l <"$tmp/access.run")
		conns_seen=$(awk '{ print $1 }' "$tmp/access.run" | sort -u | wc -l)
		reused=$(awk '$3 != "." || $2 != 1' "$tmp/access.run" | wc -l)
		say "  nginx access log: $reqs requests on $conns_seen connections, $reused resumed or not first on their connection"
		{ [ "$reqs" -eq "$n" ] && [ "$conns_seen" -eq "$n" ] && [ "$reused" -eq 0 ]; } ||
			die "nginx: $n requests did not make $n full handshakes"
	fi
}

in_turns "new handshakes" handshakes

# --- report -------------------------------------------------------------------------

print_machine "$(nginx -v 2>&1 | sed 's/.*: //'), $(h2load --version | head -n1), hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?'), $(openssl version | cut -d' ' -f1-2)"
echo "load:     $conns connections, ${seconds}s a run, $rounds runs per server and kind; keep-alive h2load --h1, handshakes hey -disable-keepalive"
echo
awk -v gk="$goal_keepalive" -v gh="$goal_handshake" -v rounds="$rounds" "$awk_median"'
	function met(r, g) { return r >= g ? "yes" : "NO" }
	{
		k = $1 SUBSEP $2; i = ++n[k]
		rps[k, i] = $3; us[k, i] = $4
		if (i == 1 || $3 < lo[k]) lo[k] = $3
		if (i == 1 || $3 > hi[k]) hi[k] = $3
		if ($6 >= 90 && $5 < 90) limited[k]++
	}
	END {
		printf "%-12s %9s %9s %6s %7s %4s | %10s %9s %6s %4s\n", "", "certward", "nginx", "ratio", "goal", "met",
			"CPU us/req", "(nginx)", "ratio", "met"
		split("keep-alive handshakes", modes, " ")
		for (i = 1; i <= 2; i++) {
			m = modes[i]; g = (m == "keep-alive" ? gk : gh); c = m SUBSEP "certward"; x = m SUBSEP "nginx"
			rc = median(rps, c, n[c]); rx = median(rps, x, n[x]); uc = median(us, c, n[c]); ux = median(us, x, n[x])
			printf "%-12s %9.0f %9.0f %6.2f %7s %4s | %10.0f %9.0f %6.2f %4s\n", m, rc, rx, rc / rx, ">= " g,
				met(rc / rx, g), uc, ux, ux / uc, met(ux / uc, g)
			spread = spread sprintf("%s %s %.0f-%.0f, nginx %.0f-%.0f; ", m, "certward", lo[c], hi[c], lo[x], hi[x])
		}
		print ""
		sub(/; $/, "", spread)
		printf "medians of %d runs each; requests/s ranged: %s\n", rounds, spread
		print "left: requests/s; right: CPU time all of a server'\''s processes spent per request, and the"
		print "ratio nginx/certward of those: what the two would compare at if neither were held back by"
		print "the load generator."
		for (k in limited) {
			split(k, kk, SUBSEP)
			printf "%s, %s: %d of %d runs limited by the load generator (90%%+ of its CPUs, server below 90%%)\n",
				kk[1], kk[2], limited[k], n[k]
		}
	}' "$tmp/results"
[ -z "$disturbed" ] || echo "DISTURBED: other activity on the machine during the runs of:$disturbed (see the CPU lines on stderr)"
