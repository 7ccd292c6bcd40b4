#!/usr/bin/python3
"""Ping-pong live migrations of the busy test guest (make soak).

  soak.py [--hops N] [--out DIR]

Hop k starts a new destination QEMU and migrates the guest to it from the
QEMU that received it at hop k-1 (unix socket; compress with the methods
in turn, zlib, zstd, lz4, and XBZRLE and skip-unused-pages on both sides).
After every hop the guest must carry on at the destination: heartbeats in
order past the source's last, two whole verification passes, no error, no
corruption report (VM.assert_healthy_after).  Every hop runs four passes
or more (a 1 ms downtime limit and max-bandwidth 32 MiB/s until the
fourth dirty bitmap sync, then 300 ms and no limit; the base QEMU switches
over earlier when nothing is dirty at a sync), and must have sent pages
compressed, and XBZRLE pages (cache hits) if it ran four passes.

Each QEMU's resident set size (VmRSS) is sampled when it has received the
guest and verified it, when it has sent it on, and again once the next
destination has verified the guest (seconds later, before it is killed):
DIR/rss.csv, one line per hop.  The run fails if the first or the last
series grows: the median of the last quarter of the hops may exceed the
median of the first quarter by at most 5 % + 8 MiB (hop 1, whose source
booted the guest, left out); the largest values are printed too.
"""

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from harness.migrate import set_caps, set_params, wait_status, watch  # noqa: E402
from harness.proc import rss_flat, rss_kib  # noqa: E402
from harness.vm import BUILD, VM  # noqa: E402

BUSY = {"mode": "dirty", "mb": 64, "dirty_mbps": 16, "check_mbps": 64, "hb_ms": 250}
METHODS = ("zlib", "zstd", "lz4")
MEM_MB = 512


def configure(vm, method):
    set_caps(vm, compress=True, xbzrle=True, skip_unused_pages=True,
             return_path=True)
    set_params(vm, compress_method=method, compress_threads=2,
               decompress_threads=2, xbzrle_cache_size=32 << 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hops", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(BUILD, "soak"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="soak-", dir=a.out)
    rows = []
    t0 = time.monotonic()
    src = VM(work, "vm0", mem_mb=MEM_MB, workload=BUSY).start()
    src.wait_ready()
    src_rss_in = rss_kib(src.proc.pid)
    ok = True
    try:
        for hop in range(1, a.hops + 1):
            method = METHODS[(hop - 1) % 3]
            dst = VM(work, f"vm{hop}", mem_mb=MEM_MB, workload=BUSY,
                     incoming="defer").start()
            configure(src, method)
            configure(dst, method)
            uri = f"unix:{work}/hop{hop}.sock"
            dst.qmp.cmd("migrate-incoming", uri=uri)
            t = time.monotonic()
            # several passes, so that XBZRLE finds pages in its cache: a
            # 1 ms limit until the fourth bitmap sync, then 300 ms
            set_params(src, downtime_limit=1, max_bandwidth=32 << 20)
            src.qmp.cmd("migrate", uri=uri)
            # (the base QEMU switches over whenever nothing is dirty, 1 ms
            # limit or not: such a hop may end before)
            watch(src, (), 120, on_sample=lambda i, _t: i["status"] not in (
                "setup", "active") or i.get("ram", {}).get("dirty-sync-count", 0) >= 4)
            set_params(src, downtime_limit=300, max_bandwidth=1 << 30)
            info = wait_status(src, timeout=300)
            assert info["status"] == "completed", (hop, info)
            secs = time.monotonic() - t
            last = src.heartbeats()[-1]["seq"]
            src_rss_end = rss_kib(src.proc.pid)
            dst.assert_healthy_after(last, 2, 120)
            dst_rss_in = rss_kib(dst.proc.pid)
            # seconds after the end: the source has cleaned up (XBZRLE
            # cache, compression threads and buffers freed)
            src_rss_out = rss_kib(src.proc.pid)
            ram, comp = info["ram"], info.get("compression", {})
            cache = info.get("xbzrle-cache", {})
            assert comp.get("pages", 0) > 0, (hop, comp)
            if ram["dirty-sync-count"] >= 4:
                assert cache.get("pages", 0) > 0, (hop, cache)
            rows.append({"hop": hop, "method": method, "seconds": round(secs, 2),
                         "syncs": ram["dirty-sync-count"],
                         "compressed": comp.get("pages", 0),
                         "xbzrle": cache.get("pages", 0),
                         "unused": ram.get("unused-pages", 0),
                         "downtime_ms": info.get("downtime"),
                         "src_rss_in_kib": src_rss_in, "src_rss_end_kib": src_rss_end,
                         "src_rss_out_kib": src_rss_out,
                         "dst_rss_in_kib": dst_rss_in})
            print(f"hop {hop} {method}: {secs:.1f}s, {ram['dirty-sync-count']} syncs, "
                  f"{comp.get('pages', 0)} compressed, {cache.get('pages', 0)} xbzrle, "
                  f"RSS src {src_rss_in >> 10}->{src_rss_end >> 10}->{src_rss_out >> 10} MiB, "
                  f"dst {dst_rss_in >> 10} MiB", flush=True)
            src.kill()
            os.unlink(src.serial_path)
            src, src_rss_in = dst, dst_rss_in
    except Exception as e:
        ok = False
        print(f"soak: hop {len(rows) + 1} failed: {e!r}", flush=True)
    finally:
        src.kill()
        with open(os.path.join(a.out, "rss.csv"), "w", newline="") as f:
            if rows:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
    if rows:
        for key in ("dst_rss_in_kib", "src_rss_out_kib"):
            # not the first hop: its source booted the guest
            good, first, last = rss_flat([r[key] for r in rows[1:]] or [r[key] for r in rows])
            peak = max(r[key] for r in rows[1:] or rows)
            print(f"soak: {key}: median of the first quarter {first / 1024:.0f} MiB, "
                  f"of the last {last / 1024:.0f} MiB (largest {peak >> 10}): "
                  f"{'flat' if good else 'GROWS'}")
            ok &= good
    hits = sum(1 for r in rows if r["xbzrle"])
    print(f"soak: XBZRLE hits in {hits} of {len(rows)} hops")
    print(f"soak: {len(rows)}/{a.hops} hops in {time.monotonic() - t0:.0f}s, "
          f"{'ok' if ok and len(rows) == a.hops else 'FAILED'}")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok and len(rows) == a.hops else 1


if __name__ == "__main__":
    sys.exit(main())
