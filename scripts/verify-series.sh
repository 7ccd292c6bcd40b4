#!/usr/bin/env bash
# Verify the series in patches/:
#   1. build/src is exactly base + patches/ (materialize applied them with
#      git am, so they apply cleanly to the pinned base);
#   2. every patch passes the base's scripts/checkpatch.pl (--no-signoff:
#      the series deliberately carries no Signed-off-by lines) and carries
#      no personal identity; no file is deleted by one patch and created
#      again by a later one;
#   3. every patch builds on its own (bisectable): each commit is checked out
#      in build/src and built incrementally in build/qemu; HEAD is restored
#      and rebuilt at the end.  NO_BISECT=1 skips this step.  A commit that
#      built before on this machine with the same configuration and
#      compiler is not built again: the materialized commits are
#      reproducible, so a commit's hash names its whole prefix (base and
#      patches); the stamps are kept with the downloads ($CACHE/verified),
#      REVERIFY=1 ignores them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

g() { git -C "$SRC" "$@"; }
[ -d "$SRC/.git" ] || die "no materialized tree (make materialize)"
[ -z "$(g status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes"
[ "$(cat "$SRC/.git/qemu-mt-series" 2>/dev/null)" = "$(series_digest) $(g rev-parse HEAD)" ] ||
    die "build/src does not match patches/ (make export, or make materialize)"

fail=0
n=0
log "checkpatch and identity checks"
while read -r p; do
    n=$((n + 1))
    if ! out=$(cd "$BASE_DIR" && perl scripts/checkpatch.pl --no-signoff --patch -q "$PATCHES/$p" 2>&1); then
        echo "$out"
        echo "FAIL checkpatch: $p"; fail=1
    elif grep -qiE '^(signed-off-by|from):.*@' "$PATCHES/$p" ||
         ! grep -q '^From: qemu-mt <>$' "$PATCHES/$p"; then
        echo "FAIL identity: $p (must be 'From: qemu-mt <>', no Signed-off-by)"; fail=1
    else
        echo "ok checkpatch: $p"
    fi
done < <(series_list)

# A file one patch deletes and a later one creates again: a change that
# landed in the wrong patch (patch 2 once deleted the docs patch 31 rewrote)
churn=$(for c in $(g rev-list --reverse base..HEAD); do
            g diff-tree --no-commit-id --name-status -r "$c"
        done | awk '$1 == "D" { d[$2] = 1 } $1 == "A" && d[$2] { print $2 }' |
        sort -u)
if [ -n "$churn" ]; then
    echo "FAIL churn: deleted by one patch, created again by a later one:" $churn
    fail=1
else
    echo "ok churn: no file deleted and created again along the series"
fi

if [ "${NO_BISECT:-0}" != 1 ]; then
    branch=$(g symbolic-ref --short -q HEAD || g rev-parse HEAD)
    restore() { g checkout -q "$branch"; }
    trap restore EXIT
    stamps=$CACHE/verified
    mkdir -p "$stamps"
    # configured flags (build.sh) and compiler, beside the commit
    config="$(cat "$QEMU_BUILD/.qemu-mt-configure" 2>/dev/null) $(cc --version | head -n 1)"
    for c in $(g rev-list --reverse base..HEAD); do
        subj=$(g log -1 --format=%s "$c")
        stamp=$stamps/$(printf '%s %s' "$c" "$config" | sha256sum | cut -c1-32)
        if [ -f "$stamp" ] && [ "${REVERIFY:-0}" != 1 ]; then
            echo "ok build (built before, $(cat "$stamp")): $subj"
            continue
        fi
        g checkout -q --detach "$c"
        t0=$(date +%s)
        if "$TOP/scripts/build.sh" >"$BUILD/verify-build.log" 2>&1; then
            echo "ok build ($(( $(date +%s) - t0 ))s): $subj"
            date -u +%F > "$stamp"
        else
            tail -n 30 "$BUILD/verify-build.log"
            echo "FAIL build: $subj"; fail=1
        fi
    done
    restore
    trap - EXIT
    "$TOP/scripts/build.sh" >"$BUILD/verify-build.log" 2>&1 || die "HEAD does not build"
fi
[ "$fail" = 0 ] || die "series verification failed"
log "series verified: $n patches"
