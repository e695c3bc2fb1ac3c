#!/bin/sh
# A self-contained PostgreSQL cluster for certward: throwaway (tests) or
# persistent (quickstart, development).
#
# Usage:
#   contrib/pg.sh start  DIR [PORT]   init (or reuse) DIR/data, start it, create
#                                      database "certward" owned by the service
#                                      role; prints the DSN on stdout
#   contrib/pg.sh stop   DIR          fast shutdown, waits until no server
#                                      process is left; no-op if not running
#   contrib/pg.sh dsn    DIR          prints the DSN recorded by the last start
#   contrib/pg.sh status DIR          pg_ctl status (exit 0 running, 3 stopped)
#   contrib/pg.sh psql   DIR [ARGS]   psql as the cluster's superuser into the
#                                      certward database (for debugging/tests)
#
# Layout: DIR/data (cluster), DIR/run (Unix socket directory), DIR/log
# (postgresql.log, initdb.log), DIR/dsn and DIR/port (written by start).
#
# The cluster listens on the Unix socket only (listen_addresses = ''); PORT
# (default: the port of the previous start in DIR, else 5433) only names the
# socket, DIR/run/.s.PGSQL.PORT. Authentication is peer only: the OS user name
# must equal the role name. The service role, which owns database certward, is
# `certward` when run as root (the user certward's store worker runs as) and
# otherwise the invoking user.
#
# Run as root, the server runs as the `postgres` OS user (PostgreSQL refuses to
# run as root) and DIR/data, DIR/run and DIR/log belong to it. Both postgres and
# certward must be able to reach DIR (certward needs DIR/run for the socket): for
# every directory from / down to DIR that one of them cannot traverse, this
# script adds search permission for others (chmod o+x: traverse only, no
# listing) and prints which directory it changed. Nothing else outside DIR is
# touched. Put DIR under a world-traversable path (the repository, /srv, /tmp)
# and nothing is changed at all.
#
# Environment: PGSH_TIMEOUT (seconds to wait for start/stop, default 60),
# PG_BINDIR (PostgreSQL bin directory; default: the highest version under
# /usr/lib/postgresql/*/bin, or the one matching an existing cluster).
set -eu

prog=pg.sh
DBNAME=certward
DEFAULT_PORT=5433
MIN_VERSION=13
timeout=${PGSH_TIMEOUT:-60}

say() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }
contrib=$(cd -P -- "$(dirname -- "$0")" && pwd) || die "cannot find the contrib directory"

usage() {
	cat >&2 <<'EOF'
usage: pg.sh start DIR [PORT]
       pg.sh stop DIR
       pg.sh dsn DIR
       pg.sh status DIR
       pg.sh psql DIR [PSQL-ARGS...]
EOF
	exit "${1:-2}"
}

case ${1:-} in
-h | --help | help) usage 0 ;;
start | stop | dsn | status | psql) ;;
*) usage ;;
esac
cmd=$1
shift
[ $# -ge 1 ] || usage
dir_arg=$1
shift
case $cmd in
start) [ $# -le 1 ] || usage ;;
psql) ;;
*) [ $# -eq 0 ] || usage ;;
esac

case $timeout in
'' | *[!0-9]*) die "PGSH_TIMEOUT must be a number of seconds, got '$timeout'" ;;
esac

# --- who runs the cluster, who owns the database --------------------------

if [ "$(id -u)" -eq 0 ]; then
	as_root=1
	cluster_user=postgres
	superuser=postgres
	service_user=certward
else
	as_root=0
	cluster_user=$(id -un)
	superuser=$cluster_user
	service_user=$cluster_user
fi

# Runs a command as the cluster's OS user.
as_cluster() {
	if [ "$as_root" -eq 1 ]; then
		runuser -u "$cluster_user" -- "$@"
	else
		"$@"
	fi
}

# --- DIR -----------------------------------------------------------------

