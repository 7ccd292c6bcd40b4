#!/usr/bin/env python3
"""How long the source's main loop stalls during a migration with
auto-converge: the busy test guest over a tc-shaped link, QMP
"query-status" sent to the source every 20 ms and timed (a main loop that
waits for a lock answers late), and the periodic dirty bitmap sync that
auto-converge runs in the main loop with the BQL held
(cpu_throttle_dirty_sync_timer_tick) timed from its trace events.

    bench/stall.py [--binary NAME=PATH ...] [--modes none,compress]

Each mode runs with each binary; the table gives the QMP latency (median,
99th percentile, max) and the main loop's bitmap syncs (count, max).
Needs root (network namespaces)."""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import downtime  # noqa: E402

from harness.link import IP_DST, NS_DST, NS_SRC, Link, in_netns  # noqa: E402
from harness.migrate import DONE, event_time, set_caps, set_params  # noqa: E402
from harness.vm import QEMU, VM  # noqa: E402

def main_loop_syncs(path):
    """Durations (ms) of the bitmap syncs auto-converge's timer ran: from
    cpu_throttle_dirty_sync to the next migration_bitmap_sync_end."""
    out, t_tick = [], None
    for t, ev, _args in downtime.parse(path):
        if ev == "cpu_throttle_dirty_sync":
            t_tick = t
        elif ev == "migration_bitmap_sync_end" and t_tick is not None:
            out.append((t - t_tick) * 1000)
            t_tick = None
    return out


def one(args, workdir, mode, binary):
    trace = os.path.join(workdir, "src.trace")
    if os.path.exists(trace):
        os.unlink(trace)
    wl = {"mode": "dirty", "mb": args.region_mb, "dirty_mbps": args.dirty_mbps,
          "hb_ms": 250}
    ev = ["cpu_throttle_dirty_sync", "migration_bitmap_sync_end"]
    src = VM(workdir, "src", mem_mb=args.mem_mb, workload=wl, qemu=binary,
             extra_args=["-msg", "timestamp=on", "-D", trace] +
             [a for e in ev for a in ("-trace", e)], wrapper=in_netns(NS_SRC))
    dst = VM(workdir, "dst", mem_mb=args.mem_mb, workload=wl, qemu=binary,
             incoming="defer", wrapper=in_netns(NS_DST))
    caps = {"auto-converge": True, "return-path": True}
    params = {"downtime-limit": args.downtime_ms, "max-bandwidth": 1 << 40}
    if mode == "compress":
        caps["compress"] = True
        params.update({"compress-threads": args.threads,
                       "compress-level": 1})
    try:
        src.start()
        dst.start()
        src.wait_ready(timeout=300)
        for vm in (src, dst):
            set_caps(vm, **caps)
        set_params(src, **params)
        uri = f"tcp:{IP_DST}:4444"
        dst.qmp.cmd("migrate-incoming", uri=uri)
        src.qmp.cmd("migrate", uri=uri)
        lat, t0 = [], time.monotonic()
        status = "setup"
        while time.monotonic() - t0 < args.seconds:
            a, wall = time.monotonic(), time.time()
            src.qmp.cmd("query-status")
            lat.append((wall, (time.monotonic() - a) * 1000))
            if len(lat) % 25 == 0:
                status = src.qmp.cmd("query-migrate")["status"]
                if status in DONE:
                    break
            time.sleep(0.02)
        info = src.qmp.cmd("query-migrate")
        if info["status"] not in DONE:
            src.qmp.cmd("migrate_cancel")
        throttle = info.get("cpu-throttle-percentage", 0)
        syncs = main_loop_syncs(trace)
        # not the answers that waited for the downtime window (the BQL is
        # held from the source's last STOP event to the completion)
        stops = [event_time(e) for e in src.qmp.poll_events()
                 if e["event"] == "STOP"]
        cut = stops[-1] if info["status"] == "completed" and stops else None
        lat = sorted(ms for wall, ms in lat
                     if cut is None or wall + ms / 1000 < cut)
        return {"mode": mode, "samples": len(lat),
                "median": statistics.median(lat),
                "p99": lat[int(len(lat) * 0.99) - 1], "max": lat[-1],
                "syncs": len(syncs), "sync_max": max(syncs, default=0),
                "throttle": throttle, "status": info["status"]}
    finally:
        src.kill()
        dst.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", default=[],
                    metavar="NAME=PATH", help="QEMU to run (default: the build's)")
    ap.add_argument("--modes", default="none,compress")
    ap.add_argument("--mbit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--mem-mb", type=int, default=1024)
    ap.add_argument("--region-mb", type=int, default=768)
    ap.add_argument("--dirty-mbps", type=int, default=16)
    ap.add_argument("--downtime-ms", type=int, default=50,
                    help="low, so that auto-converge throttles")
    ap.add_argument("--seconds", type=int, default=120,
                    help="auto-converge throttles from the second pass on")
    ap.add_argument("--reps", type=int, default=1, help="runs of each")
    args = ap.parse_args()
    binaries = [b.split("=", 1) for b in args.binary] or [["build", QEMU]]
    rows = []
    with Link() as link, tempfile.TemporaryDirectory() as workdir:
        link.set(args.mbit)
        for rep in range(args.reps):
            for name, path in binaries:
                for mode in args.modes.split(","):
                    r = one(args, workdir, mode, path)
                    r["binary"] = name
                    rows.append(r)
                    print(r, flush=True)
    print(f"\n{args.mbit} Mbit/s, busy {args.mem_mb} MiB guest, auto-converge, "
          f"{args.seconds} s, QMP query-status every 20 ms\n")
    print("Answers that waited for the downtime window are left out.\n")
    print("| binary | mode | QMP median ms | p99 | max | main-loop syncs | "
          "longest sync ms | throttle % | status |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in sorted(rows, key=lambda r: (r["binary"], r["mode"])):
        print(f"| {r['binary']} | {r['mode']} | {r['median']:.1f} | "
              f"{r['p99']:.1f} | {r['max']:.1f} | {r['syncs']} | "
              f"{r['sync_max']:.1f} | {r['throttle']} | {r['status']} |")


if __name__ == "__main__":
    main()
