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
set -eu

prog=http.sh
say() { echo "$prog: $*" >&2; }
warn() { echo "$prog: warning: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd -P) || die "cannot find the repository root"
cd "$root"
{ [ -f meson.build ] && [ -x contrib/pg.sh ]; } || die "$root does not look like the certward source tree"

seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-50}
rounds=${BENCH_ROUNDS:-3}
build=${BENCH_BUILD_DIR:-$root/build-bench}
rev=${BENCH_REV:-}
src=$root
case $build in /*) ;; *) build=$root/$build ;; esac
for v in "$seconds" "$conns" "$rounds"; do
	case $v in '' | *[!0-9]* | 0) die "BENCH_SECONDS, BENCH_CONNECTIONS and BENCH_ROUNDS must be positive integers" ;; esac
done

# Goals: certward's requests/s as a fraction of nginx's.
goal_keepalive=0.70
goal_handshake=0.50

if [ "$(id -u)" -eq 0 ]; then as_root=1; else as_root=0; fi

# --- cleanup -------------------------------------------------------------------

tmp=""
policy_added=0
pg_started=0
cw_pid=""
ngx_pid=""

# PID and its children.
family() {
	echo "$1"
	pgrep -P "$1" || true
}

# Sends TERM to a server's main process PID and waits up to 20 s for it to
# exit (certwardd and nginx's master stop their workers first); after that,
# KILLs it and its children.
stop_server() {
	local name=$1 pid=$2 i=0
	[ -n "$pid" ] || return 0
	say "stopping $name (PID $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	while ps -o stat= -p "$pid" | grep -qv '^Z'; do
		if [ "$i" -eq 200 ]; then
			warn "$name did not stop within 20 s; sending SIGKILL to it and its children"
			# shellcheck disable=SC2046 # one PID a word
			kill -KILL $(family "$pid") 2>/dev/null || true
			break
		fi
		i=$((i + 1))
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # invoked by trap
finish() {
	local rc=$?
	trap '' INT TERM HUP
	stop_server nginx "$ngx_pid"
	stop_server certwardd "$cw_pid"
	if [ "$pg_started" -eq 1 ] && ! contrib/pg.sh stop "$tmp/pg" >&2; then
		warn "PostgreSQL in $tmp/pg did not stop cleanly"
		[ "$rc" -ne 0 ] || rc=1
	fi
	[ "$policy_added" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
	[ -z "$tmp" ] || rm -rf "$tmp"
	exit "$rc"
}
trap finish EXIT
trap 'warn interrupted; exit 130' INT
trap 'warn terminated; exit 143' TERM
trap 'warn hangup; exit 129' HUP

tmp=$(mktemp -d /tmp/certward-bench.XXXXXX)
chmod 0711 "$tmp" # postgres and the certward users pass through
say "working in $tmp"

# --- packages, users, build ---------------------------------------------------

say "checking packages"
contrib/install-deps.sh >&2
contrib/create-users.sh >&2

missing=""
for cp in h2load:nghttp2-client hey:hey nginx:nginx taskset:util-linux; do
	command -v "${cp%%:*}" >/dev/null || missing="$missing ${cp#*:}"
done
if [ -n "$missing" ]; then
	[ "$as_root" -eq 1 ] || die "missing packages:$missing (run this script as root to install them)"
	say "installing:$missing"
	# Like contrib/install-deps.sh: no system nginx service gets started
	# (invoke-rc.d(8)), unless the machine already has a policy.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy_added=1
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >&2
	[ "$policy_added" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
	policy_added=0
fi

if [ -n "$rev" ]; then
	commit=$(git rev-parse --short=12 --verify "$rev^{commit}") || die "BENCH_REV=$rev is not a commit"
	say "building $rev ($commit), exported with git archive into $tmp/src"
	mkdir "$tmp/src"
	git archive "$commit" | tar -x -C "$tmp/src"
	src=$tmp/src
	build=$src/build-bench
	source="commit $commit"
else
	source="working tree $(git describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
fi

if [ -f "$build/meson-private/coredata.dat" ]; then
	say "reusing the configured build directory $build"
else
	say "configuring $build (release, no sanitizers)"
	meson setup --buildtype=release -Dtests=false "$build" "$src" >&2
fi
read -r buildtype sanitize < <(meson introspect --buildoptions "$build" |
	python3 -c 'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["buildtype"], o["b_sanitize"])')
{ [ "$buildtype" = release ] && [ "$sanitize" = none ]; } ||
	warn "$build has buildtype=$buildtype b_sanitize=$sanitize; figures are meant for a release build without sanitizers"
say "compiling in $build"
meson compile -C "$build" >&2
[ -x "$build/certwardd" ] || die "the build did not produce $build/certwardd"

# --- CPUs -----------------------------------------------------------------------

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	server_cpus=0
	load_cpus=1-$((ncpu - 1))
	load_ncpu=$((ncpu - 1))
	pin_server=(taskset -c "$server_cpus")
	pin_load=(taskset -c "$load_cpus")
	pinning="servers (certwardd and its workers, PostgreSQL, nginx) on CPU $server_cpus, load generator on CPU $load_cpus"
else
	server_cpus=0
	load_cpus=0
	load_ncpu=1
	pin_server=()
	pin_load=()
	pinning="none: one CPU, servers and load generator share it"
fi
h2_threads=$((load_ncpu < conns ? load_ncpu : conns))
say "pinning: $pinning"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cw_port=$(free_port)
ngx_port=$(free_port)
while [ "$ngx_port" = "$cw_port" ]; do ngx_port=$(free_port); done

# Waits until URL answers 200 (at most 60 s) while process PID lives.
wait_health() {
	local name=$1 pid=$2 url=$3 i
	for i in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || return 1
		curl -ksf -o /dev/null --max-time 2 "$url" && { say "$name answers on $url (after ${i} tries)"; return 0; }
		sleep 0.5
	done
	return 1
}

log_tail() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "$prog: --- last lines of $f ---" >&2
		tail -n 20 "$f" >&2
	done
}

# --- PostgreSQL and certwardd -------------------------------------------------

pg_started=1
dsn=$("${pin_server[@]}" contrib/pg.sh start "$tmp/pg")

# quickstart.sh's layout: state_dir belongs to the workers' user, the
# signer's key_dir inside it (0700) to the signer's; log_dir and the control
# socket's directory to the master (root).
owner=""
[ "$as_root" -eq 0 ] || owner=certward
install -d "$tmp/log" "$tmp/run"
install -d -m 0711 ${owner:+-o "$owner"} "$tmp/state"
install -d -m 0700 ${owner:+-o "$owner-signer"} "$tmp/state/signer"
[ "$as_root" -eq 0 ] || for u in certward certward-signer; do contrib/ensure-traversable.sh "$u" "$build"; done

config=$tmp/certward.yml
{
	echo "# written by bench/http.sh"
	echo "master:"
	if [ "$as_root" -eq 1 ]; then
		echo "  user: certward"
		echo "  signer_user: certward-signer"
	fi
	echo "  libexec_dir: \"$build\""
	echo "  state_dir: \"$tmp/state\""
	echo "  log_dir: \"$tmp/log\""
	echo "  control_socket: \"$tmp/run/control.sock\""
	echo "api:"
	echo "  listen: \"127.0.0.1:$cw_port\""
	echo "  processes: 1"
	echo "store:"
	echo "  dsn: \"$dsn\""
	echo "signer:"
	echo "  key_dir: \"$tmp/state/signer\""
} >"$config"
"$build/certwardd" -c "$config" --check-config >&2 || die "$config is not valid"

say "starting certwardd (api on 127.0.0.1:$cw_port, 1 api process; logs in $tmp/log)"
"${pin_server[@]}" "$build/certwardd" -c "$config" </dev/null >"$tmp/certwardd.out" 2>&1 &
cw_pid=$!
cw_url=https://127.0.0.1:$cw_port/health
if ! wait_health certward "$cw_pid" "$cw_url"; then
	log_tail "$tmp/certwardd.out" "$tmp"/log/*.log
	die "certward does not answer on $cw_url"
fi

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

for name in certward nginx; do
	if [ "$name" = certward ]; then pid=$cw_pid; else pid=$ngx_pid; fi
	say "$name processes: $(for p in $(family "$pid"); do
		printf '%s[%s] (%s, CPU %s) ' "$(cat "/proc/$p/comm")" "$p" "$(stat -c %U "/proc/$p")" \
			"$(taskset -pc "$p" | sed 's/.*: //')"
	done)"
done

# --- measurement helpers -----------------------------------------------------------

hz=$(getconf CLK_TCK)

# Prints "comm user-ticks system-ticks" for PID and its children.
proc_ticks() {
	local p
	for p in $(family "$1"); do
		echo "$(cat "/proc/$p/comm" 2>/dev/null) $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12, $13 }')"
	done
}

# Prints "cpuN busy total" (ticks) for every CPU.
cpu_ticks() {
	awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= NF; i++) t += $i; print $1, t - $5 - $6, t }' /proc/stat
}

# run_load NAME PID OUT TOOL ARGS...: runs the load generator TOOL on the load
# CPUs against server NAME (main process PID) and samples the CPU time of the
# server's processes, of the tool and of every CPU. Prints them to stderr and
# sets srv_pct (server processes, % of one CPU), load_pct (the tool, % of the
# load CPUs) and srv_cpu_s (server CPU seconds).
run_load() {
	local name=$1 pid=$2 out=$3 t0 t1 wall
	shift 3
	proc_ticks "$pid" >"$tmp/proc.before"
	cpu_ticks >"$tmp/cpu.before"
	t0=$(date +%s.%N)
	TIMEFORMAT='%3U %3S'
	{ time "${pin_load[@]}" "$@" >"$out" 2>&1; } 2>"$tmp/load.time" || {
		cat "$out" >&2
		die "$1 failed against $name"
	}
	t1=$(date +%s.%N)
	proc_ticks "$pid" >"$tmp/proc.after"
	cpu_ticks >"$tmp/cpu.after"
	wall=$(echo "$t0 $t1" | awk '{ print $2 - $1 }')
	read -r srv_cpu_s srv_pct < <(awk -v hz="$hz" -v wall="$wall" '
		FNR == NR { b[$1] += $2 + $3; next } { a[$1] += $2 + $3 }
		END { for (c in a) s += a[c] - b[c]; printf "%.2f %.0f\n", s / hz, s / hz / wall * 100 }' \
		"$tmp/proc.before" "$tmp/proc.after")
	load_pct=$(awk -v w="$wall" -v n="$load_ncpu" '{ printf "%.0f", ($1 + $2) / w / n * 100 }' "$tmp/load.time")
	say "  CPU during the run ($(printf '%.1f' "$wall") s, % of one CPU, user+system): $(awk -v hz="$hz" -v wall="$wall" '
		FNR == NR { bu[$1] += $2; bs[$1] += $3; next } { au[$1] += $2; as[$1] += $3 }
		END {
			for (c in au) {
				u = (au[c] - bu[c]) / hz / wall * 100; s = (as[c] - bs[c]) / hz / wall * 100
				if (u + s >= 0.5) { printf "%s%s %.0f%% (%.0f+%.0f)", sep, c, u + s, u, s; sep = ", " }
			}
		}' "$tmp/proc.before" "$tmp/proc.after"); $1 $(awk -v w="$wall" '{ printf "%.0f%% (user %.1f s, system %.1f s)", ($1 + $2) / w * 100, $1, $2 }' "$tmp/load.time")"
	# CPU time neither the server nor the load generator used: other
	# processes, and kernel work not charged to a process (softirqs)
	read -r busy other_srv other_load < <(awk -v sl="$server_cpus" -v n="$ncpu" -v srv="$srv_pct" -v ld="$load_pct" -v ln="$load_ncpu" '
		FNR == NR { b[$1] = $2; t[$1] = $3; next }
		{
			p = ($2 - b[$1]) / ($3 - t[$1]) * 100
			list = list sep $1 " " sprintf("%.0f%%", p); sep = ", "
			if ($1 == "cpu" sl) bs += p; else bl += p
		}
		END {
			gsub(/ /, "_", list)
			os = (n == 1 ? bs - srv - ld : bs - srv); ol = (n == 1 ? 0 : bl - ld * ln)
			printf "%s %.0f %.0f\n", list, (os > 0 ? os : 0), (ol > 0 ? ol : 0)
		}' "$tmp/cpu.before" "$tmp/cpu.after")
	say "  CPUs busy: ${busy//_/ }; not used by the server or the load generator: CPU $server_cpus ${other_srv}%, CPU $load_cpus ${other_load}%"
	if [ "$other_srv" -gt 20 ] || [ "$other_load" -gt 20 ]; then
		warn "something else kept the CPUs busy during this run: its figures are disturbed"
		disturbed="$disturbed $mode/$name"
	fi
}

# certward's /metrics summed over workers (https listener only): prints how
# much counter NAME grew between $tmp/metrics.before and $tmp/metrics.after,
# minus 1 for the connection that fetched metrics.after.
cw_delta() {
	awk -v name="$1" '$0 !~ /^#/ && $1 ~ name && $1 !~ /listener="plain"/ { s[FILENAME] += $NF }
		END { printf "%d\n", s[ARGV[2]] - s[ARGV[1]] - 1 }' "$tmp/metrics.before" "$tmp/metrics.after"
}

# Moves nginx's access log to FILE and makes nginx reopen it, which flushes
# its buffer into FILE; later lines go to a fresh access.log.
ngx_rotate_log() {
	mv "$ngx/logs/access.log" "$1"
	kill -USR1 "$ngx_pid"
	sleep 1.5
}

disturbed=""

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

echo "machine:  $ncpu CPU(s), $(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
echo "tools:    $(nginx -v 2>&1 | sed 's/.*: //'), $(h2load --version | head -n1), hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?'), $(openssl version | cut -d' ' -f1-2)"
echo "certward: $source, $buildtype build, BoringSSL $(dpkg-query -W -f='${Version}' android-libboringssl-dev 2>/dev/null || echo '?')"
echo "pinning:  $pinning"
echo "load:     $conns connections, ${seconds}s a run, $rounds runs per server and kind; keep-alive h2load --h1, handshakes hey -disable-keepalive"
echo
awk -v gk="$goal_keepalive" -v gh="$goal_handshake" -v rounds="$rounds" '
	function met(r, g) { return r >= g ? "yes" : "NO" }
	# median of the values of key K in array A (count in N)
	function median(a, k, n,    v, i, j, t) {
		for (i = 1; i <= n; i++) v[i] = a[k, i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
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
