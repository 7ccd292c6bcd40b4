#!/usr/bin/python3
"""Fuzz the incoming migration stream of the patched QEMU.

  fuzz.py seeds  OUT            real streams, one per method and option
  fuzz.py run    OUT SECONDS    mutate them, load each case, report
  fuzz.py replay DIR            load saved reproducers (DIR/*.mig.xz)
  fuzz.py craft  SEEDS DIR      write the known-bad-record reproducers

seeds: one test guest (dirtying 8 MiB) migrated with `migrate file:` once
per seed, resumed in between: no compression, and each method (zlib, zstd,
lz4) alone, with XBZRLE, with skip-unused-pages, with both.  XBZRLE seeds
run several passes (a low max-bandwidth in a file migration only spreads
the passes out), so their streams hold XBZRLE records.

run: each case is a seed changed by mutate.py (RAM records and section
framing; --device-state changes device state bytes too), loaded by QEMU
started as
the seed's destination (-incoming file:CASE, the seed's capabilities and
method set with -global, 2 decompression threads).  A case passes when
QEMU loads it (then quits) or exits with status 1 and "load of migration
failed"; a sanitizer report, a signal, another exit status, an assertion
or no answer within --timeout is a failure, saved as OUT/failures/N.full.mig.xz,
its shortest failing prefix as N.mig.xz, and N.json (seed, mutations,
reason with QEMU's stderr): copy N.mig.xz and N.json to tests/fuzz/repro
once fixed.  OUT/report.json has the
counts and the cases per hour.  --qemu picks the binary (default: the
ASan+UBSan build, build/qemu-asan, if it exists).

replay: every DIR/*.mig.xz with its .json (the destination's settings) must
pass as above, and give the verdict ("expect") and first error ("error", a
regular expression) its .json names.  DIR is tests/fuzz/repro: failures
the fuzzer found (once fixed), and what craft writes: small streams (a
seed's header, configuration and RAM setup, then one section holding one
bad record) for the errors the destination must give: zlib length (above
the load bound, and between it and the frame escape) and checksum, a frame
without the capability, frame method (another one, zlib, unknown), page
count, length, zero bitmap, page order and range, damaged zstd data,
XBZRLE length.
"""

import argparse
import json
import lzma
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, TOP)
sys.path.insert(0, HERE)

from harness.vm import BUILD, GUEST, QEMU, VM  # noqa: E402
from harness.migrate import set_caps, set_params, wait_status, wait_syncs  # noqa: E402
import mutate  # noqa: E402
import stream  # noqa: E402

MEM_MB = 128
ASAN_QEMU = os.path.join(BUILD, "qemu-asan", "qemu-system-x86_64")

# name -> (compress-method or None, xbzrle, skip-unused-pages)
SEEDS = {"none": (None, False, False), "none-xbzrle": (None, True, False)}
for _m in ("zlib", "zstd", "lz4"):
    SEEDS[_m] = (_m, False, False)
    SEEDS[f"{_m}-xbzrle"] = (_m, True, False)
    SEEDS[f"{_m}-skip"] = (_m, False, True)
    SEEDS[f"{_m}-xbzrle-skip"] = (_m, True, True)

FAIL_RE = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|"
                     r"Assertion|assertion failed|Bail out|code should not be reached|"
                     r"Segmentation|Aborted")


# seeds ---------------------------------------------------------------------

def make_seeds(out):
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="seeds-", dir=out)
    vm = VM(work, "src", mem_mb=MEM_MB,
            workload={"mode": "dirty", "mb": 8, "dirty_mbps": 4}).start()
    try:
        vm.wait_ready()
        for name, (method, xbzrle, skip) in SEEDS.items():
            path = os.path.join(out, name + ".mig")
            set_caps(vm, compress=bool(method), xbzrle=xbzrle,
                     skip_unused_pages=skip)
            if method:
                set_params(vm, compress_method=method, compress_threads=2)
            set_params(vm, xbzrle_cache_size=4 << 20,
                       max_bandwidth=(16 << 20) if xbzrle else (1 << 30),
                       downtime_limit=1 if xbzrle else 300)
            vm.qmp.cmd("migrate", uri=f"file:{path}")
            if xbzrle:
                wait_syncs(vm, 4)
                set_params(vm, max_bandwidth=1 << 30, downtime_limit=300)
            info = wait_status(vm)
            assert info["status"] == "completed", info
            vm.qmp.cmd("cont")
            with open(path, "rb") as f:
                counts = stream.summary(stream.parse(f.read())[0])
            if xbzrle and not counts.get("xbzrle"):
                raise RuntimeError(f"seed {name}: no XBZRLE record: {counts}")
            if method and not counts.get("zlib" if method == "zlib" else "frame"):
                raise RuntimeError(f"seed {name}: no compressed record: {counts}")
            with open(path[:-4] + ".json", "w") as f:
                json.dump({"method": method, "xbzrle": xbzrle, "skip": skip,
                           "records": counts}, f)
            print(f"seed {name}: {os.path.getsize(path)} bytes, {counts}", flush=True)
    finally:
        vm.kill()
        shutil.rmtree(work, ignore_errors=True)


