#!/bin/bash
# Benchmark, not a test: the REST API's certificate list and get over
# HTTPS/1.1 keep-alive (TLS 1.3), against an inventory of BENCH_CERTS
# (100,000) managed certificates.
#
# Usage: bench/api.sh      (from any directory; as root on Debian 12)
#
#   list   GET /api/v1/certificates?per_page=50 with filters:
#          status=Active&environment=production (about 28% of the rows match),
#          and team_id=<one of 20 teams>&sort=expires_at (about 5%, ordered)
#   get    GET /api/v1/certificates/{id}, over BENCH_IDS random existing ids
#          (h2load -i: each connection walks the same shuffled list)
#
# Each kind is measured with h2load --h1 (keep-alive) at BENCH_CONNECTIONS
# connections (throughput) and at BENCH_LIGHT_CONNECTIONS (latency under a
# light load), BENCH_ROUNDS times in turns, BENCH_SECONDS a run. h2load
# reports no percentiles, so it writes every request's latency to a log file
# (--log-file) and the script computes p50, p99 and the maximum from it.
#
# It prints (stdout) the machine, the data set, then a table: for each kind
# and concurrency, the medians of requests/s, p50 and p99 (ms), the mean time
# the store spent in the operation and in the key lookup (from certward's
# /metrics), and the goal: list p99 under 10 ms, get over 10,000 requests/s.
# Progress, the load time and the CPU use of every process (certward's, and
# PostgreSQL's) during each run go to stderr. Missed goals do not change the
# exit status (0); a failed setup or failed requests do.
#
# What it does: what bench/lib.sh does for bench/http.sh (packages, users,
# release build in build-bench/, private PostgreSQL and certwardd on CPU 0, the
# load generator on the others, everything removed on exit); then it loads the
# inventory straight into PostgreSQL in one transaction (generate_series
# INSERT ... SELECT: 20 teams, 200 owners, 3 issuers, 2 profiles, 3 renewal
# policies, 50 agents, 200 deployment targets, BENCH_CERTS certificates with
# a skewed spread of owners, status, environment, issuer and expiry, about 30%
# of them linked to one or two targets), VACUUM ANALYZE (what autovacuum would
# have done by the time such an inventory is queried), and a viewer API key.
#
# Environment (besides bench/lib.sh's BENCH_SECONDS, BENCH_CONNECTIONS,
# BENCH_ROUNDS, BENCH_BUILD_DIR, BENCH_REV):
#   BENCH_CERTS              certificates to load (default 100000)
#   BENCH_IDS                random ids for the get runs (default 10000)
#   BENCH_LIGHT_CONNECTIONS  connections of the light-load runs (default 4;
#                            0: none)
#   BENCH_PROTOCOLS          h1, h2 or "h1 h2" (default h1): h2 runs h2load
#                            over HTTP/2, one stream at a time per connection
#   BENCH_KINDS              what to measure (default "list-filter list-sorted get")
#   BENCH_SQL                SQL run as superuser after the load, before VACUUM
#                            ANALYZE: to measure a proposed index, say
#                            (BENCH_SQL="CREATE INDEX ... ON managed_certificates ...")
#   CERTWARD_STORE_CACHE_BYTES=0 (or any other certward key as CERTWARD_<SECTION>_<KEY>)
#                            reaches certwardd: with 0, every list and get goes to
#                            PostgreSQL (the store's read cache off)
#   BENCH_HOLD               when set: after loading, print the api's URL, the
#                            key and how to reach PostgreSQL, and wait until
#                            interrupted (for profiling by hand); no runs
set -eu

prog=api.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ncerts=${BENCH_CERTS:-100000}
nids=${BENCH_IDS:-10000}
light=${BENCH_LIGHT_CONNECTIONS:-4}
protocols=${BENCH_PROTOCOLS:-h1}
kinds=${BENCH_KINDS:-list-filter list-sorted get}
extra_sql=${BENCH_SQL:-}
for v in "$ncerts" "$nids"; do
	case $v in '' | *[!0-9]* | 0) die "BENCH_CERTS and BENCH_IDS must be positive integers" ;; esac
