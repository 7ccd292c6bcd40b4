#!/usr/bin/env python3
"""make bench-engine: pages per second through the compression path.

No link in the way: a stopped guest (RAM filled by the workload with the
realistic mix, or with random bytes) is saved to a file in /dev/shm with
`compress` (threads x level), then loaded by a fresh destination (decompress
threads).  Reported per run: pages/s of the whole save and of the load, CPU
per page of the migration thread (the hand-off path: it never deflates) and
of the compress threads, and of the destination's main thread (it reads the
stream and hands records to the decompress threads).  "off" is the same
without compression: the ceiling the link-free path allows.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from harness.migrate import set_caps, set_params, watch  # noqa: E402
from harness.proc import thread_cpu  # noqa: E402
from harness.vm import VM  # noqa: E402


class ThreadCPU:
    """CPU of threads that may exit before we look again: sample often."""

    def __init__(self, pid, prefix):
        self.pid, self.prefix = pid, prefix
        self.seen = {}
        # what threads that already run (the destination's main thread)
        # spent before the measurement: not counted
        self.base = {tid: sec for tid, (name, sec) in thread_cpu(pid).items()
                     if name.startswith(prefix)}

    def sample(self):
        for tid, (name, sec) in thread_cpu(self.pid).items():
            if name.startswith(self.prefix):
                self.seen[tid] = sec

    def total(self):
        return sum(sec - self.base.get(tid, 0) for tid, sec in self.seen.items())


def run_sampled(vm, samplers, start):
    """start(), then poll query-migrate until it ends, sampling the
    threads' CPU meanwhile; return (final query-migrate, wall seconds)."""
    def sample(_info, _elapsed):
        for s in samplers:
            s.sample()

    t0 = time.monotonic()
    start()
    info = watch(vm, timeout=None, interval=0.01, on_sample=sample)
    return info, time.monotonic() - t0


def save(src, path, threads, level, method):
    """Save the stopped guest to path; return figures."""
    if os.path.exists(path):
        os.unlink(path)
    comp = threads > 0
    set_caps(src, compress=comp)
    # no cap on the stream: QEMU's default max-bandwidth is 128 MiB/s
    set_params(src, **{"max-bandwidth": 1 << 40})
    if comp:
        set_params(src, **{"compress-threads": threads, "compress-level": level,
                           "compress-method": method})
    pid = src.proc.pid
    mig = ThreadCPU(pid, "mig/src/main")
    pool = ThreadCPU(pid, "mig/src/comp_")
    info, wall = run_sampled(src, (mig, pool), lambda: src.qmp.cmd(
        "migrate", uri=f"file:{path}"))
    assert info["status"] == "completed", info
    # QEMU refuses to migrate a VM paused by a migration: run it, stop it
    src.qmp.cmd("cont")
    src.qmp.cmd("stop")
    ram = info["ram"]
    pages = ram["total"] // 4096
    c = info.get("compression", {})
    return {"wall_s": info["total-time"] / 1000 or wall, "pages": pages,
            "zero": ram["duplicate"], "compressed": c.get("pages", 0),
            "bytes": os.path.getsize(path),
            "mig_cpu_s": mig.total(), "pool_cpu_s": pool.total()}


