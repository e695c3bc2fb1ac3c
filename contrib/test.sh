#!/bin/sh
# Builds certward for testing and runs the whole test suite: unit tests,
# integration tests (real PostgreSQL through contrib/pg.sh, real certwardd) and
# the libFuzzer targets, everything under AddressSanitizer + UBSan.
#
# Usage: contrib/test.sh [MESON-TEST-ARGS...]
#   e.g. contrib/test.sh --suite unit
#        contrib/test.sh --timeout-multiplier 3 'unit config'
#
# Steps: contrib/install-deps.sh, contrib/create-users.sh, configure build-test
# (reconfigured when it exists; wiped and set up again if it was configured
# with another compiler), compile, a release build with gcc in
# build-release-check (compile only; skipped when ARGS are given), meson test
# --print-errorlogs ARGS.
#
# build-test is configured with CC=clang -Db_sanitize=address,undefined
# -Db_lundef=false -Dtest_hooks=true -Dfuzz=true, so the fuzz targets are built
# and run as tests (suite "fuzz"). Without clang (it is in install-deps' list)
# it falls back to cc without fuzz targets, and says so.
#
# ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS get defaults below unless already
# set in the environment; LSan suppressions are read from tests/lsan.supp if
# that file exists.
#
# Exit status: 0 when every step passed, else the failing step's status. The
# last line printed is a one-line summary.
set -eu

prog=test.sh
say() { echo "$prog: $*"; }

root=$(cd "$(dirname "$0")/.." && pwd -P) || { echo "$prog: error: cannot find the repository root" >&2; exit 1; }
cd "$root"

builddir=build-test
step="start"
config_desc=""

summary() {
	rc=$?
	if [ "$rc" -eq 0 ]; then
		say "PASS: all tests passed ($builddir: $config_desc)"
	else
		where=""
		case $step in
		"meson test") where="; test log: $builddir/meson-logs/testlog.txt" ;;
		configure | compile) where="; see the output above and $builddir/meson-logs/meson-log.txt" ;;
		esac
		echo "$prog: FAIL: step '$step' exited with status $rc${config_desc:+ ($builddir: $config_desc)}$where" >&2
	fi
	exit "$rc"
}
trap summary EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step="install-deps"
contrib/install-deps.sh
step="create-users"
contrib/create-users.sh

# --- sanitizer runtime options ----------------------------------------------
# halt_on_error: stop at the first report, with the sanitizer's exit status
# (abort_on_error stays 0 so that a failure is an exit code, not SIGABRT).
# detect_leaks: LSan at exit of every process, which is how leaks fail tests.
: "${ASAN_OPTIONS:=halt_on_error=1:abort_on_error=0:detect_leaks=1:print_summary=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1}"
: "${UBSAN_OPTIONS:=halt_on_error=1:abort_on_error=0:print_stacktrace=1:print_summary=1:report_error_type=1}"
if [ -z "${LSAN_OPTIONS:-}" ]; then
	LSAN_OPTIONS="print_suppressions=0"
	if [ -f tests/lsan.supp ]; then
		LSAN_OPTIONS="$LSAN_OPTIONS:suppressions=$root/tests/lsan.supp"
	fi
fi
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
say "ASAN_OPTIONS=$ASAN_OPTIONS"
say "UBSAN_OPTIONS=$UBSAN_OPTIONS"
say "LSAN_OPTIONS=$LSAN_OPTIONS"

# --- configure ----------------------------------------------------------------

step="configure"
if command -v clang >/dev/null 2>&1; then
	CC=clang
	compiler_id=clang
	fuzz=true
else
	say "warning: clang not found; building with cc and without fuzz targets"
	CC=cc
	compiler_id=gcc
	fuzz=false
fi
export CC
config_desc="$CC, address+undefined, test_hooks, fuzz=$fuzz"

# Option values contain no whitespace, so one word-split string is enough.
setup_args="-Db_sanitize=address,undefined -Db_lundef=false -Dtest_hooks=true -Dfuzz=$fuzz"

if [ -f "$builddir/meson-private/coredata.dat" ]; then
	# A build directory keeps the compiler it was set up with; reconfiguring
	# cannot change it.
	if grep -q "^C compiler for the host machine: .*($compiler_id " "$builddir/meson-logs/meson-log.txt" 2>/dev/null; then
		say "reconfiguring $builddir ($config_desc)"
		# shellcheck disable=SC2086 # setup_args holds separate options
		meson setup --reconfigure "$builddir" $setup_args
	else
		say "$builddir was configured with another compiler; wiping it ($config_desc)"
		# shellcheck disable=SC2086
		meson setup --wipe "$builddir" $setup_args
	fi
else
	say "configuring $builddir ($config_desc)"
	# shellcheck disable=SC2086
	meson setup "$builddir" $setup_args
fi

# --- build and test -------------------------------------------------------------

step="compile"
say "compiling $builddir"
meson compile -C "$builddir"

# A release build with gcc sees what the sanitizer build does not: -O3
# warnings such as format-truncation break the packaged and benchmark builds.
step="compile (gcc, release)"
if [ "$#" -eq 0 ] && command -v gcc >/dev/null 2>&1; then
	say "compiling build-release-check (gcc, release, no tests)"
	if [ -f build-release-check/meson-private/coredata.dat ]; then
		CC=gcc meson setup --reconfigure build-release-check --buildtype=release -Dtests=false >/dev/null
	else
		CC=gcc meson setup build-release-check --buildtype=release -Dtests=false >/dev/null
	fi
	meson compile -C build-release-check
fi

step="meson test"
say "running: meson test -C $builddir --print-errorlogs $*"
meson test -C "$builddir" --print-errorlogs "$@"
