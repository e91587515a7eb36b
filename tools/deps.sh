#!/bin/sh
# Install the Debian packages weft builds with, unless they are all there already.
# Uses sudo when not root. Never asks a question (CI has no standard input).
set -e
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends \
	$missing; } </dev/null >"$log" 2>&1; then
	cat "$log"
	rm -f "$log"
	echo "deps: apt-get failed" >&2
	exit 1
fi
rm -f "$log"