def load(workdir, args, path, dthreads, fill, method):
    dst = VM(workdir, "dst", mem_mb=args.mem_mb, incoming="defer",
             workload={"mode": "idle", "mb": args.region_mb, "fill": fill},
             extra_args=["-name", "dst,debug-threads=on"]).start()
    try:
        comp = dthreads > 0
        set_caps(dst, compress=comp)
        if comp:
            set_params(dst, **{"decompress-threads": dthreads,
                               "compress-method": method})
        pid = dst.proc.pid
        main = ThreadCPU(pid, "qemu-system-x86")
        pool = ThreadCPU(pid, "mig/dst/dcmp_")
        info, wall = run_sampled(dst, (main, pool), lambda: dst.qmp.cmd(
            "migrate-incoming", uri=f"file:{path}"))
        assert info["status"] == "completed", info
        # the loaded guest must be intact
        dst.qmp.cmd("cont")
        dst.wait_for(lambda: (h := dst.heartbeats()) and h[-1]["passes"] >= 1, 120,
                     "a verification pass")
        assert dst.heartbeats()[-1]["errors"] == 0 and not dst.corruptions()
        return {"wall_s": wall, "main_cpu_s": main.total(), "pool_cpu_s": pool.total()}
    finally:
        dst.kill()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mem-mb", type=int, default=512)
    ap.add_argument("--region-mb", type=int, default=384,
                    help="guest memory filled (the rest stays zero)")
    ap.add_argument("--threads", default=f"1,2,{os.cpu_count()}",
                    help="compress (and decompress) thread counts")
    ap.add_argument("--methods", default="zlib,zstd,lz4",
                    help="compress-method values")
    ap.add_argument("--levels", default="1",
                    help="compress-level values (1-9), each with every method")
    ap.add_argument("--fills", default="mix,random")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(TOP, "build", "bench", "engine.md"))
    args = ap.parse_args()
    threads = sorted({int(t) for t in args.threads.split(",")})
    levels = [int(x) for x in args.levels.split(",")]
    methods = args.methods.split(",")
    rows = []
    shm = tempfile.mkdtemp(prefix="qemu-mt-engine-", dir="/dev/shm")
    path = os.path.join(shm, "stream")
    with tempfile.TemporaryDirectory(prefix="qemu-mt-engine-") as wd:
        for fill in args.fills.split(","):
            wl = {"mode": "idle", "mb": args.region_mb, "fill": fill}
            src = VM(wd, "src", mem_mb=args.mem_mb, workload=wl,
                     extra_args=["-name", "src,debug-threads=on"]).start()
            try:
                src.wait_ready(timeout=600)
                src.qmp.cmd("stop")
                configs = [(0, 0, "-")] + [(t, lv, m) for m in methods
                                           for lv in levels for t in threads]
                for t, lv, m in configs:
                    runs = []
                    for rep in range(args.reps):
                        print(f"{fill}: save, {t or 'no'} compress threads, {m}, "
                              f"level {lv}, run {rep + 1}", flush=True)
                        runs.append(save(src, path, t, lv, m))
                    s = {k: median([r[k] for r in runs]) for k in runs[0]}
                    row = {"fill": fill, "side": "save", "threads": t, "level": lv,
                           "method": m, **s}
                    rows.append(row)
                    # load what this save wrote: the uncompressed stream, and
                    # the level 1 stream of the most threads
                    if t == 0 or (lv == levels[0] and t == max(threads)):
                        for d in ([0] if t == 0 else threads):
                            lr = []
                            for rep in range(args.reps):
                                print(f"{fill}: load, {d or 'no'} decompress threads, "
                                      f"run {rep + 1}", flush=True)
                                lr.append(load(wd, args, path, d, fill, m))
                            ls = {k: median([r[k] for r in lr]) for k in lr[0]}
                            rows.append({"fill": fill, "side": "load", "threads": d,
                                         "level": lv, "method": m, "pages": s["pages"],
                                         "compressed": s["compressed"], **ls})
            finally:
                src.kill()
    os.unlink(path) if os.path.exists(path) else None
    os.rmdir(shm)

    out = ["## Engine: pages per second, no link\n",
           f"Command: `bench/engine.py {' '.join(sys.argv[1:])}`; guest {args.mem_mb} MiB "
           f"({args.region_mb} MiB filled), stopped; stream in /dev/shm; "
           f"median of {args.reps}.  Pages: all guest pages "
           "(zero pages included); us/page: CPU microseconds per compressed page (per page when off).\n",
           "| content | side | method | threads | level | pages/s | MiB/s in | ratio | "
           "migration/main thread us/page | pool us/page |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        pps = r["pages"] / r["wall_s"]
        npg = r["compressed"] or r["pages"]
        if r["side"] == "save":
            ratio = f"{r['pages'] * 4096 / r['bytes']:.2f}"
            own = r["mig_cpu_s"]
        else:
            ratio = ""
            own = r["main_cpu_s"]
        out.append(f"| {r['fill']} | {r['side']} | {r['method']} | {r['threads'] or 'off'} | "
                   f"{r['level'] if r['threads'] else '-'} | {pps:,.0f} | "
                   f"{pps * 4096 / 2**20:,.0f} | {ratio} | "
                   f"{own * 1e6 / npg:.2f} | "
                   f"{r['pool_cpu_s'] * 1e6 / npg:.1f} |")
    text = "\n".join(out) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