# loading one case ------------------------------------------------------------

def dst_args(qemu, path, method, xbzrle, skip=False):
    args = [qemu, "-accel", "tcg", "-M", "q35", "-smp", "1", "-m", str(MEM_MB),
            "-nodefaults", "-display", "none", "-vga", "none", "-S",
            "-serial", "null",
            "-kernel", os.path.join(GUEST, "vmlinuz"),
            "-initrd", os.path.join(GUEST, "initrd.img"),
            "-object", f"memory-backend-ram,id=ram0,size={MEM_MB}M",
            "-machine", "memory-backend=ram0",
            "-global", "migration.x-events=on",
            "-global", f"migration.x-xbzrle={'on' if xbzrle else 'off'}",
            # the source's skip-unused-pages must be the destination's too
            "-global",
            f"migration.x-skip-unused-pages={'on' if skip else 'off'}",
            "-incoming", f"file:{path}", "-qmp", "stdio"]
    if method:
        args += ["-global", "migration.x-compress=on",
                 "-global", f"migration.x-compress-method={method}",
                 "-global", "migration.x-decompress-threads=2"]
    return args


def sanitizer_env():
    env = dict(os.environ)
    # leaks: the base QEMU leaks on its exit(1) path; reports go to stderr
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:print_summary=1"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    return env


def load(qemu, path, method, xbzrle, timeout, errpath, skip=False):
    """Load the stream at path; return (verdict, detail): verdict is
    'loaded', 'refused' or 'FAIL'."""
    with open(errpath, "w+b") as err:
        p = subprocess.Popen(dst_args(qemu, path, method, xbzrle, skip),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=err, env=sanitizer_env(),
                             start_new_session=True)
        status = [None]
        lock = threading.Lock()
        done = threading.Event()

        def send(cmd):
            with lock:
                p.stdin.write(json.dumps({"execute": cmd}).encode() + b"\n")
                p.stdin.flush()

        def events():
            # QEMU drops the events it emits before qmp_capabilities is
            # done, and the load may complete before: query-migrate too
            try:
                send("qmp_capabilities")
                for line in p.stdout:
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if msg.get("event") == "MIGRATION":
                        s = msg["data"]["status"]
                    elif isinstance(msg.get("return"), dict):
                        s = msg["return"].get("status")
                    else:
                        continue
                    if s:
                        status[0] = s
                    if s == "completed" and not done.is_set():
                        done.set()
                        send("quit")
            except (BrokenPipeError, OSError, ValueError):
                pass

        def poll():
            try:
                while not done.wait(1):
                    send("query-migrate")
            except (BrokenPipeError, OSError, ValueError):
                pass
        t = threading.Thread(target=events, daemon=True)
        t.start()
        threading.Thread(target=poll, daemon=True).start()
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = None
        done.set()
        t.join(5)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if rc is None:
        return "FAIL", f"no answer in {timeout}s (status {status[0]}): {text[-2000:]}"
    if FAIL_RE.search(text):
        return "FAIL", f"exit {rc}: {text[-4000:]}"
    if rc == 0 and status[0] == "completed":
        return "loaded", ""
    if rc == 1 and "load of migration failed" in text:
        # the first error QEMU printed: what refused the stream
        errs = [ln for ln in text.splitlines() if ln.startswith("qemu-system")]
        return "refused", errs[0] if errs else ""
    return "FAIL", f"exit {rc}, status {status[0]}: {text[-2000:]}"


# the fuzzing loop ------------------------------------------------------------

