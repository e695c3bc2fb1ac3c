# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with the sourcing script
# What bench/http.sh and bench/api.sh share; sourced by them, not run.
#
# The script sets `prog` (its name, for messages) before sourcing this file;
# sourcing it moves to the repository root, reads the common BENCH_* knobs,
# installs the cleanup traps and creates the temporary directory $tmp. The
# script then calls, in this order:
#
#   bench_packages CMD:PACKAGE...   contrib/install-deps.sh, the service
#                                   users, and the Debian packages whose
#                                   commands are missing
#   bench_build                     release build (BENCH_BUILD_DIR, BENCH_REV)
#   bench_cpus                      CPU pinning: pin_server, pin_load, ...
#   bench_start_certward            PostgreSQL (contrib/pg.sh) and certwardd:
#                                   dsn, cw_pid, cw_port, cw_url
#   bench_wait_ready                until /ready answers (migrations
#                                   applied): pg_pid
#
# and measures with run_load. A script that starts more servers defines
# bench_stop_more (called first on exit) to stop them.
#
# Common environment (each script documents its own as well):
#   BENCH_SECONDS      duration of each measurement (default 10)
#   BENCH_CONNECTIONS  concurrent connections (default 50)
#   BENCH_ROUNDS       measurements of each kind (default 3)
#   BENCH_BUILD_DIR    build directory (default build-bench/, created with
#                      meson setup --buildtype=release -Dtests=false)
#   BENCH_REV          build this git revision (e.g. HEAD), exported with git
#                      archive into the temporary directory, instead of the
#                      working tree (which others may be editing)
#   BENCH_PIN          1 (default): servers on CPU 0, the load generator on
#                      the others; 0: no pinning, all share every CPU (what
#                      the whole machine does, load generator included)
set -eu

