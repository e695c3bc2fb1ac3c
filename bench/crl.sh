#!/bin/bash
# Benchmark, not a test: CRLs of 10^4 to 10^6 revoked certificates, signed
# with ECDSA P-256.
#
# Usage: bench/crl.sh [N...]      (from any directory; default 10000 100000 1000000)
#
#   certward   bench/crl_gen sign: the signer's CRL code (workers/signer/crl.c),
#              crl_entries_parse of N wire entries and crl_build (DER with
#              CBB, one signature), timed inside the process; the process's
#              wall time too (PEM loading, reading the entries, writing the
#              CRL)
#   openssl    `openssl ca -gencrl` over an index.txt holding the same N
#              revoked certificates ('R' lines, keyCompromise), the
#              process's wall time (it reads and indexes index.txt, builds an
#              X509_CRL, sorts it, signs, writes PEM)
#
# The N random positive 128-bit serials, revocation times (over the past
# year) and reasons are made once per N by `crl_gen gen`, which writes both
# the wire entries and the index.txt. Both CRLs must verify under the CA
# (`openssl crl -CAfile`, "verify OK") and list the same N serials, or the
# script fails. It prints (stdout) the machine, then per N the medians of
# BENCH_ROUNDS runs: certward in process, certward's process, openssl's
# process, the ratio openssl / certward (processes), and both CRLs' sizes;
# then the goal: 10^6 entries in under 3 s (in process). A missed goal does
# not change the exit status (0).
#
# Environment (from bench/lib.sh; the others it reads are unused here):
#   BENCH_ROUNDS     runs of each contender per N (default 3), in turns
#   BENCH_BUILD_DIR  build directory (default build-bench/, created with
#                    meson setup --buildtype=release -Dtests=false); only
#                    crl_gen is compiled
#   BENCH_REV        build this git revision instead of the working tree
# With 2+ CPUs both contenders run on CPU 0 (taskset).
set -eu

prog=crl.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

sizes=${*:-10000 100000 1000000}
for n in $sizes; do
	case $n in '' | *[!0-9]* | 0*) die "N must be a positive integer, not '$n'" ;; esac
	[ "$n" -le 10000000 ] || die "N above 10^7: $n"
done
goal_n=1000000
goal_ms=3000
command -v openssl >/dev/null || die "openssl (the CLI) is missing: apt-get install openssl"

# --- build: crl_gen only (the rest of the tree is not needed) -------------------

bench_build crl_gen
gen=$build/bench/crl_gen
[ -x "$gen" ] || die "the build did not produce $gen"

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	pin=(taskset -c 0)
	pinning="crl_gen and openssl on CPU 0, one after the other"
else
	pin=()
	pinning="none: one CPU"
fi

# --- the CA, openssl's configuration --------------------------------------------------

mkdir "$tmp/ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca/ca.key" \
	-out "$tmp/ca/ca.pem" -subj "/CN=bench CRL CA" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null ||
	die "openssl req cannot make the CA"
# what certward puts in: authorityKeyIdentifier and cRLNumber; SHA-256;
# unique_subject=no, as every line has the subject /CN=x
cat >"$tmp/ca/ca.cnf" <<EOF
[ ca ]
default_ca = bench
[ bench ]
database = $tmp/ca/index.txt
crlnumber = $tmp/ca/crlnumber
certificate = $tmp/ca/ca.pem
private_key = $tmp/ca/ca.key
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF

ms_since() { # START_NS
	echo "$1 $(date +%s%N)" | awk '{ printf "%.1f", ($2 - $1) / 1e6 }'
}

run_certward() { # N
	local t0 out n parse build total size
	t0=$(date +%s%N)
	out=$("${pin[@]}" "$gen" sign "$tmp/ca/ca.key" "$tmp/ca/ca.pem" "$tmp/entries" "$tmp/cw.crl") ||
		die "crl_gen sign failed (N=$1)"
	proc=$(ms_since "$t0")
	read -r _ n parse build total size <<<"$(echo "$out" | grep '^timed')"
	[ "$n" -eq "$1" ] || die "crl_gen read $n entries, not $1"
	say "  certward: $total ms in process (parse $parse, build and sign $build), $proc ms the process, $size bytes"
	echo "$1 cw_in $total" >>"$tmp/results"
	echo "$1 cw_proc $proc" >>"$tmp/results"
	cw_size=$size
}

