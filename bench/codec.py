#!/usr/bin/env python3
"""make bench-codec: the page codecs on the test guest's RAM, no QEMU in the
loop.

Boots the test guest with the realistic mix (the `idle` workload), stops
it, dumps its RAM with QMP `pmemsave` into /dev/shm, builds bench/codec.c
and runs it on the dump: ratio and CPU us/page per method, level and pages
per frame.  This is the measurement behind the frame size and zstd's
minimum match (migration/ram-compress-zstd.c); with --levels, behind the
level that follows the link (compress-level-max).
"""

import argparse
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from harness.vm import VM  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mem-mb", type=int, default=1024)
    ap.add_argument("--region-mb", type=int, default=768)
    ap.add_argument("--sample-mb", type=int, default=128,
                    help="non-zero pages to compress")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--levels", action="store_true",
                    help="sweep every level (zlib 1-9, zstd 1-19 on 256- and "
                         "1024-page frames, lz4 and lz4 HC)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not args.out:
        args.out = os.path.join(TOP, "build", "bench",
                                "codec-levels.md" if args.levels else "codec.md")

    exe = os.path.join(TOP, "build", "bench", "codec")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", exe,
                    os.path.join(TOP, "bench", "codec.c"),
                    "-lzstd", "-llz4", "-lz"], check=True)
    with tempfile.TemporaryDirectory(prefix="qemu-mt-codec-", dir="/dev/shm") as shm, \
         tempfile.TemporaryDirectory(prefix="qemu-mt-codec-") as wd:
        image = os.path.join(shm, "ram")
        vm = VM(wd, "src", mem_mb=args.mem_mb,
                workload={"mode": "idle", "mb": args.region_mb, "fill": "mix"}).start()
        try:
            vm.wait_ready(timeout=600)
            vm.qmp.cmd("stop")
            vm.qmp.cmd("pmemsave", val=0, size=args.mem_mb << 20, filename=image)
        finally:
            vm.kill()
        res = subprocess.run([exe, image, str(args.sample_mb)], check=True,
                             capture_output=True, text=True,
                             env=dict(os.environ, REPS=str(args.reps),
                                      LEVELS="1" if args.levels else "0"))
    text = (f"## Page codecs on the test guest's RAM\n\n"
            f"Command: `bench/codec.py {' '.join(sys.argv[1:])}`; guest "
            f"{args.mem_mb} MiB, {args.region_mb} MiB of it filled with the "
            f"realistic mix.  {res.stdout}")
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
