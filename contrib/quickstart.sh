#!/bin/bash
# Runs a complete certward from this source tree in the foreground: installs
# the Debian packages, creates the service users, builds, starts a private
# PostgreSQL cluster, writes a configuration and runs certwardd.
#
# Usage: contrib/quickstart.sh      (from any directory)
#
# Meant for a fresh Debian 12 as root; also works as a normal user when the
# packages are already installed (everything then runs as that user).
#
# Everything lives in the repository:
#   build/              build directory, also certwardd's libexec_dir; reused
#                       if already configured
#   var/certward.yml    configuration, written only if absent (edit it freely)
#   var/pg/             PostgreSQL cluster (contrib/pg.sh), log in var/pg/log
#   var/state/          state_dir (owned by certward when run as root)
#   var/state/signer/   signer key_dir (certward-signer, 0700, when root)
#   var/log/            per-worker logs, written by the master
#   var/run/            the master's control socket
#
# Ctrl-C (SIGINT), SIGTERM or SIGHUP stops certwardd (the signal is forwarded;
# SIGHUP as SIGTERM, since it means the terminal went away), then PostgreSQL.
# The exit status is certwardd's.
set -eu

prog=quickstart
say() { echo "$prog: $*"; }
warn() { echo "$prog: warning: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd -P) || die "cannot find the repository root"
cd "$root"
if [ ! -f meson.build ] || [ ! -x contrib/pg.sh ]; then
	die "$root does not look like the certward source tree"
fi

build=$root/build
var=$root/var
config=var/certward.yml
pgdir=var/pg

if [ "$(id -u)" -eq 0 ]; then as_root=1; else as_root=0; fi

ensure_traversable() {
	"$root/contrib/ensure-traversable.sh" "$1" "$2" || exit 1
}

# Prints the value of KEY in top-level SECTION of the (two-level) YAML config,
# without quotes or trailing comment.
config_get() {
	awk -v section="$1" -v key="$2" '
		/^[^[:space:]#][^:]*:/ { cur = $0; sub(/:.*/, "", cur); next }
		cur == section && $0 ~ "^[[:space:]]+" key ":" {
			v = $0
			sub("^[[:space:]]+" key ":[[:space:]]*", "", v)
			if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*/, "", v) }
			else if (v ~ /^\047/) { sub(/^\047/, "", v); sub(/\047.*/, "", v) }
			else { sub(/[[:space:]]+#.*/, "", v); sub(/[[:space:]]+$/, "", v) }
			print v
			exit
		}' "$config"
}

# Prints PATH relative to the repository root when it lies inside it.
shorten() {
	case $1 in
	"$root"/*) echo "${1#"$root"/}" ;;
	*) echo "$1" ;;
	esac
}

# --- packages, users, build ------------------------------------------------

contrib/install-deps.sh
contrib/create-users.sh

if [ -f "$build/meson-private/coredata.dat" ]; then
	say "reusing the configured build directory build/"
else
	say "configuring build/"
	meson setup "$build"
fi
say "compiling in build/"
meson compile -C "$build"
[ -x "$build/certwardd" ] || die "the build did not produce build/certwardd"

# --- directories ------------------------------------------------------------

mkdir -p "$var/state/signer" "$var/log" "$var/run"
chmod 0700 "$var/state/signer"
if [ "$as_root" -eq 1 ]; then
	# state_dir belongs to the workers' user; 0711 lets the signer pass
	# through to its own key_dir, which nobody else may enter. var/log and
	# var/run stay root's: the master writes the logs and owns the socket.
	chown certward: "$var/state"
	chmod 0711 "$var/state"
	chown certward-signer: "$var/state/signer"
	for u in certward certward-signer; do
		ensure_traversable "$u" "$build"
	done
	ensure_traversable certward "$var/state"
	ensure_traversable certward-signer "$var/state/signer"
fi

# --- cleanup -----------------------------------------------------------------

pg_started=0
cw_pid=""
# shellcheck disable=SC2317 # invoked by trap
finish() {
	local rc=$?
	# Stopping must not itself be interrupted; pg.sh inherits the ignored
	# signals.
	trap '' INT TERM HUP
	if [ -n "$cw_pid" ] && kill -0 "$cw_pid" 2>/dev/null; then
		warn "stopping certwardd (PID $cw_pid)"
		kill -TERM "$cw_pid" 2>/dev/null || true
		wait "$cw_pid" 2>/dev/null || true
	fi
	if [ "$pg_started" -eq 1 ]; then
		pg_started=0
		if ! contrib/pg.sh stop "$pgdir"; then
			warn "PostgreSQL in $pgdir did not stop cleanly"
			[ "$rc" -ne 0 ] || rc=1
		fi
	fi
	exit "$rc"
}
trap finish EXIT
trap 'warn interrupted; exit 130' INT
trap 'warn terminated; exit 143' TERM
trap 'warn hangup; exit 129' HUP

# --- PostgreSQL -------------------------------------------------------------

pg_started=1
dsn=$(contrib/pg.sh start "$pgdir")

# --- configuration ----------------------------------------------------------

if [ -e "$config" ]; then
	say "using the existing $config"
	cfg_dsn=$(config_get store dsn)
	[ "$cfg_dsn" = "$dsn" ] ||
		warn "store.dsn in $config is '$cfg_dsn' but the quickstart cluster's DSN is '$dsn'"
else
	say "writing $config"
	{
		echo "# certward configuration written by contrib/quickstart.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
		echo "# quickstart.sh never overwrites this file: edit it freely, or delete it"
		echo "# to get a fresh one."
		echo "master:"
		if [ "$as_root" -eq 1 ]; then
			echo "  user: certward"
			echo "  signer_user: certward-signer"
		else
			echo "  # user and signer_user only apply when certwardd starts as root."
		fi
		echo "  libexec_dir: \"$build\""
		echo "  state_dir: \"$var/state\""
		echo "  log_dir: \"$var/log\""
		echo "  control_socket: \"$var/run/control.sock\""
		echo "api:"
		echo "  listen: \"127.0.0.1:8443\""
		echo "  processes: 1"
		echo "store:"
		echo "  dsn: \"$dsn\""
		echo "signer:"
		echo "  key_dir: \"$var/state/signer\""
	} >"$config.tmp"
	mv "$config.tmp" "$config"
fi

say "checking $config"
"$build/certwardd" -c "$config" --check-config || die "$config is not valid (see above)"

listen=$(config_get api listen)
log_dir=$(config_get master log_dir)
control_socket=$(shorten "$(config_get master control_socket)")
cat <<EOF
$prog: ----------------------------------------------------------------------
$prog: starting certwardd in the foreground; Ctrl-C stops it and PostgreSQL
$prog:   config          $config
$prog:   logs            $(shorten "$log_dir")/<worker>.log (PostgreSQL: $pgdir/log/postgresql.log)
$prog:   listening on    $control_socket (the control socket)
$prog:   status          build/certward ctl -s $control_socket status
$prog:   api             https://${listen:-?}  (GET /health, /ready, /metrics)
$prog:   database        $dsn
$prog: ----------------------------------------------------------------------
EOF

# --- certwardd ----------------------------------------------------------------

got_signal=0
pending_signal=""
# shellcheck disable=SC2317 # invoked by trap
forward() {
	got_signal=1
	if [ -z "$cw_pid" ]; then
		pending_signal=$2
		return
	fi
	say "received SIG$1; stopping certwardd (PID $cw_pid) with SIG$2"
	kill -s "$2" "$cw_pid" 2>/dev/null || true
}
trap 'forward INT INT' INT
trap 'forward TERM TERM' TERM
trap 'forward HUP TERM' HUP

# Job control gives certwardd a process group of its own: a Ctrl-C in the
# terminal then reaches only this script, which forwards it exactly once, and
# certwardd starts with default signal dispositions (without job control,
# bash would start it with SIGINT ignored).
# The signer (re)publishes the api certificate at each start; print its path
# and fingerprint once the fresh one is there, so clients can pin it.
cert_marker=$(mktemp)
announce_cert() {
	local crt fp
	crt=$(config_get signer cert_dir)
	crt=${crt:-$var/state/tls}/api.crt
	for _ in $(seq 1 60); do
		if [ -s "$crt" ] && [ "$crt" -nt "$cert_marker" ]; then
			fp=$(openssl x509 -in "$crt" -noout -fingerprint -sha256 | cut -d= -f2)
			say "api certificate $(shorten "$crt") SHA-256 $fp"
			say "try: curl --cacert $(shorten "$crt") https://${listen:-?}/health"
			# the local CA the signer made (or loaded) next to it
			if [ -s "$(dirname "$crt")/ca-issuing.crt" ]; then
				fp=$(openssl x509 -in "$(dirname "$crt")/ca-issuing.crt" -noout -fingerprint -sha256 | cut -d= -f2)
				say "issuing CA $(shorten "$(dirname "$crt")/ca-issuing.crt") SHA-256 $fp (chain: ca-chain.crt, root: ca-root.crt)"
			fi
			break
		fi
		sleep 0.5
	done
	rm -f "$cert_marker"
	announce_key
}
# At its first start certwardd makes an admin API key and leaves it in
# <state_dir>/admin-api-key for the operator; show it once.
announce_key() {
	local state key_file
	state=$(config_get master state_dir)
	key_file=${state:-$var/state}/admin-api-key
	for _ in $(seq 1 40); do
		if [ -s "$key_file" ]; then
			say "admin API key (shown once; also in $(shorten "$key_file"): store it, then delete the file):"
			say "  $(cat "$key_file")"
			say "try: curl --cacert $(shorten "$crt") -H \"Authorization: Bearer \$KEY\" https://${listen:-?}/api/v1/auth/check"
			return
		fi
		sleep 0.5
	done
	say "no new admin API key: one exists already (made at an earlier start)"
}
sleep 1 # a coarse mtime must still tell the new certificate from an old one
set -m
"$build/certwardd" -f -c "$config" </dev/null &
cw_pid=$!
set +m
announce_cert &
if [ -n "$pending_signal" ]; then
	say "stopping certwardd (PID $cw_pid) with SIG$pending_signal"
	kill -s "$pending_signal" "$cw_pid" 2>/dev/null || true
fi

rc=0
while :; do
	got_signal=0
	if wait "$cw_pid"; then rc=0; else rc=$?; fi
	# wait returns early when a trapped signal arrives: keep waiting until
	# certwardd itself has exited, and take its status.
	[ "$got_signal" -eq 1 ] || break
	if ! kill -0 "$cw_pid" 2>/dev/null; then
		if wait "$cw_pid" 2>/dev/null; then
			rc=0
		else
			r=$?
			# 127: the earlier wait had already collected the status.
			[ "$r" -eq 127 ] || rc=$r
		fi
		break
	fi
done
say "certwardd exited with status $rc"

# Anything left in certwardd's process group (workers of a master that died
# abnormally) would keep the port and the database busy. Zombies do not count.
group_alive() {
	local p state
	for p in $(pgrep -g "$cw_pid" 2>/dev/null); do
		state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d ' ' -f 1) || continue
		[ -z "$state" ] || [ "$state" = Z ] || return 0
	done
	return 1
}
if group_alive; then
	warn "processes of certwardd's group are still running ($(pgrep -d ' ' -g "$cw_pid")); sending SIGTERM"
	kill -TERM -- "-$cw_pid" 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		group_alive || break
		sleep 0.5
	done
	if group_alive; then
		warn "sending SIGKILL to what remains of certwardd's group"
		kill -KILL -- "-$cw_pid" 2>/dev/null || true
	fi
fi
cw_pid=""

exit "$rc"