def minimize(qemu, data, meta, timeout, path, errpath):
    """The length of the shortest prefix of data that still fails (binary
    search: a failure at a record stays when what follows is cut)."""
    lo, hi = 0, len(data)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        with open(path, "wb") as f:
            f.write(data[:mid])
        if load(qemu, path, meta["method"], meta["xbzrle"], timeout, errpath,
                skip=meta.get("skip", False))[0] == "FAIL":
            hi = mid
        else:
            lo = mid
    return hi


def read_seeds(seed_dir):
    seeds = []
    for name in sorted(SEEDS):
        path = os.path.join(seed_dir, name + ".mig")
        with open(path, "rb") as f:
            data = f.read()
        with open(path[:-4] + ".json") as f:
            meta = json.load(f)
        seeds.append((name, data, stream.parse(data)[0], meta))
    return seeds


def run(out, seconds, jobs, qemu, seed, timeout, device_state=False):
    seeds = read_seeds(os.path.join(out, "seeds"))
    donors = [(d, p) for _, d, p, _ in seeds]
    fails = os.path.join(out, "failures")
    os.makedirs(fails, exist_ok=True)
    shm = tempfile.mkdtemp(prefix="qemu-mt-fuzz-",
                           dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    lock = threading.Lock()
    counts = {"cases": 0, "loaded": 0, "refused": 0, "FAIL": 0}
    reasons = {}
    t0 = time.monotonic()
    deadline = t0 + seconds
    # the unchanged seeds first: each must load
    todo = list(range(len(seeds)))

    def worker(j):
        rng = random.Random(f"{seed}-{j}")
        case = os.path.join(shm, f"case{j}.mig")
        errpath = os.path.join(shm, f"case{j}.err")
        while time.monotonic() < deadline:
            with lock:
                first = todo.pop() if todo else None
            if first is not None:
                name, data, pieces, meta = seeds[first]
                new, what = data, "unchanged seed"
            else:
                name, data, pieces, meta = rng.choice(seeds)
                try:
                    new, what = mutate.mutate(data, pieces, rng, donors,
                                              device_state)
                except Exception as e:      # the mutator's bug, not QEMU's
                    print(f"mutator error on {name}: {e!r}", flush=True)
                    with lock:
                        counts["mutator errors"] = counts.get("mutator errors", 0) + 1
                    continue
            with open(case, "wb") as f:
                f.write(new)
            verdict, detail = load(qemu, case, meta["method"], meta["xbzrle"],
                                   timeout, errpath,
                                   skip=meta.get("skip", False))
            if first is not None and verdict != "loaded":
                verdict, detail = "FAIL", f"unchanged seed not loaded: {detail}"
            with lock:
                counts["cases"] += 1
                counts[verdict] += 1
                n = counts["FAIL"]
                if verdict == "refused":
                    key = re.sub(r"\d+|0x[0-9a-f]+", "N", detail)[:100]
                    reasons[key] = reasons.get(key, 0) + 1
            if verdict == "FAIL":
                base = os.path.join(fails, f"{n:04d}")
                with lzma.open(base + ".full.mig.xz", "wb", preset=1) as f:
                    f.write(new)
                short = minimize(qemu, new, meta, timeout, case, errpath)
                with lzma.open(base + ".mig.xz", "wb", preset=1) as f:
                    f.write(new[:short])
                with open(base + ".json", "w") as f:
                    json.dump({"seed": name, "method": meta["method"],
                               "xbzrle": meta["xbzrle"],
                               "skip": meta.get("skip", False),
                               "mutations": what,
                               "reason": detail, "bytes": len(new),
                               "shortest failing prefix": short}, f, indent=1)
                print(f"FAIL {base}: {what}: {detail[:300]}", flush=True)

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(jobs)]
    for t in threads:
        t.start()
    last = t0
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            with lock:
                print(f"fuzz: {last - t0:.0f}s {counts}", flush=True)
    for t in threads:
        t.join()
    shutil.rmtree(shm, ignore_errors=True)
    elapsed = time.monotonic() - t0
    report = dict(counts, seconds=round(elapsed), jobs=jobs, qemu=qemu,
                  device_state=device_state,
                  cases_per_hour=round(counts["cases"] * 3600 / elapsed),
                  refusals=dict(sorted(reasons.items(), key=lambda kv: -kv[1])))
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"fuzz: {counts['cases']} cases in {elapsed:.0f}s with {jobs} jobs "
          f"({report['cases_per_hour']}/h, {os.path.basename(os.path.dirname(qemu))}): "
          f"{counts['loaded']} loaded, {counts['refused']} refused, "
          f"{counts['FAIL']} failures")
    return counts["FAIL"] == 0


