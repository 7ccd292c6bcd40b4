#!/usr/bin/env bash
# make source-package and its check (dpkg-source -x gives the materialized
# tree) as a test stage: TAP to $1.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
tap=${1:-$BUILD/logs/package.tap}
mkdir -p "$(dirname "$tap")"
if "$TOP/scripts/source-package.sh"; then
    echo "ok 1 source package: dpkg-source -x == materialized tree" > "$tap"
else
    echo "not ok 1 source package: dpkg-source -x == materialized tree" > "$tap"
    exit 1
fi
