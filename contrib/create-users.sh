#!/bin/sh
# Creates the system users certward's workers drop to when certwardd starts as
# root: `certward` (every worker but the signer) and `certward-signer` (the
# signer, so that no other worker can read CA keys). Each gets its own group, no
# login shell and no home directory.
#
# Usage: contrib/create-users.sh
#
# Idempotent: users that already exist are left alone. When not run as root it
# changes nothing and exits 0 (non-root certwardd runs everything as the
# invoking user).
set -eu

prog=create-users
USERS="certward certward-signer"

say() { echo "$prog: $*"; }
die() { echo "$prog: error: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	for u in $USERS; do
		if getent passwd "$u" >/dev/null; then
			say "user $u exists"
		else
			say "user $u does not exist; not root, so not creating it (only needed when certwardd runs as root)"
		fi
	done
	exit 0
fi

command -v useradd >/dev/null || die "useradd not found (Debian package passwd)"

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false

for u in $USERS; do
	if getent passwd "$u" >/dev/null; then
		say "user $u exists"
		continue
	fi
	# A group left over from an earlier, partial removal is reused rather than
	# making useradd fail on --user-group.
	if getent group "$u" >/dev/null; then
		group_opt="--gid $u"
	else
		group_opt="--user-group"
	fi
	# shellcheck disable=SC2086 # group_opt is two words on purpose
	useradd --system $group_opt --no-create-home --home-dir /nonexistent \
		--shell "$nologin" --comment "certward service ($u)" "$u" ||
		die "could not create user $u"
	say "created system user $u ($(id "$u"))"
done