# reproducers of known bad records ------------------------------------------

def _put(buf, off, fmt, val):
    struct.pack_into(fmt, buf, off, val)


def _rel(rec, name):
    off, size = rec.fields[name]
    return off - rec.start, size


def _edit(name, fmt, val):
    def f(buf, rec, _seeds):
        _put(buf, _rel(rec, name)[0], fmt, val)
    return f


def _zero_tail(buf, rec, _seeds):      # a zlib stream's Adler-32
    off, n = _rel(rec, "data")
    buf[off + n - 4:off + n] = bytes(4)


def _flip_middle(buf, rec, _seeds):    # a zstd frame's data
    off, n = _rel(rec, "data")
    for i in range(off + n // 3, off + n // 3 + 8):
        buf[i] ^= 0x55


def _offset_repeat(buf, rec, _seeds):  # page 2 at the same place as page 1
    off, _ = _rel(rec, "offsets")
    buf[off + 4:off + 8] = buf[off:off + 4]


def _offset_outside(buf, rec, _seeds):
    off, n = _rel(rec, "offsets")
    _put(buf, off + n - 4, ">I", 0x7fffffff)


def _bitmap_ones(buf, rec, _seeds):
    off, n = _rel(rec, "bitmap")
    buf[off:off + n] = b"\xff" * n


# name -> (seed, record kind, change, destination method, first error)
CRAFTED = {
    "zlib-length": ("zlib", "zlib", _edit("len", ">I", 4673), "zlib",
                    r"Invalid compressed page length 4673 .*must be 1 to 4672"),
    "zlib-length-high": ("zlib", "zlib", _edit("len", ">I", 0xfffffffe), "zlib",
                         r"Invalid compressed page length 4294967294 "),
    "zlib-checksum": ("zlib", "zlib", _zero_tail, "zlib",
                      r"Failed to decompress 1 page\(s\) with zlib"),
    "frame-off": ("zstd", "frame", None, None,
                  r"Received a compressed page, but capability 'compress' is not enabled"),
    # lz4 decodes what zstd wrote: the method byte, not the destination's
    # compress-method, picks the decoder
    "frame-method": ("zstd", "frame", _edit("method", ">B", 2), "zstd",
                     r"Failed to decompress \d+ page\(s\) with lz4"),
    "frame-method-zlib": ("zstd", "frame", _edit("method", ">B", 0), "zstd",
                          r"Received a frame of zlib pages"),
    "frame-method-unknown": ("lz4", "frame", _edit("method", ">B", 9), "lz4",
                             r"unknown method 9"),
    "frame-count-0": ("zstd", "frame", _edit("count", ">H", 0), "zstd",
                      r"Invalid page count 0 .*must be 1 to 256"),
    "frame-count-257": ("lz4", "frame", _edit("count", ">H", 257), "lz4",
                        r"Invalid page count 257 "),
    "frame-length": ("lz4", "frame", _edit("plen", ">I", 0xffffffff), "lz4",
                     r"Invalid compressed frame length 4294967295"),
    "frame-bitmap": ("zstd", "frame", _bitmap_ones, "zstd",
                     r"Invalid compressed frame length \d+ for 256 pages \(256 of them zero\)"),
    "frame-order": ("zstd", "frame", _offset_repeat, "zstd",
                    r"Page 2 of the compressed frame .* not after page"),
    "frame-outside": ("lz4", "frame", _offset_outside, "lz4",
                      r"is outside the block"),
    "frame-data": ("zstd", "frame", _flip_middle, "zstd",
                   r"Failed to decompress \d+ page\(s\) with zstd"),
    "xbzrle-length": ("zstd-xbzrle", "xbzrle", _edit("len", ">H", 4097), "zstd",
                      r"Failed to load XBZRLE page - len overflow"),
}


def _standalone(data, rec):
    """rec's bytes, with its block name even if it had CONTINUE."""
    buf = bytearray(data[rec.start:rec.end])
    hdr = struct.unpack_from(">Q", buf)[0]
    if hdr & stream.F_CONTINUE:
        _put(buf, 0, ">Q", hdr & ~stream.F_CONTINUE)
        buf[8:8] = bytes([4]) + b"ram0"
        for name, (off, size) in list(rec.fields.items()):
            if off > rec.start:
                rec.fields[name] = (off + 5, size)
    return buf


def craft(seed_dir, out):
    """Small streams, each one bad record: the seed's header, configuration
    and RAM setup section, then a section with that record alone."""
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for name in {c[0] for c in CRAFTED.values()} | {"zlib"}:
        with open(os.path.join(seed_dir, name + ".mig"), "rb") as f:
            data = f.read()
        seeds[name] = (data, stream.parse(data)[0])
    for name, (seed, kind, change, method, error) in CRAFTED.items():
        data, pieces = seeds[seed]
        setup_end = next(p.end for p in pieces if p.kind == "footer")
        # the smallest such record with two pages or more and 64 bytes of
        # payload: small files
        rec = min((p for p in pieces if p.kind == "record" and p.rkind == kind and
                   getattr(p, "count", 2) >= 2 and
                   p.fields.get("data", (0, 64))[1] >= 64),
                  key=lambda p: p.end - p.start)
        rec = stream.Piece(rec.kind, rec.start, end=rec.end, rkind=rec.rkind,
                           fields=dict(rec.fields))
        buf = _standalone(data, rec)
        if change:
            change(buf, rec, seeds)
        sid = struct.unpack_from(">I", data, setup_end - 4)[0]
        case = (data[:setup_end] + bytes([stream.PART]) + struct.pack(">I", sid) +
                bytes(buf) + struct.pack(">Q", stream.F_EOS) +
                bytes([stream.FOOTER]) + struct.pack(">I", sid) + bytes([stream.EOF]))
        with lzma.open(os.path.join(out, name + ".mig.xz"), "wb") as f:
            f.write(case)
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"method": method, "xbzrle": "xbzrle" in seed,
                       "expect": "refused", "error": error,
                       "made": f"fuzz.py craft: a {kind} record of seed {seed}"},
                      f, indent=1)
        print(f"crafted {name}: {len(case)} bytes")


