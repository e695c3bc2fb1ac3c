#!/bin/sh
# Usage: contrib/ensure-traversable.sh USER PATH
# Makes every directory from / down to PATH traversable by USER, adding o+x
# (search, not listing) only on the directories where USER is refused today.
# Top-down, so that each check only reflects the directory being looked at.
# Used by pg.sh and quickstart.sh when they run as root and hand directories
# to the postgres, certward and certward-signer users.
set -eu

prog=ensure-traversable
die() { echo "$prog: error: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 USER PATH"
user=$1
target=$2

traverse_one() {
	runuser -u "$user" -- test -x "$1" 2>/dev/null && return 0
	chmod o+x "$1" || die "cannot add search permission to $1"
	echo "$prog: added search permission (o+x) to $1 so that user $user can reach $target" >&2
	runuser -u "$user" -- test -x "$1" 2>/dev/null ||
		die "user $user still cannot traverse $1 (group permissions or an ACL deny it); fix it by hand"
}

path=
rest=${target#/}
traverse_one /
while [ -n "$rest" ]; do
	comp=${rest%%/*}
	case $rest in
	*/*) rest=${rest#*/} ;;
	*) rest= ;;
	esac
	[ -n "$comp" ] || continue
	path=$path/$comp
	traverse_one "$path"
done