done
case $light in '' | *[!0-9]*) die "BENCH_LIGHT_CONNECTIONS must be a number" ;; esac
for p in $protocols; do
	case $p in h1 | h2) ;; *) die "BENCH_PROTOCOLS: h1, h2 or \"h1 h2\", not $p" ;; esac
done
for k in $kinds; do
	case $k in list-filter | list-sorted | get) ;; *) die "BENCH_KINDS: list-filter, list-sorted, get; not $k" ;; esac
done

# Goals (issue 4): list p99 under 10 ms; get over 10,000 requests/s.
goal_list_p99_ms=10
goal_get_rps=10000

bench_packages h2load:nghttp2-client
bench_build
bench_cpus ""
bench_start_certward

bench_wait_ready
show_processes certward "$cw_pid"
say "PostgreSQL: postmaster PID $pg_pid (CPU $(taskset -pc "$pg_pid" | sed 's/.*: //'))"

# --- the inventory ------------------------------------------------------------------

psql_q() { contrib/pg.sh psql "$tmp/pg" -q -v ON_ERROR_STOP=1 "$@"; }

# a viewer key, stored as the api stores one: salt, SHA-256(salt || secret)
read -r key_prefix key_secret key_salt key_hash < <(python3 -c '
import hashlib, os
secret, salt = os.urandom(32), os.urandom(16)
print("cw_" + os.urandom(6).hex(), secret.hex(), salt.hex(), hashlib.sha256(salt + secret).hexdigest())')
api_key=${key_prefix}_$key_secret

say "loading $ncerts certificates in one transaction"
t0=$(date +%s.%N)
psql_q -1 -v n="$ncerts" -f - >&2 <<EOF
SELECT setseed(0.4242) \gset
INSERT INTO teams (id, name)
SELECT format('t-bench-%s', lpad(i::text, 2, '0')), format('Team %s', i) FROM generate_series(1, 20) i;
INSERT INTO owners (id, name, email, team_id)
SELECT format('o-bench-%s', lpad(i::text, 3, '0')), format('Owner %s', i), format('owner%s@example.com', i),
       format('t-bench-%s', lpad((i % 20 + 1)::text, 2, '0'))
  FROM generate_series(1, 200) i;
INSERT INTO issuers (id, name, type, config) VALUES
	('iss-bench-acme', 'Bench ACME', 'ACME', '{"directory_url": "https://acme.example/directory"}'),
	('iss-bench-vault', 'Bench Vault', 'VaultPKI', '{"address": "https://vault.example:8200"}'),
	('iss-bench-local', 'Bench local CA', 'Local', '{}');
INSERT INTO certificate_profiles (id, name, max_ttl_seconds) VALUES
	('prof-bench-web', 'Bench web', 7776000), ('prof-bench-internal', 'Bench internal', 31536000);
INSERT INTO renewal_policies (id, name, renewal_window_days, auto_renew, max_retries) VALUES
	('rp-bench-30d', 'Bench 30 days', 30, true, 3), ('rp-bench-14d', 'Bench 14 days', 14, true, 5),
	('rp-bench-manual', 'Bench manual', 30, false, 0);
INSERT INTO agents (id, name, hostname, status)
SELECT format('agent-bench-%s', lpad(i::text, 2, '0')), format('agent %s', i), format('host%s.example.com', i), 'Online'
  FROM generate_series(1, 50) i;
INSERT INTO deployment_targets (id, name, type, agent_id)
SELECT format('tgt-bench-%s', lpad(i::text, 3, '0')), format('target %s', i),
       (ARRAY['NGINX', 'Apache', 'HAProxy', 'Envoy'])[i % 4 + 1], format('agent-bench-%s', lpad((i % 50 + 1)::text, 2, '0'))
  FROM generate_series(1, 200) i;

-- one row of random numbers per certificate, drawn once
CREATE TEMP TABLE g ON COMMIT DROP AS
SELECT i, random() AS r_env, random() AS r_status, random() AS r_owner, random() AS r_issuer, random() AS r_exp,
       now() - random() * interval '730 days' AS created
  FROM generate_series(1, :n) i;
INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id, issuer_id,
	renewal_policy_id, certificate_profile_id, status, expires_at, tags, last_renewal_at, revoked_at,
	revocation_reason, archived_at, created_at, updated_at)