run_openssl() { # N
	local t0 ms
	echo 01 >"$tmp/ca/crlnumber"
	t0=$(date +%s%N)
	"${pin[@]}" openssl ca -config "$tmp/ca/ca.cnf" -gencrl -out "$tmp/o.pem" 2>"$tmp/openssl.log" ||
		{ cat "$tmp/openssl.log" >&2; die "openssl ca -gencrl failed (N=$1)"; }
	ms=$(ms_since "$t0")
	say "  openssl ca -gencrl: $ms ms the process"
	echo "$1 openssl $ms" >>"$tmp/results"
}

# check NAME DER N: verifies under the CA and lists N entries; their serials
# (sorted) into DER.serials
check() {
	local out count
	out=$(openssl crl -inform DER -in "$2" -CAfile "$tmp/ca/ca.pem" -noout 2>&1) || die "$1: openssl crl: $out"
	[ "$out" = "verify OK" ] || die "$1: the CRL does not verify: $out"
	openssl crl -inform DER -in "$2" -noout -text | awk '$1 == "Serial" && $2 == "Number:" { print $3 }' |
		LC_ALL=C sort >"$2.serials"
	count=$(wc -l <"$2.serials")
	[ "$count" -eq "$3" ] || die "$1: $count entries in the CRL, not $3"
	say "  $1: verify OK, $count entries"
}

: >"$tmp/results"
: >"$tmp/sizes"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for n in $sizes; do
	say "N=$n: generating the entries and index.txt"
	"$gen" gen "$n" "$tmp/entries" "$tmp/ca/index.txt" || die "crl_gen gen failed"
	for r in $(seq 1 "$rounds"); do
		say "N=$n, round $r of $rounds"
		if [ $((r % 2)) -eq 1 ]; then
			run_certward "$n"
			run_openssl "$n"
		else
			run_openssl "$n"
			run_certward "$n"
		fi
	done
	openssl crl -in "$tmp/o.pem" -outform DER -out "$tmp/o.der" || die "cannot convert openssl's CRL to DER"
	check certward "$tmp/cw.crl" "$n"
	check openssl "$tmp/o.der" "$n"
	cmp -s "$tmp/cw.crl.serials" "$tmp/o.der.serials" || die "N=$n: the two CRLs list different serials"
	echo "$n $cw_size $(stat -c %s "$tmp/o.der")" >>"$tmp/sizes"
	rm -f "$tmp/cw.crl" "$tmp/o.pem" "$tmp/o.der" "$tmp"/*.serials
done

# --- report ---------------------------------------------------------------------

print_machine "$(openssl version | cut -d' ' -f1-2)"
echo "runs:     $rounds per contender and N, in turns, medians; load average before: $load_before"
echo "CRL:      ECDSA P-256 CA, random 128-bit serials, reason keyCompromise on every entry, AKI and CRL number"
echo
awk -v goal_n="$goal_n" -v goal_ms="$goal_ms" -v sizes="$sizes" "$awk_median"'
	FNR == NR { size_cw[$1] = $2; size_o[$1] = $3; next }
	{ k = $1 SUBSEP $2; c[k]++; v[k, c[k]] = $3 }
	END {
		printf "%9s %14s %14s %14s %8s %12s %12s\n", "N", "certward ms", "certward proc", "openssl proc",
			"ratio", "certward B", "openssl B"
		ns = split(sizes, order, " ")
		for (i = 1; i <= ns; i++) {
			n = order[i]
			cin = median(v, n SUBSEP "cw_in", c[n, "cw_in"])
			cpr = median(v, n SUBSEP "cw_proc", c[n, "cw_proc"])
			opr = median(v, n SUBSEP "openssl", c[n, "openssl"])
			printf "%9d %14.1f %14.1f %14.1f %8.1f %12d %12d\n", n, cin, cpr, opr, opr / cpr, size_cw[n], size_o[n]
			if (n == goal_n) goal = cin
		}
		print ""
		print "certward ms: crl_entries_parse + crl_build (CBB, signature) in the process; proc: wall time of"
		print "each whole process (openssl: reading index.txt, building, sorting, signing, writing PEM);"
		print "ratio: openssl proc / certward proc"
		if (goal == "")
			printf "goal: %d entries in under %d ms: not measured (N=%d not run)\n", goal_n, goal_ms, goal_n
		else
			printf "goal: %d entries in under %d ms: %s (%.1f ms)\n", goal_n, goal_ms, (goal < goal_ms ? "yes" : "NO"), goal
	}' "$tmp/sizes" "$tmp/results"