def replay(directory, qemu, timeout):
    ok = True
    cases = sorted(f for f in os.listdir(directory) if f.endswith(".mig.xz"))
    with tempfile.TemporaryDirectory(prefix="qemu-mt-replay-") as tmp:
        for name in cases:
            base = os.path.join(directory, name[:-len(".mig.xz")])
            with open(base + ".json") as f:
                meta = json.load(f)
            path = os.path.join(tmp, "case.mig")
            with lzma.open(base + ".mig.xz") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            verdict, detail = load(qemu, path, meta["method"], meta["xbzrle"],
                                   timeout, os.path.join(tmp, "err"))
            good = verdict != "FAIL" and verdict == meta.get("expect", verdict)
            if good and meta.get("error"):
                good = re.search(meta["error"], detail) is not None
            ok &= good
            print(f"{'ok' if good else 'FAIL'} {name}: {verdict} {detail[:200]}")
    print(f"replay: {len(cases)} reproducers, {'all pass' if ok else 'FAILURES'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seeds")
    s.add_argument("out")
    c = sub.add_parser("craft")
    c.add_argument("seeds")
    c.add_argument("out")
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("seconds", type=float)
    r.add_argument("--jobs", type=int, default=os.cpu_count())
    r.add_argument("--seed", default=str(int(time.time())))
    r.add_argument("--device-state", action="store_true",
                   help="change device and configuration section bytes too "
                   "(base QEMU code; see mutate.py)")
    for p in (r, sub.add_parser("replay")):
        if p is not r:
            p.add_argument("dir")
        p.add_argument("--qemu", default=ASAN_QEMU if os.path.exists(ASAN_QEMU) else QEMU)
        p.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    if a.cmd == "seeds":
        make_seeds(a.out)
        return 0
    if a.cmd == "craft":
        craft(a.seeds, a.out)
        return 0
    if a.cmd == "run":
        print(f"fuzz: seed {a.seed}, {a.jobs} jobs, {a.qemu}", flush=True)
        return 0 if run(a.out, a.seconds, a.jobs, a.qemu, a.seed, a.timeout,
                        a.device_state) else 1
    return 0 if replay(a.dir, a.qemu, a.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