SELECT 'mc-' || md5(i::text), 'svc-' || i, cn, ARRAY[cn, 'www.' || cn], env,
       format('o-bench-%s', lpad(o::text, 3, '0')), format('t-bench-%s', lpad((o % 20 + 1)::text, 2, '0')),
       CASE WHEN r_issuer < 0.6 THEN 'iss-bench-acme' WHEN r_issuer < 0.9 THEN 'iss-bench-vault' ELSE 'iss-bench-local' END,
       (ARRAY['rp-bench-30d', 'rp-bench-14d', 'rp-bench-manual'])[i % 3 + 1],
       (ARRAY[NULL, 'prof-bench-web', 'prof-bench-web', 'prof-bench-internal'])[i % 4 + 1],
       st,
       CASE st WHEN 'Pending' THEN NULL
	       WHEN 'Expired' THEN now() - r_exp * interval '90 days'
	       WHEN 'Expiring' THEN now() + r_exp * interval '30 days'
	       ELSE now() + interval '30 days' + r_exp * interval '365 days' END,
       jsonb_build_object('app', 'app-' || (i % 1000), 'cost_center', 'cc-' || (i % 37)),
       CASE WHEN st IN ('Active', 'Expiring') AND i % 2 = 0 THEN created + interval '1 day' END,
       CASE WHEN st = 'Revoked' THEN created + interval '2 days' END,
       CASE WHEN st = 'Revoked' THEN 'superseded' END,
       CASE WHEN st = 'Archived' THEN created + interval '3 days' END,
       created, created
  FROM (SELECT g.*, format('svc%s.%s.example.com', i, env) AS cn
	  FROM (SELECT g.*,
		       CASE WHEN r_env < 0.40 THEN 'production' WHEN r_env < 0.70 THEN 'staging'
			    WHEN r_env < 0.90 THEN 'development' ELSE 'qa' END AS env,
		       CASE WHEN r_status < 0.70 THEN 'Active' WHEN r_status < 0.80 THEN 'Expiring'
			    WHEN r_status < 0.85 THEN 'Expired' WHEN r_status < 0.90 THEN 'Pending'
			    WHEN r_status < 0.93 THEN 'RenewalInProgress' WHEN r_status < 0.95 THEN 'Failed'
			    WHEN r_status < 0.98 THEN 'Revoked' ELSE 'Archived' END AS st,
		       1 + floor(200 * r_owner * r_owner)::int AS o -- a few owners hold most
		  FROM g) g) x;
-- targets: 30% of the certificates on one, a third of those on a second
INSERT INTO certificate_targets (certificate_id, target_id)
SELECT 'mc-' || md5(i::text), format('tgt-bench-%s', lpad((i % 200 + 1)::text, 3, '0'))
  FROM generate_series(1, :n) i WHERE i % 10 < 3
UNION
SELECT 'mc-' || md5(i::text), format('tgt-bench-%s', lpad(((i * 7 + 3) % 200 + 1)::text, 3, '0'))
  FROM generate_series(1, :n) i WHERE i % 10 = 0;
INSERT INTO api_keys (name, role, salt, key_hash, key_prefix)
VALUES ('bench viewer', 'viewer', '\\x$key_salt', '\\x$key_hash', '$key_prefix');
EOF
t1=$(date +%s.%N)
if [ -n "$extra_sql" ]; then
	say "BENCH_SQL: $extra_sql"
	psql_q -c "$extra_sql" >&2
