#!/bin/bash
# Benchmark, not a test: the scheduler's renewal scan over 10^6 certificates.
#
# Usage: bench/scheduler.sh [CERTIFICATES [DUE]]   (default 1000000 10000)
#
# A private PostgreSQL (contrib/pg.sh) gets certward's schema from certwardd
# (its store applies the migrations; certwardd is stopped again so that its
# own scheduler does not scan meanwhile), then CERTIFICATES managed
# certificates with one version each, DUE of them inside their renewal
# window (renew_at passed), the others months away; every certificate has
# the same automatic renewal policy. Then it times, through psql:
#
#   scan          the store operation scheduler.renewal_scan (its SQL taken
#                 from schema/store_ops.def, PREPAREd, run with the batch
#                 DUE): DUE Renewal jobs, DUE certificates RenewalInProgress,
#                 DUE audit events, in one statement
#   scan again    the same right after: nothing is due any more (every due
#                 certificate has its job), the cost of a run that finds
#                 nothing while DUE renewals are under way
#
# and then, through certwardd, the DUE renewal jobs dispatched and run by
# its scheduler ("jobs dispatched per second" below).
#
# BENCH_ROUNDS times each (the jobs are removed between rounds), and prints
# the medians; then the goal: the scan under 1 s. A missed goal does not
# change the exit status (0).
#
# Environment (from bench/lib.sh; the others it reads are unused here):
#   BENCH_ROUNDS     rounds (default 3)
#   BENCH_BUILD_DIR  build directory (default build-bench/, created with
#                    meson setup --buildtype=release -Dtests=false)
#   BENCH_REV        build this git revision instead of the working tree
#   BENCH_JOB_CONCURRENCY  scheduler.job_concurrency of the dispatch part (default 32)
set -eu

prog=scheduler.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

total=${1:-1000000}
due=${2:-10000}
for n in "$total" "$due"; do
	case $n in '' | *[!0-9]* | 0*) die "counts must be positive integers, not '$n'" ;; esac
done
[ "$due" -le "$total" ] || die "DUE ($due) is above CERTIFICATES ($total)"
[ "$total" -le 10000000 ] || die "CERTIFICATES above 10^7: $total"
goal_ms=1000
command -v psql >/dev/null || die "psql is missing: apt-get install postgresql-client"

bench_build
bench_cpus
bench_start_certward
bench_wait_ready
say "stopping certwardd: the schema is in place, its scheduler would scan by itself"
stop_server certwardd "$cw_pid"
cw_pid=""

sql() {
	if [ "$as_root" -eq 1 ]; then
		runuser -u certward -- psql "$dsn" -qAtX -v ON_ERROR_STOP=1 "$@"
	else
		psql "$dsn" -qAtX -v ON_ERROR_STOP=1 "$@"
	fi
}

# the statement the store runs, from the catalogue
python3 - "$src/schema/store_ops.def" scheduler.renewal_scan >"$tmp/scan.sql" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
start = text.index('STORE_WRITE("%s"' % sys.argv[2])
body = text[start:text.index("\n\n", start)]
literals = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
# name, tables, then the statement's pieces
print(bytes("".join(literals[2:]), "utf-8").decode("unicode_escape"))
EOF
grep -q 'INSERT INTO jobs' "$tmp/scan.sql" || die "scheduler.renewal_scan not found in schema/store_ops.def"

say "filling: $total certificates, $due of them due"
t0=$(date +%s)
sql <<EOF
INSERT INTO teams (name) VALUES ('bench');
INSERT INTO owners (name, email, team_id) SELECT 'bench', 'bench@example.com', id FROM teams;
INSERT INTO issuers (name, type) VALUES ('bench-local', 'Local');
INSERT INTO renewal_policies (name, max_retries) VALUES ('bench', 2);
-- one transaction (one now()); expires_at and renew_at written with the
-- rows, as the versions' trigger (disabled meanwhile) would set them
BEGIN;
INSERT INTO managed_certificates (name, common_name, owner_id, team_id, issuer_id, renewal_policy_id, status,
	expires_at, renew_at)
