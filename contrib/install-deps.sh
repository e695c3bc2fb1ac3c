#!/bin/sh
# Installs every Debian package certward needs to build, run and test.
# Idempotent: when everything is present it changes nothing and says so.
set -eu

PACKAGES="
build-essential meson ninja-build pkg-config clang lld
libuv1-dev android-libboringssl-dev libpq-dev libnghttp2-dev
libhttp-parser-dev libjansson-dev libyaml-dev libseccomp-dev
libcriterion-dev libfuzzer-14-dev libclang-rt-14-dev
postgresql postgresql-contrib openssl curl procps psmisc util-linux
python3 python3-yaml python3-aiosmtpd prometheus
nginx haproxy
softhsm2 opensc libp11-kit-dev
dnsutils knot
pebble
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run this script as root to install them" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Packages such as postgresql, prometheus, nginx and haproxy (deployment
# targets of the agent's tests) start a system service when
# installed; certward runs its own instances, so keep those from starting
# (policy-rc.d, see invoke-rc.d(8)) unless the machine already has a policy.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
if [ "$own_policy" -eq 1 ]; then
	rm -f "$policy"
	trap - EXIT
fi
echo "install-deps: done"