fi
psql_q -c 'VACUUM ANALYZE' >&2
t2=$(date +%s.%N)
load_s=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
analyze_s=$(echo "$t1 $t2" | awk '{ printf "%.1f", $2 - $1 }') # BENCH_SQL included
IFS='|' read -r n_loaded n_links db_size < <(psql_q -At -c "SELECT (SELECT count(*) FROM managed_certificates),
	(SELECT count(*) FROM certificate_targets), pg_size_pretty(pg_database_size(current_database()))")
say "loaded $n_loaded certificates and $n_links target links in $load_s s (one transaction), VACUUM ANALYZE $analyze_s s; database $db_size"
[ "$n_loaded" -eq "$ncerts" ] || die "expected $ncerts certificates, found $n_loaded"

if [ -n "${BENCH_HOLD:-}" ]; then
	say "holding (BENCH_HOLD): api https://127.0.0.1:$cw_port, key $api_key; psql: contrib/pg.sh psql $tmp/pg; Ctrl-C, or kill -TERM $$ (SIGINT is ignored when started in the background), cleans up"
	while :; do sleep 1; done
fi

# --- what is measured ---------------------------------------------------------------

base=https://127.0.0.1:$cw_port
team=t-bench-07
declare -A kind_path kind_label
kind_path[list-filter]="/api/v1/certificates?per_page=50&status=Active&environment=production"
kind_label[list-filter]="list ?status=Active&environment=production"
kind_path[list-sorted]="/api/v1/certificates?per_page=50&team_id=$team&sort=expires_at"
kind_label[list-sorted]="list ?team_id=$team&sort=expires_at"

contrib/pg.sh psql "$tmp/pg" -At -c "SELECT id FROM managed_certificates ORDER BY random() LIMIT $nids" |
	sed "s|^|$base/api/v1/certificates/|" >"$tmp/get.uris"
[ "$(wc -l <"$tmp/get.uris")" -eq "$nids" ] || die "could not pick $nids certificate ids"
kind_label[get]="get /certificates/{id}, $nids ids"

# each list answers 200 with 50 certificates and its total
for k in list-filter list-sorted; do
	out=$(curl -ksf -H "Authorization: Bearer $api_key" "$base${kind_path[$k]}") ||
		die "GET ${kind_path[$k]} failed"
	read -r n total bytes < <(echo "$out" | python3 -c 'import json, sys; s = sys.stdin.read(); d = json.loads(s); print(len(d["data"]), d["total"], len(s))')
	[ "$n" -eq 50 ] || die "GET ${kind_path[$k]} answered $n certificates, not 50"
	kind_label[$k]="${kind_label[$k]} (total $total)"
	say "GET ${kind_path[$k]}: 50 of $total certificates, $bytes bytes"
done
curl -ksf -o /dev/null -H "Authorization: Bearer $api_key" "$(head -n 1 "$tmp/get.uris")" || die "GET $(head -n 1 "$tmp/get.uris") failed"

# --- measurements ---------------------------------------------------------------------

# mean milliseconds and count of store operation OP during the last run
# (/metrics deltas)
store_mean_ms() {
	awk -v op="$1" '
		$1 ~ /^certward_store_operation_duration_seconds_(sum|count)\{/ && index($1, "op=\"" op "\"") {
			k = ($1 ~ /_sum\{/) ? "s" : "c"; v[FILENAME, k] += $NF
		}
		END {
			c = v[ARGV[2], "c"] - v[ARGV[1], "c"]
			m = c > 0 ? (v[ARGV[2], "s"] - v[ARGV[1], "s"]) / c * 1000 : 0
			printf "%.2f %d\n", m, c
		}' "$tmp/metrics.before" "$tmp/metrics.after"
}

# the store's read cache during the last run: "hits% entries MB" (hits
# among lookups; entries and bytes at the end)
cache_figures() {
	awk '
		$1 ~ /^certward_store_cache_(hits|misses)_total\{/ { k = ($1 ~ /hits/) ? "h" : "m"; v[FILENAME, k] += $NF }
		$1 ~ /^certward_store_cache_entries\{/ { e = $NF }
		$1 ~ /^certward_store_cache_bytes\{/ { b = $NF }
		END {
			h = v[ARGV[2], "h"] - v[ARGV[1], "h"]; m = v[ARGV[2], "m"] - v[ARGV[1], "m"]
			printf "%.0f%% %d %.1f\n", (h + m > 0 ? 100 * h / (h + m) : 0), e, b / 1e6
		}' "$tmp/metrics.before" "$tmp/metrics.after"
}

# measure KIND PROTO CONNECTIONS
: >"$tmp/results"
failed_runs=""
measure() {
	local kind=$1 proto=$2 c=$3 out=$tmp/h2load.out log=$tmp/h2load.log req op lat line bad
	local -a args=(h2load -t "$((load_ncpu < c ? load_ncpu : c))" -c "$c" -D "$seconds"
		-H "Authorization: Bearer $api_key" --log-file="$log")
	[ "$proto" = h2 ] || args+=(--h1)
	if [ "$kind" = get ]; then
		args+=(-i "$tmp/get.uris")
		op=managed_certificates.get
	else
		args+=("$base${kind_path[$kind]}")
		op=managed_certificates.list
	fi
	mode="$kind/$proto/$c"
	say "$kind, $proto, $c connections: ${args[*]//$api_key/(key)}"
	curl -ksf "$base/metrics" >"$tmp/metrics.before"
	rm -f "$log"
	run_load certward "$cw_pid $pg_pid" "$out" "${args[@]}"
	curl -ksf "$base/metrics" >"$tmp/metrics.after"
	line=$(grep '^finished in' "$out") || { cat "$out" >&2; die "no result from h2load ($kind)"; }
	rps=$(echo "$line" | sed 's/.*, \([0-9.]*\) req\/s.*/\1/')
	req=$(grep '^requests:' "$out")
	# requests that failed or got another status than 2xx: counted, shown,
	# and the exit status is 1 (after the table)
	bad=$(echo "$req" | awk '{ print $10 + $12 + $14 }') # failed (non-2xx included), errored, timeout
	if [ "$bad" -gt 0 ]; then
		warn "$kind: $req; $(grep '^status codes:' "$out")"
		failed_runs="$failed_runs $mode"
	fi
	grep -q "^Application protocol: $( [ "$proto" = h2 ] && echo h2 || echo http/1.1)" "$out" ||
		{ cat "$out" >&2; die "h2load did not speak $proto"; }
	# p50, p99 and max of the third column (microseconds), in ms
	lat=$(cut -f 3 "$log" | sort -n | awk '{ v[NR] = $1 }
		END { printf "%.2f %.2f %.2f %d\n", v[int(NR * 0.50 + 0.999999)] / 1000, v[int(NR * 0.99 + 0.999999)] / 1000, v[NR] / 1000, NR }')
	read -r p50 p99 max nlog <<<"$lat"
	read -r s_op n_op < <(store_mean_ms "$op")
	read -r s_key n_key < <(store_mean_ms apikeys.lookup)
	keys_per_req=$(awk -v k="$n_key" -v o="$n_op" 'BEGIN { printf "%.2f", o ? k / o : 0 }')
	read -r c_hits c_entries c_mb < <(cache_figures)
	say "  $rps req/s; p50 $p50 ms, p99 $p99 ms, max $max ms ($nlog requests logged); store: $n_op $op, mean $s_op ms; $n_key apikeys.lookup ($keys_per_req a request), mean $s_key ms; read cache: $c_hits of lookups hit, $c_entries entries, $c_mb MB"
	echo "$c_entries $c_mb" >"$tmp/cache.last"
	echo "$kind $proto $c $rps $p50 $p99 $max $s_op $s_key $bad" >>"$tmp/results"
}

runs=""
for p in $protocols; do
	for k in $kinds; do
		runs="$runs $k:$p:$conns"
		[ "$light" -eq 0 ] || [ "$light" -eq "$conns" ] || runs="$runs $k:$p:$light"
	done
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
	say "round $r of $rounds"
	# in turns: every other round backwards (this machine's speed drifts)
	list=$runs
	[ $((r % 2)) -eq 1 ] || list=$(echo "$runs" | tr ' ' '\n' | tac | tr '\n' ' ')
	for x in $list; do
		IFS=: read -r k p c <<<"$x"
		measure "$k" "$p" "$c"
	done
done

# --- report -------------------------------------------------------------------------

print_machine "$(h2load --version | head -n1)"
echo "data:     $n_loaded certificates, $n_links target links, database $db_size; loaded in $load_s s (one transaction), VACUUM ANALYZE $analyze_s s"
echo "load:     h2load, keep-alive, ${seconds}s a run, $rounds runs per row, $conns$([ "$light" -eq 0 ] || echo " and $light") connections; load average before the runs: $load_before"
[ -z "$extra_sql" ] || echo "sql:      $extra_sql (after the load)"
echo "auth:     a viewer key; the store's apikeys.lookup ran $keys_per_req times a request in the last run (1: no key cache in the api)"
echo
for k in $kinds; do echo "$k ${kind_label[$k]}"; done | awk '{ k = $1; $1 = ""; printf "%-12s%s\n", k ":", $0 }'
echo
awk -v gl="$goal_list_p99_ms" -v gg="$goal_get_rps" -v rounds="$rounds" -v conns="$conns" "$awk_median"'
	{
		k = $1 SUBSEP $2 SUBSEP $3; i = ++n[k]
		if (i == 1) order[++nk] = k
		rps[k, i] = $4; p50[k, i] = $5; p99[k, i] = $6; mx[k, i] = $7; sop[k, i] = $8; skey[k, i] = $9; bad[k] += $10
		if (i == 1 || $4 < lo[k]) lo[k] = $4
		if (i == 1 || $4 > hi[k]) hi[k] = $4
	}
	END {
		printf "%-12s %5s %5s %9s %8s %8s %8s %9s %9s %7s  %-18s %s\n", "kind", "proto", "conns", "req/s",
			"p50 ms", "p99 ms", "max ms", "store op", "key op", "failed", "goal", "met"
		for (j = 1; j <= nk; j++) {
			k = order[j]; split(k, kk, SUBSEP)
			r = median(rps, k, n[k]); q = median(p99, k, n[k])
			goal = ""; met = ""
			if (kk[1] ~ /^list/) { goal = "p99 < " gl " ms"; met = q < gl ? "yes" : "NO" }
			else if (kk[3] == conns) { goal = "> " gg " req/s"; met = r > gg ? "yes" : "NO" }
			printf "%-12s %5s %5d %9.0f %8.2f %8.2f %8.2f %9.2f %9.2f %7d  %-18s %s\n", kk[1], kk[2], kk[3], r,
				median(p50, k, n[k]), q, median(mx, k, n[k]), median(sop, k, n[k]), median(skey, k, n[k]), bad[k], goal, met
			spread = spread sprintf("%s/%s/%d %.0f-%.0f; ", kk[1], kk[2], kk[3], lo[k], hi[k])
		}
		print ""
		sub(/; $/, "", spread)
		printf "medians of %d runs each; requests/s ranged: %s\n", rounds, spread
		print "store op, key op: mean ms the store spent in managed_certificates.list/get and in"
		print "apikeys.lookup per call (its /metrics), PostgreSQL included; failed: requests over all"
		print "runs that failed or were answered with another status than 2xx (503: the store'\''s"
		print "queue_timeout, a call waited over 1 s for a PostgreSQL connection)."
	}' "$tmp/results"
# the read cache as the last run left it (its memory; 0 entries: off)
[ ! -s "$tmp/cache.last" ] || read -r c_entries c_mb <"$tmp/cache.last"
[ ! -s "$tmp/cache.last" ] || echo "store read cache after the last run: $c_entries entries, $c_mb MB (store.cache_bytes bounds it; per-run hit rates on stderr)"
[ -z "$disturbed" ] || echo "DISTURBED: other activity on the machine during the runs of: $(echo "$disturbed" | tr ' ' '\n' | sed 's|/certward$||' | sort | uniq -c | awk 'NF == 2 { printf "%s%s (%d of %d)", sep, $2, $1, rounds; sep = ", " }' rounds="$rounds") (see the CPU lines on stderr)"
[ -z "$failed_runs" ] || die "failed requests or answers other than 2xx in:$failed_runs"
