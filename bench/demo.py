#!/usr/bin/env python3
"""The main job: live-migrate a busy guest between two patched QEMUs with
compression off and on, and print a table in the style of
docs/multi-thread-compression.txt.

As root (the machine `make demo` is for), the two QEMUs run in two network
namespaces joined by a link shaped with tc, as in bench/bench.py; otherwise
QEMU's max-bandwidth stands in for the link, which QEMU lifts at
switchover (a warning says so)."""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.link import IP_DST, NS_DST, NS_SRC, Link, in_netns  # noqa: E402
from harness.migrate import migrate, real_downtime_ms  # noqa: E402
from harness.vm import VM, free_port  # noqa: E402


def modes(args):
    comp = {"compress-threads": args.threads, "compress-level": args.level,
            "decompress-threads": args.dthreads}
    yield ("original way", {}, {})
    yield (f"compress threads: {args.threads}", {"compress": True}, comp)
    yield (f"compress threads: {args.threads}, zstd", {"compress": True},
           dict(comp, **{"compress-method": "zstd"}))


def run_mode(workdir, args, caps, params, link):
    workload = {"mode": args.workload, "mb": args.region_mb,
                "dirty_mbps": args.dirty_mbps, "hb_ms": 250}
    src_ns = in_netns(NS_SRC) if link else []
    dst_ns = in_netns(NS_DST) if link else []
    src = VM(workdir, "src", mem_mb=args.mem_mb, workload=workload,
             wrapper=src_ns)
    dst = VM(workdir, "dst", mem_mb=args.mem_mb, workload=workload,
             incoming="defer", wrapper=dst_ns)
    try:
        src.start()
        dst.start()
        supported = {c["capability"] for c in
                     src.qmp.cmd("query-migrate-capabilities")}
        missing = [c for c in caps if c not in supported]
        if missing:
            return None, f"capability {', '.join(missing)} not in this build"
        src.wait_ready()
        if link:
            bandwidth = 1 << 40     # the link is the limit
            uri = f"tcp:{IP_DST}:4444"
        else:
            bandwidth = args.bandwidth_mbps * 1000 * 1000 // 8
            uri = f"tcp:127.0.0.1:{free_port()}"
        p = {"max-bandwidth": bandwidth, "downtime-limit": args.downtime_ms}
        p.update(params)
        info = migrate(src, dst, uri, caps=caps, params=p,
                       timeout=args.timeout)
        if info["status"] != "completed":
            return None, f"migration {info['status']}: {info.get('error-desc')}"
        # the guest must run on at the destination with its memory intact
        dst.wait_for(lambda: len(dst.heartbeats()) >= 3, 60, "guest heartbeat")
        info["real-downtime"] = real_downtime_ms(src, dst)
        hb = dst.heartbeats()[-1]
        if hb["errors"] or dst.corruptions():
            return None, f"guest reported corruption: {dst.corruptions()[:3]}"
        return info, None
    finally:
        src.kill()
        dst.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mem-mb", type=int, default=1024, help="guest RAM")
    ap.add_argument("--region-mb", type=int, default=256,
                    help="guest memory the workload fills and dirties")
    ap.add_argument("--workload", default="dirty", choices=["dirty", "idle"])
    ap.add_argument("--dirty-mbps", type=int, default=4,
                    help="MiB/s of guest pages the workload dirties")
    ap.add_argument("--bandwidth-mbps", type=int, default=200,
                    help="link speed in Mbit/s")
    ap.add_argument("--downtime-ms", type=int, default=300)
    ap.add_argument("--threads", type=int, default=max(os.cpu_count() or 1, 1))
    ap.add_argument("--dthreads", type=int, default=2)
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()

    root = os.geteuid() == 0
    if root:
        how = "tc tbf between two network namespaces"
    else:
        how = "QEMU max-bandwidth"
        print("WARNING: not root: QEMU's max-bandwidth stands in for the "
              "link, and QEMU lifts it at switchover", flush=True)
    workdir = tempfile.mkdtemp(prefix="qemu-mt-demo-")
    results = []
    try:
        with Link() if root else contextlib.nullcontext() as link:
            if link:
                link.set(args.bandwidth_mbps)
            for name, caps, params in modes(args):
                print(f"--- migrating: {name} ...", flush=True)
                info, why = run_mode(workdir, args, caps, params, link)
                if why:
                    print(f"    {why}", flush=True)
                if why and "not in this build" in why:
                    continue    # no column for a mode this build lacks
                results.append((name, info, why))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nGuest: {args.mem_mb} MiB RAM, workload '{args.workload}' on "
          f"{args.region_mb} MiB dirtying {args.dirty_mbps} MiB/s; link "
          f"{args.bandwidth_mbps} Mbit/s ({how}); downtime limit "
          f"{args.downtime_ms} ms\n")
    rows = [("total time(msec):", lambda i: i["total-time"]),
            ("downtime(msec):", lambda i: i["downtime"]),
            ("real downtime(msec):", lambda i: "n/a" if i["real-downtime"] is None
             else f"{i['real-downtime']:.0f}"),
            ("transferred ram(kB):", lambda i: i["ram"]["transferred"] // 1024),
            ("throughput(mbps):", lambda i: f"{i['ram']['mbps']:.2f}"),
            ("total ram(kB):", lambda i: i["ram"]["total"] // 1024)]
    w = 24
    sep = "-" * (21 + (w + 3) * len(results))
    print(sep)
    print(f"{'':20}" + "".join(f"| {name:<{w}} " for name, _, _ in results))
    print(sep)
    for label, f in rows:
        cells = "".join(f"| {str(f(i)) if i else 'n/a':<{w}} " for _, i, _ in results)
        print(f"{label:<20}{cells}")
        print(sep)
    return 1 if any(why for _, _, why in results) else 0


if __name__ == "__main__":
    sys.exit(main())
