# Common settings for the project's scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything generated lives under build/ (git-ignored); downloads are cached
# outside the work tree so that a clean clone does not fetch them again.
BUILD=${BUILD:-$TOP/build}
CACHE=${QEMU_MT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-mt}
BASE_DIR=$BUILD/base          # pristine dpkg-source -x tree
SRC=${SRC:-$BUILD/src}        # materialized git tree: base + one commit per patch
QEMU_BUILD=${QEMU_BUILD:-$BUILD/qemu}
GUEST_DIR=$BUILD/guest
PATCHES=$TOP/patches
# migration-test paths that select the compression qtests (-p goes one
# level deep), for tests/repeat.sh and tests/sanitize.sh
COMPRESS_QTESTS="/x86_64/migration/precopy/unix/compress
                 /x86_64/migration/precopy/tcp/compress
                 /x86_64/migration/compress
                 /x86_64/migration/compress/bad-stream
                 /x86_64/migration/compress/bad-frame
                 /x86_64/migration/postcopy/compress"

# Identity used for the commits of the materialized tree.  Deliberately not
# a person: the series carries no personal names or addresses.
export GIT_AUTHOR_NAME="qemu-mt" GIT_COMMITTER_NAME="qemu-mt"
export GIT_AUTHOR_EMAIL="" GIT_COMMITTER_EMAIL=""
# A fixed committer date makes the materialized commits reproducible.
export GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"

log()  { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[1;33mWARNING: %s\033[0m\n' "$*" >&2; }
die()  { printf '\033[1;31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

lock_get() { awk -v k="$1" '$1 == k { print $2; exit }' "$TOP/scripts/base.lock"; }

# Private apt configuration: lists of our own, the machine's sources untouched.
# apt_private NAME "deb/deb-src lines" -> prints the -o options for apt-get.
apt_private() {
    local name=$1 lines=$2 dir
    dir=$CACHE/apt/$name
    mkdir -p "$dir/lists/partial"
    printf '%s\n' "$lines" > "$dir/sources.list"
    printf '%s' "-o APT::Sandbox::User=root -o Dir::Etc::sourcelist=$dir/sources.list -o Dir::Etc::sourceparts=/nonexistent -o Dir::State::Lists=$dir/lists"
}

# The private bookworm lists (main, updates, security, backports), shared by
# install-deps.sh and guest/build.sh.
apt_bookworm() {
    apt_private bookworm "deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main"
}

# A digest of the series as it stands in patches/ (what materialize applies).
series_digest() {
    (cd "$PATCHES" && cat series $(grep -v '^#' series | sed '/^$/d')) | sha256sum | cut -c1-16
}
series_list() { grep -v '^#' "$PATCHES/series" | sed '/^[[:space:]]*$/d'; }

# tap_arg SCRIPT "$@": for the test runners whose first argument is the TAP
# output file: --help prints SCRIPT's header comment, another option there
# is refused (it would become a path).
tap_arg() {
    local script=$1
    case ${2:-} in
    -h|--help) sed -n '2,/^set /p' "$script" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$script: first argument is the TAP output file, got '$2'" >&2; exit 2 ;;
    esac
}
