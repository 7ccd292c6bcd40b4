#!/usr/bin/env bash
# Run the e2e tests (pytest, Debian's python3) and write a TAP summary of
# their outcomes to $1.  Extra arguments go to pytest (e.g. -k name).
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
tap=${1:-$BUILD/logs/e2e.tap}; shift || true
mkdir -p "$(dirname "$tap")"
xml=$BUILD/logs/e2e.xml
cd "$TOP" && /usr/bin/python3 -m pytest -v -p no:cacheprovider \
    --junitxml="$xml" tests/e2e "$@"
rc=$?
/usr/bin/python3 - "$xml" "$tap" <<'PY'
import sys
import xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
with open(sys.argv[2], "w") as out:
    for i, c in enumerate(cases, 1):
        bad = c.find("failure") is not None or c.find("error") is not None
        skip = c.find("skipped") is not None
        name = f"{c.get('classname')}::{c.get('name')}"
        out.write(f"{'not ok' if bad else 'ok'} {i} {name}{' # SKIP' if skip else ''}\n")
PY
exit $rc