# Whitespace, quotes and backslashes would need quoting in the DSN and in
# postgresql.conf; refusing them keeps both simple and unambiguous.
check_dir_name() {
	case $1 in
	*[[:space:]\'\"\\]*) die "DIR must not contain whitespace, quotes or backslashes: '$1'" ;;
	esac
}

# PORT for start: the one given, else the one of the previous start in DIR,
# else the default. The socket path must fit in sun_path (108 bytes with NUL).
start_port() {
	port=${1:-}
	if [ -z "$port" ]; then
		port=$DEFAULT_PORT
		[ -s "$2/port" ] && port=$(cat "$2/port")
	fi
	case $port in
	'' | *[!0-9]*) die "PORT must be a number, got '$port'" ;;
	esac
	{ [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || die "PORT must be within 1..65535, got $port"
	socket=$2/run/.s.PGSQL.$port
	[ ${#socket} -le 107 ] || die "socket path $socket is ${#socket} bytes, the limit is 107: use a shorter DIR"
}

case $dir_arg in
/*) dir=$dir_arg ;;
*) dir=$PWD/$dir_arg ;;
esac
check_dir_name "$dir"
if [ "$cmd" = start ]; then
	# Checked before creating anything, and again on the resolved path below.
	start_port "${1:-}" "$dir"
	mkdir -p -- "$dir" || die "cannot create $dir"
fi
[ -d "$dir" ] || die "$dir_arg: no such directory"
dir=$(cd -P -- "$dir" && pwd) || die "cannot resolve $dir_arg"
check_dir_name "$dir"
data=$dir/data
run=$dir/run
logdir=$dir/log
logfile=$logdir/postgresql.log
# Everything below uses absolute paths; a cwd the postgres user cannot enter
# (e.g. /root) would make initdb and psql complain.
cd /

# --- binaries --------------------------------------------------------------

# Sets bindir/bin_version: PG_BINDIR, else the given major version if it is
# installed, else the highest installed version.
find_bindir() {
	want=${1:-}
	if [ -n "${PG_BINDIR:-}" ]; then
		[ -x "$PG_BINDIR/postgres" ] || die "PG_BINDIR=$PG_BINDIR has no postgres binary"
		bindir=$PG_BINDIR
		bin_version=$("$bindir/pg_config" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
		[ -n "$bin_version" ] || bin_version=$("$bindir/postgres" --version | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')
		return 0
	fi
	bindir=
	bin_version=0
	for d in /usr/lib/postgresql/*/bin; do
		{ [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; } || continue
		v=${d%/bin}
		v=${v##*/}
		case $v in '' | *[!0-9]*) continue ;; esac
		if [ -n "$want" ] && [ "$v" = "$want" ]; then
			bindir=$d
			bin_version=$v
			return 0
		fi
		if [ "$v" -gt "$bin_version" ]; then
			bindir=$d
			bin_version=$v
		fi
	done
	[ -n "$bindir" ] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin (run contrib/install-deps.sh as root)"
	[ "$bin_version" -ge "$MIN_VERSION" ] || die "PostgreSQL $bin_version found; certward needs >= $MIN_VERSION"
	if [ -n "$want" ] && [ "$want" != "$bin_version" ]; then
		die "$data was created by PostgreSQL $want, which is not installed (newest here: $bin_version); install postgresql-$want or use a new DIR"
	fi
}

cluster_version() {
	[ -f "$data/PG_VERSION" ] && cat "$data/PG_VERSION"
}

postmaster_pid() {
	head -n 1 "$data/postmaster.pid" 2>/dev/null || true
}

# True if PID is a live process. A zombie does not count: pg_ctl (kill -0)
# would call a crashed postmaster "running" until its parent reaps it, which
# under some container inits takes seconds.
pid_alive() {
	[ -n "$1" ] || return 1
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# Waits until PID has disappeared altogether (reaped), at most $timeout seconds.
wait_gone() {
	waited=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$waited" -lt "$((timeout * 10))" ] || die "process $1 still present ${timeout}s after it should have ended"
		sleep 0.1
		waited=$((waited + 1))
	done
}

is_running() {
	as_cluster "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
	pid=$(postmaster_pid)
	pid_alive "$pid" && return 0
	# The postmaster died without removing its pid file (crash, SIGKILL).
	# PostgreSQL refuses to start while that pid still exists, even as a zombie.
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		say "postmaster $pid has died; waiting for it to be reaped"
		wait_gone "$pid"
	fi
	return 1
}

log_tail() {
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "$prog: --- last lines of $f ---" >&2
		tail -n 25 "$f" >&2 || true
		echo "$prog: ---" >&2
	done
}

# --- permissions (root only) ----------------------------------------------

ensure_traversable() {
	"$contrib/ensure-traversable.sh" "$1" "$2" || exit 1
}

# --- commands ----------------------------------------------------------------

cmd_start() {
	start_port "${1:-}" "$dir"

	if [ "$as_root" -eq 1 ]; then
		getent passwd "$cluster_user" >/dev/null ||
			die "OS user $cluster_user does not exist (install the postgresql package: contrib/install-deps.sh)"
		getent passwd "$service_user" >/dev/null ||
			say "warning: OS user $service_user does not exist yet (run contrib/create-users.sh); role $service_user is created anyway"
	fi

	if [ -d "$data" ] && { ! [ -r "$data" ] || ! [ -x "$data" ]; }; then
		die "cannot read $data (owner: $(stat -c %U "$data")); run pg.sh as that user or as root"
	fi
	version=$(cluster_version || true)
	if [ -n "$version" ]; then
		find_bindir "$version"
		owner=$(stat -c %U "$data")
		[ "$owner" = "$cluster_user" ] ||
			die "$data belongs to $owner but the cluster would run as $cluster_user (it was created by another user: start it as that user, or use a new DIR)"
		say "reusing PostgreSQL $version cluster in $data"
	else
		if [ -d "$data" ] && [ -n "$(ls -A "$data")" ]; then
			die "$data exists, is not empty and holds no PostgreSQL cluster (no PG_VERSION); remove it or use another DIR"
		fi
		find_bindir
	fi

	mkdir -p "$run" "$logdir"
	if [ "$as_root" -eq 1 ]; then
		ensure_traversable "$cluster_user" "$dir"
		chown "$cluster_user:" "$run" "$logdir"
	fi
	chmod 0755 "$run"
	chmod 0750 "$logdir"
	if [ "$as_root" -eq 1 ] && getent passwd "$service_user" >/dev/null; then
		ensure_traversable "$service_user" "$run"
	fi

	if [ -z "$version" ]; then
		say "initialising PostgreSQL $bin_version cluster in $data (log: $logdir/initdb.log)"
		mkdir -p "$data"
		[ "$as_root" -eq 0 ] || chown "$cluster_user:" "$data"
		chmod 0700 "$data"
		if ! as_cluster "$bindir/initdb" -D "$data" -U "$superuser" -E UTF8 --locale=C \
			--auth-local=peer --auth-host=reject >"$logdir/initdb.log" 2>&1; then
			log_tail "$logdir/initdb.log"
			die "initdb failed"
		fi
		# Our settings live in their own file, rewritten at every start.
		printf "\n# Added by certward's contrib/pg.sh\ninclude_if_exists = 'certward.conf'\n" >>"$data/postgresql.conf"
	fi

	if is_running; then
		running_port=$(cat "$dir/port" 2>/dev/null || echo "?")
		if [ -n "${1:-}" ] && [ "$running_port" != "$port" ]; then
			die "the cluster in $data is already running with port $running_port; stop it first to change the port"
		fi
		port=$running_port
		say "server already running (socket $run/.s.PGSQL.$port)"
	else
		conf=$data/certward.conf
		cat >"$conf" <<EOF
# Written by certward's contrib/pg.sh at every start: edit pg.sh, not this file.
listen_addresses = ''
port = $port
unix_socket_directories = '$run'
unix_socket_permissions = 0777
EOF
		[ "$as_root" -eq 0 ] || chown "$cluster_user:" "$conf"
		chmod 0600 "$conf"
		echo "$port" >"$dir/port"

		say "starting server (socket $socket, log $logfile)"
		# -l keeps the server's stdout/stderr off ours, so that callers can
		# capture the DSN with $(pg.sh start ...) without waiting on the server.
		if ! as_cluster "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t "$timeout" start >/dev/null; then
			log_tail "$logfile"
			die "server did not start (see $logfile)"
		fi
	fi

	waited=0
	until as_cluster "$bindir/pg_isready" -q -h "$run" -p "$port" -d postgres; do
		if [ "$waited" -ge "$timeout" ]; then
			log_tail "$logfile"
			die "server does not accept connections on $run/.s.PGSQL.$port after ${timeout}s"
		fi
		sleep 1
		waited=$((waited + 1))
	done

	# Role and database, created only when missing. \gexec runs each generated
	# statement on its own, outside a transaction, as CREATE DATABASE needs.
	if ! as_cluster "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$run" -p "$port" \
		-U "$superuser" -d postgres -v role="$service_user" -v db="$DBNAME" >&2 <<'EOF'; then
SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role')
  FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
  WHERE d.datname = :'db' AND r.rolname <> :'role' \gexec
EOF
		log_tail "$logfile"
		die "could not create role $service_user / database $DBNAME"
	fi

	dsn="host=$run port=$port dbname=$DBNAME user=$service_user"
	echo "$dsn" >"$dir/dsn"
	say "ready: database $DBNAME owned by role $service_user (peer authentication)"
	echo "$dsn"
}

cmd_stop() {
	version=$(cluster_version || true)
	if [ -z "$version" ]; then
		say "no cluster in $data; nothing to stop"
		return 0
	fi
	find_bindir "$version"
	if ! is_running; then
		say "server in $data is not running"
		return 0
	fi
	pid=$(postmaster_pid)
	say "stopping server in $data (fast shutdown)"
	if ! as_cluster "$bindir/pg_ctl" -D "$data" -m fast -w -t "$timeout" stop >/dev/null; then
		say "fast shutdown did not finish within ${timeout}s; trying immediate shutdown"
		as_cluster "$bindir/pg_ctl" -D "$data" -m immediate -w -t "$timeout" stop >/dev/null || {
			log_tail "$logfile"
			die "could not stop the server in $data"
		}
	fi
	# pg_ctl returns once postmaster.pid is gone; make sure the process is too.
	[ -z "$pid" ] || wait_gone "$pid"
	say "stopped"
}

cmd_dsn() {
	[ -s "$dir/dsn" ] || die "no DSN recorded in $dir (run: pg.sh start $dir)"
	cat "$dir/dsn"
}

cmd_status() {
	version=$(cluster_version || true)
	[ -n "$version" ] || die "no cluster in $data"
	find_bindir "$version"
	[ ! -s "$dir/dsn" ] || say "dsn: $(cat "$dir/dsn")"
	rc=0
	as_cluster "$bindir/pg_ctl" -D "$data" status || rc=$?
	return "$rc"
}

cmd_psql() {
	version=$(cluster_version || true)
	[ -n "$version" ] || die "no cluster in $data"
	find_bindir "$version"
	[ -s "$dir/port" ] || die "no port recorded in $dir (run: pg.sh start $dir)"
	port=$(cat "$dir/port")
	if [ "$as_root" -eq 1 ]; then
		exec runuser -u "$cluster_user" -- "$bindir/psql" -X -h "$run" -p "$port" -U "$superuser" -d "$DBNAME" "$@"
	fi
	exec "$bindir/psql" -X -h "$run" -p "$port" -U "$superuser" -d "$DBNAME" "$@"
}

case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop ;;
dsn) cmd_dsn ;;
status) cmd_status ;;
psql) cmd_psql "$@" ;;
esac