say() { echo "$prog: $*" >&2; }
warn() { echo "$prog: warning: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P) || die "cannot find the repository root"
cd "$root"
{ [ -f meson.build ] && [ -x contrib/pg.sh ]; } || die "$root does not look like the certward source tree"

seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-50}
rounds=${BENCH_ROUNDS:-3}
build=${BENCH_BUILD_DIR:-$root/build-bench}
rev=${BENCH_REV:-}
pin=${BENCH_PIN:-1}
case $pin in 0 | 1) ;; *) die "BENCH_PIN must be 0 or 1" ;; esac
src=$root
case $build in /*) ;; *) build=$root/$build ;; esac
for v in "$seconds" "$conns" "$rounds"; do
	case $v in '' | *[!0-9]* | 0) die "BENCH_SECONDS, BENCH_CONNECTIONS and BENCH_ROUNDS must be positive integers" ;; esac
done

if [ "$(id -u)" -eq 0 ]; then as_root=1; else as_root=0; fi

# --- cleanup -------------------------------------------------------------------

tmp=""
policy_added=0
pg_started=0
cw_pid=""

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

bench_stop_more() { :; }

# shellcheck disable=SC2317 # invoked by trap
bench_finish() {
	local rc=$?
	trap '' INT TERM HUP
	bench_stop_more
	stop_server certwardd "$cw_pid"
	if [ "$pg_started" -eq 1 ] && ! contrib/pg.sh stop "$tmp/pg" >&2; then
		warn "PostgreSQL in $tmp/pg did not stop cleanly"
		[ "$rc" -ne 0 ] || rc=1
	fi
	[ "$policy_added" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
	[ -z "$tmp" ] || rm -rf "$tmp"
	exit "$rc"
}
trap bench_finish EXIT
trap 'warn interrupted; exit 130' INT
trap 'warn terminated; exit 143' TERM
trap 'warn hangup; exit 129' HUP

tmp=$(mktemp -d /tmp/certward-bench.XXXXXX)
chmod 0711 "$tmp" # postgres and the certward users pass through
say "working in $tmp"

# --- packages, users, build ---------------------------------------------------

# bench_packages CMD:PACKAGE...: installs what is missing.
bench_packages() {
	local cp missing=""
	say "checking packages"
	contrib/install-deps.sh >&2
	contrib/create-users.sh >&2
	for cp in "$@" taskset:util-linux; do
		command -v "${cp%%:*}" >/dev/null || missing="$missing ${cp#*:}"
	done
	[ -n "$missing" ] || return 0
	[ "$as_root" -eq 1 ] || die "missing packages:$missing (run this script as root to install them)"
	say "installing:$missing"
	# Like contrib/install-deps.sh: no system service (nginx) gets started
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
}

# bench_build [TARGET]: sets source (what was built) and buildtype; with a
# target, compiles only that one.
bench_build() {
	local commit sanitize target=${1:-}
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
	say "compiling ${target:-everything} in $build"
	# shellcheck disable=SC2086
	meson compile -C "$build" $target >&2
	[ -n "$target" ] || [ -x "$build/certwardd" ] || die "the build did not produce $build/certwardd"
}

# --- CPUs -----------------------------------------------------------------------

# bench_cpus: with 2+ CPUs the servers (and PostgreSQL) on CPU 0, the load
# generator on the others. Sets ncpu, server_cpus, load_cpus, load_ncpu,
# pin_server, pin_load, pinning, h2_threads.
bench_cpus() {
	ncpu=$(nproc)
	shared=0
	if [ "$pin" -eq 0 ] && [ "$ncpu" -ge 2 ]; then
		shared=1
		server_cpus=0-$((ncpu - 1))
		load_cpus=$server_cpus
		load_ncpu=$ncpu
		pin_server=()
		pin_load=()
		pinning="none (BENCH_PIN=0): servers and load generator share CPUs $server_cpus"
	elif [ "$ncpu" -ge 2 ]; then
		server_cpus=0
		load_cpus=1-$((ncpu - 1))
		load_ncpu=$((ncpu - 1))
		pin_server=(taskset -c "$server_cpus")
		pin_load=(taskset -c "$load_cpus")
		pinning="servers (certwardd and its workers, PostgreSQL${1:+, $1}) on CPU $server_cpus, load generator on CPU $load_cpus"
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
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

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

# bench_start_certward: a private PostgreSQL in $tmp/pg and certwardd (one
# api process on a free loopback port). Sets dsn, cw_port, cw_pid, cw_url
# (its /health).
bench_start_certward() {
	local owner="" u config=$tmp/certward.yml
	cw_port=$(free_port)
	pg_started=1
	dsn=$("${pin_server[@]}" contrib/pg.sh start "$tmp/pg")

	# quickstart.sh's layout: state_dir belongs to the workers' user, the
	# signer's key_dir inside it (0700) to the signer's; log_dir and the
	# control socket's directory to the master (root).
	[ "$as_root" -eq 0 ] || owner=certward
	install -d "$tmp/log" "$tmp/run"
	install -d -m 0711 ${owner:+-o "$owner"} "$tmp/state"
	install -d -m 0700 ${owner:+-o "$owner-signer"} "$tmp/state/signer"
	[ "$as_root" -eq 0 ] || for u in certward certward-signer; do contrib/ensure-traversable.sh "$u" "$build"; done

	{
		echo "# written by bench/$prog"
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
}

# bench_wait_ready: the store applies the migrations after /health answers:
# waits (at most 60 s) until certward's /ready does; sets pg_pid.
bench_wait_ready() {
	local ready=${cw_url%/health}/ready i
	for i in $(seq 1 120); do
		curl -ksf -o /dev/null --max-time 2 "$ready" && break
		[ "$i" -lt 120 ] || die "certward is not ready ($ready)"
		sleep 0.5
	done
	pg_pid=$(head -n 1 "$tmp/pg/data/postmaster.pid")
}

# Prints each process of server NAME (main process PID): command, PID, user
# and CPUs.
show_processes() {
	local p
	say "$1 processes: $(for p in $(family "$2"); do
		printf '%s[%s] (%s, CPU %s) ' "$(cat "/proc/$p/comm")" "$p" "$(stat -c %U "/proc/$p")" \
			"$(taskset -pc "$p" | sed 's/.*: //')"
	done)"
}

# --- measurement helpers -----------------------------------------------------------

hz=$(getconf CLK_TCK)
disturbed=""

# Prints "comm user-ticks system-ticks" for each PID in the list PIDS and its
# children.
proc_ticks() {
	local p x
	for x in $1; do
		for p in $(family "$x"); do
			echo "$(cat "/proc/$p/comm" 2>/dev/null) $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12, $13 }')"
		done
	done
}

# Prints "cpuN busy total" (ticks) for every CPU.
cpu_ticks() {
	awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= NF; i++) t += $i; print $1, t - $5 - $6, t }' /proc/stat
}

# run_load NAME PIDS OUT TOOL ARGS...: runs the load generator TOOL on the load
# CPUs against server NAME (main processes PIDS, a space-separated list) and
# samples the CPU time of the
# server's processes, of the tool and of every CPU. Prints them to stderr and
# sets srv_pct (server processes, % of one CPU), load_pct (the tool, % of the
# load CPUs) and srv_cpu_s (server CPU seconds). A run that something else
# disturbed is added to $disturbed as $mode/NAME.
run_load() {
	local name=$1 pid=$2 out=$3 t0 t1 wall busy other_srv other_load
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
	# (shared CPUs: all of it counted against CPU "0-N", as with one CPU)
	read -r busy other_srv other_load < <(awk -v sl="$server_cpus" -v n="$ncpu" -v srv="$srv_pct" -v ld="$load_pct" -v ln="$load_ncpu" -v shared="$shared" '
		FNR == NR { b[$1] = $2; t[$1] = $3; next }
		{
			p = ($2 - b[$1]) / ($3 - t[$1]) * 100
			list = list sep $1 " " sprintf("%.0f%%", p); sep = ", "
			if ($1 == "cpu" sl || shared) bs += p; else bl += p
		}
		END {
			gsub(/ /, "_", list)
			single = n == 1 || shared
			os = (single ? bs - srv - ld * ln : bs - srv); ol = (single ? 0 : bl - ld * ln)
			printf "%s %.0f %.0f\n", list, (os > 0 ? os : 0), (ol > 0 ? ol : 0)
		}' "$tmp/cpu.before" "$tmp/cpu.after")
	say "  CPUs busy: ${busy//_/ }; not used by the server or the load generator: CPU $server_cpus ${other_srv}%, CPU $load_cpus ${other_load}%"
	if [ "$other_srv" -gt 20 ] || [ "$other_load" -gt 20 ]; then
		warn "something else kept the CPUs busy during this run: its figures are disturbed"
		disturbed="$disturbed $mode/$name"
	fi
}

# awk's median(A, K, N): the median of A[K, 1..N] (insertion sort).
awk_median='
	function median(a, k, n,    v, i, j, t) {
		for (i = 1; i <= n; i++) v[i] = a[k, i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}'

# certward's /metrics summed over workers (https listener only): prints how
# much counter NAME grew between $tmp/metrics.before and $tmp/metrics.after,
# minus 1 for the connection that fetched metrics.after.
cw_delta() {
	awk -v name="$1" '$0 !~ /^#/ && $1 ~ name && $1 !~ /listener="plain"/ { s[FILENAME] += $NF }
		END { printf "%d\n", s[ARGV[2]] - s[ARGV[1]] - 1 }' "$tmp/metrics.before" "$tmp/metrics.after"
}

# print_machine TOOLS: the machine, the load tools' versions, certward's build
# and the pinning (stdout, before the table).
print_machine() {
	echo "machine:  $ncpu CPU(s), $(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
	echo "tools:    $1"
	echo "certward: $source, $buildtype build, BoringSSL $(dpkg-query -W -f='${Version}' android-libboringssl-dev 2>/dev/null || echo '?')"
	echo "pinning:  $pinning"
}

# bench_inventory: once certwardd is ready, reads the first admin API key
# ($admin) and makes through the API ($base) a team, an owner, a Local
# issuer, a renewal policy and a profile (ECDSA 256+, serverAuth,
# *.example.com, 90 days): $team $owner $issuer $policy $profile. Also a
# P-256 key and CSR for bench.example.com in $tmp/leaf.key and leaf.csr.
bench_inventory() {
	local key_file=$tmp/state/admin-api-key profile_json i
	base=https://127.0.0.1:$cw_port
	for i in $(seq 1 60); do [ -s "$key_file" ] && break; sleep 0.5; done
	[ -s "$key_file" ] || die "no admin API key in $key_file"
	admin=$(cat "$key_file")
	team=$(bench_post /api/v1/teams '{"name": "bench"}')
	owner=$(bench_post /api/v1/owners "{\"name\": \"bench\", \"email\": \"bench@example.com\", \"team_id\": \"$team\"}")
	issuer=$(bench_post /api/v1/issuers '{"name": "bench local CA", "type": "Local"}')
	policy=$(bench_post /api/v1/renewal-policies '{"name": "bench", "max_retries": 3}')
	profile_json='{"name": "bench web", "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}],
		"max_ttl_seconds": 7776000, "allowed_ekus": ["serverAuth"], "required_san_patterns": ["*.example.com"]}'
	profile=$(bench_post /api/v1/profiles "$profile_json")
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
		-out "$tmp/leaf.csr" -subj /CN=bench.example.com -addext subjectAltName=DNS:bench.example.com 2>/dev/null
}

# bench_post PATH JSON: the new record's id (as the admin)
bench_post() {
	curl -ksf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d "$2" "$base$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' || die "POST $1 failed"
}
