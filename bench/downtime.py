#!/usr/bin/env python3
"""Where the downtime of a precopy migration goes, from QEMU's trace logs.

Recipe: start both QEMUs with

    -msg timestamp=on -D SIDE.trace -trace 'vmstate_downtime_*' \
    -trace ram_decompress_sync_all

(the timestamps are the host's wall clock, the same for both sides), migrate,
then `bench/downtime.py src.trace dst.trace` prints the window of the last
migration in the logs, phase by phase.  `make bench` with
`BENCH_ARGS=--breakdown` does this for every run.

Checkpoints come from QEMU (vmstate_downtime_checkpoint) and from the series
(src-ram-synced, src-ram-queued, src-ram-compress-flushed,
dst-loadvm-cleaned-up, dst-shut-sent); a phase whose checkpoint is missing
(an older QEMU, no compression) is merged into the next one.
"""

import re
import sys

LINE = re.compile(r"^\d+@(\d+)\.(\d{6}):(\w+) ?(.*)$")

# (checkpoint that ends the phase, side, phase)
PHASES = [
    ("src-vm-stopped", "src", "stop the vCPUs"),
    ("src-ram-synced", "src", "final dirty bitmap sync"),
    ("src-ram-queued", "src", "final pass: find the dirty pages, send or queue them"),
    ("src-ram-compress-flushed", "src", "final pass: wait for the compression threads"),
    ("src-iterable-saved", "src", "other iterable state"),
    ("src-non-iterable-saved", "src", "device state, save"),
    ("dst-precopy-loadvm-completed", "dst", "transfer, destination load"),
    ("dst-precopy-bh-vm-started", "dst", "destination: activate, start the vCPUs"),
    ("dst-loadvm-cleaned-up", "dst", "destination: load cleanup (threads, buffers)"),
    ("dst-shut-sent", "dst", "destination: rest of the teardown, SHUT sent"),
    ("src-downtime-end", "src", "source: SHUT received (return path)"),
]
# the guest runs again from this checkpoint on
RESUMED = "dst-precopy-bh-vm-started"


def parse(path):
    """[(time s, event, args)] of a trace log written with -msg timestamp=on"""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if m:
                out.append((int(m.group(1)) + int(m.group(2)) / 1e6,
                            m.group(3), m.group(4)))
    return out


def breakdown(src_path, dst_path):
    """The downtime window of the last migration in the logs: a dict with
    'phases' [(checkpoint, phase, ms)], 'guest_pause_ms' (src-downtime-start to the
    destination's vCPUs started), 'downtime_ms' (to src-downtime-end, what
    QEMU reports), and the destination's 'decompress_wait_ms' and
    'device_load_ms' inside the transfer phase.  None when the logs hold no
    complete window."""
    src, dst = parse(src_path), parse(dst_path)
    starts = [t for t, ev, a in src
              if ev == "vmstate_downtime_checkpoint" and a == "src-downtime-start"]
    if not starts:
        return None
    t0 = starts[-1]
    marks = {}
    for side, events in (("src", src), ("dst", dst)):
        for t, ev, a in events:
            if ev == "vmstate_downtime_checkpoint" and t >= t0 and a not in marks:
                marks[a] = t
    if RESUMED not in marks:
        return None
    # in the order they happened: without return-path the source ends its
    # downtime before the destination has loaded the stream
    phases, prev = [], t0
    for mark, _side, name in sorted((p for p in PHASES if p[0] in marks),
                                    key=lambda p: marks[p[0]]):
        phases.append((mark, name, (marks[mark] - prev) * 1000))
        prev = marks[mark]
    res = {"phases": phases,
           "guest_pause_ms": (marks[RESUMED] - t0) * 1000,
           "downtime_ms": ((marks["src-downtime-end"] - t0) * 1000
                           if "src-downtime-end" in marks else None)}
    loaded = marks.get("dst-precopy-loadvm-completed", marks[RESUMED])
    waits = [(t, a) for t, ev, a in dst
             if ev == "ram_decompress_sync_all" and t0 <= t <= loaded]
    if waits:
        res["decompress_wait_ms"] = int(re.search(r"waited (\d+)", waits[-1][1]).group(1)) / 1000
    dev = [int(m.group(1)) for t, ev, a in dst
           if ev == "vmstate_downtime_load" and t0 <= t <= loaded
           and "type=non-iterable" in a
           and (m := re.search(r"downtime=(\d+)", a))]
    if dev:
        res["device_load_ms"] = sum(dev) / 1000
    return res


def table(res):
    rows = ["| phase | ms |", "|---|---:|"]
    for mark, name, ms in res["phases"]:
        extra = []
        if mark == "dst-precopy-loadvm-completed":
            if "decompress_wait_ms" in res:
                extra.append(f"waiting for decompression {res['decompress_wait_ms']:.1f}")
            if "device_load_ms" in res:
                extra.append(f"device state load {res['device_load_ms']:.1f}")
        rows.append(f"| {name}{' (' + ', '.join(extra) + ')' if extra else ''} "
                    f"| {ms:.1f} |")
        if mark == RESUMED:
            rows.append(f"| **guest paused, to here** | **{res['guest_pause_ms']:.1f}** |")
        if mark == "src-downtime-end":
            rows.append(f"| **QEMU's downtime, to here** | **{res['downtime_ms']:.1f}** |")
    return "\n".join(rows)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    res = breakdown(sys.argv[1], sys.argv[2])
    if res is None:
        sys.exit("no complete downtime window in these logs")
    print(table(res))


if __name__ == "__main__":
    main()