SELECT 'c' || i, 'c' || i || '.example.internal', o.id, o.team_id, s.id, p.id, 'Active', t.na,
	cw_renew_at(t.nb, t.na, p.renewal_window_days)
FROM generate_series(1, $total) i, owners o, issuers s, renewal_policies p,
	LATERAL (SELECT now() - interval '80 days' AS nb,
		now() + CASE WHEN i <= $due THEN interval '10 days' ELSE interval '60 days' END AS na) t;
ALTER TABLE certificate_versions DISABLE TRIGGER certificate_versions_renew_at;
INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, fingerprint_sha256, pem_chain)
SELECT m.id, to_hex(row_number() OVER ()), now() - interval '80 days', m.expires_at, md5(m.id) || md5(m.id || 'x'),
	'bench'
FROM managed_certificates m;
ALTER TABLE certificate_versions ENABLE TRIGGER certificate_versions_renew_at;
COMMIT;
VACUUM ANALYZE managed_certificates;
VACUUM ANALYZE certificate_versions;
EOF
say "filled in $(($(date +%s) - t0)) s"
[ "$(sql -c "SELECT count(*) FROM managed_certificates WHERE renew_at <= now()")" -eq "$due" ] ||
	die "the fill does not have $due certificates due"

# one round: the scan, then the scan again; prints "MS_SCAN JOBS MS_AGAIN JOBS_AGAIN"
round() {
	{
		echo "PREPARE scan(int) AS $(cat "$tmp/scan.sql");"
		echo '\timing on'
		echo "EXECUTE scan($due);"
		echo "EXECUTE scan($due);"
	} | sql 2>&1 | awk '
		/^\{/ { n = $0; sub(/.*"jobs" *: */, "", n); sub(/[,}].*/, "", n); jobs[++j] = n }
		/^Time:/ { ms[++t] = $2 }
		END { print ms[1], jobs[1], ms[2], jobs[2] }'
}

reset() {
	sql <<EOF
-- the audit trail is append-only by design: the bench's rows stay; jobs go
DELETE FROM jobs;
UPDATE managed_certificates SET status = 'Active' WHERE status = 'RenewalInProgress';
VACUUM ANALYZE jobs;
VACUUM ANALYZE managed_certificates;
EOF
}

: >"$tmp/results"
for r in $(seq 1 "$rounds"); do
	read -r scan_ms jobs again_ms again_jobs <<<"$(round)"
	[ "$jobs" = "$due" ] || die "round $r: the scan made ${jobs:-no} jobs, not $due"
	[ "$again_jobs" = 0 ] || die "round $r: the second scan made $again_jobs jobs"
	say "round $r: scan $scan_ms ms ($jobs jobs), again $again_ms ms (0 jobs)"
	echo "$scan_ms $again_ms" >>"$tmp/results"
	[ "$r" -eq "$rounds" ] || reset
done

# where the time goes: the scan once more under EXPLAIN ANALYZE (it leaves
# the jobs Pending as a round does)
reset
{
	echo "PREPARE scan(int) AS $(cat "$tmp/scan.sql");"
	echo "EXPLAIN (ANALYZE) EXECUTE scan($due);"
} | sql >"$tmp/explain.txt"
find_ms=$(awk '/CTE due/ { getline; if (match($0, /actual time=[0-9.]+[.][.][0-9.]+/)) {
	s = substr($0, RSTART, RLENGTH); sub(/.*[.][.]/, "", s); print s; exit } }' "$tmp/explain.txt")
triggers=$(awk '/^Trigger/ && !/cw_table_changed/ { sub(/^Trigger (for constraint )?/, ""); sub(/: time=/, " "); sub(/ calls=/, " ms, calls ");
	printf "%s%s", (n++ ? "; " : ""), $0 }' "$tmp/explain.txt")

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
scan_med=$(cut -d' ' -f1 "$tmp/results" | median)
again_med=$(cut -d' ' -f2 "$tmp/results" | median)

echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), PostgreSQL $(sql -c 'SHOW server_version')"
echo "source: $source ($buildtype); pinning: $pinning"
echo "renewal scan over $total certificates, $due due (medians of $rounds rounds):"
echo "  scan (makes $due Renewal jobs, audit events, statuses): $scan_med ms"
echo "  scan again (nothing due, $due renewals under way):      $again_med ms"
echo "  under EXPLAIN ANALYZE: finding the $due due certificates $find_ms ms; per-row triggers of the writes: $triggers"
if awk -v a="$scan_med" -v g="$goal_ms" 'BEGIN { exit !(a < g) }'; then
	echo "goal: the scan under $goal_ms ms: met"
else
	echo "goal: the scan under $goal_ms ms: not met"
fi

# ---- jobs dispatched per second ----
# The scan's last round left DUE Renewal jobs Pending. Each due certificate
# gets a newest version with a CSR (one P-256 key for all, made by openssl),
# so that the scheduler renews it itself (the CSR signed again by the
# signer, the version recorded, the job Completed: docs/renewal.md "Jobs");
# certwardd starts again with its dispatch every 50 ms and
# BENCH_JOB_CONCURRENCY (default 32) jobs at once. Timed from the first
# claim to the last completion (jobs.started_at, jobs.completed_at).
job_concurrency=${BENCH_JOB_CONCURRENCY:-32}
csr=$(openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout /dev/null \
	-subj /CN=bench.example.internal 2>/dev/null) || die "openssl req failed"
sql <<EOF
INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, fingerprint_sha256, pem_chain,
	csr_pem, key_algorithm, key_size)
SELECT j.certificate_id, 'b' || to_hex(row_number() OVER ()), now() - interval '80 days', now() + interval '10 days',
	md5(j.certificate_id || 'csr') || md5(j.certificate_id || 'y'), 'bench', '$csr', 'ECDSA', 256
FROM jobs j WHERE j.status = 'Pending';
VACUUM ANALYZE certificate_versions;
EOF
pending=$(sql -c "SELECT count(*) FROM jobs WHERE status = 'Pending'")
[ "$pending" -eq "$due" ] || die "$pending jobs Pending, not $due"
printf 'scheduler:\n  dispatch_interval: 50ms\n  job_concurrency: %s\n' "$job_concurrency" >>"$tmp/certward.yml"
say "starting certwardd again: $due renewals to dispatch, $job_concurrency at once"
"${pin_server[@]}" "$build/certwardd" -c "$tmp/certward.yml" </dev/null >"$tmp/certwardd.out" 2>&1 &
cw_pid=$!
i=0
while [ "$(sql -c "SELECT count(*) FROM jobs WHERE status IN ('Pending', 'Running')")" -gt 0 ]; do
	kill -0 "$cw_pid" 2>/dev/null || { log_tail "$tmp/certwardd.out" "$tmp"/log/*.log; die "certwardd exited"; }
	i=$((i + 1))
	[ "$i" -le 3000 ] || die "the jobs are not done after 10 minutes"
	sleep 0.2
done
read -r completed failed secs <<<"$(sql -F ' ' -c "SELECT count(*) FILTER (WHERE status = 'Completed'),
	count(*) FILTER (WHERE status = 'Failed'), round(extract(epoch FROM max(completed_at) - min(started_at))::numeric, 2)
	FROM jobs")"
[ "$completed" -eq "$due" ] || die "$completed jobs Completed, $failed Failed, of $due"
echo "jobs dispatched: $due renewals (signed, recorded, Completed) in $secs s, $job_concurrency at once:" \
	"$(awk -v n="$due" -v s="$secs" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.001) }') jobs/s"
