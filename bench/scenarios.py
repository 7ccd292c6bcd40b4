#!/usr/bin/env python3
"""Named benchmark scenarios: each committed folder under docs/bench/, the
bench/bench.py arguments that produced it, and what it measures.

    make bench SCENARIO=NAME   bench/bench.py --scenario NAME: those
                               arguments, --out docs/bench/FOLDER
    make bench                 every scenario marked standard
    bench/scenarios.py         this table; --standard: the standard names

The arguments are the recorded command line (results.json "command", less
--out), plus what that run took from defaults that have changed since or
depend on the machine (--threads, --no-return-path for the runs from before
the bench turned return-path on).  MODE@NAME modes need the QEMU that
--binary NAME=PATH names: build/qemu-base is `make build-base`.  Two
committed folders also hold a column of a one-off experimental build
(build/variants/*, no make target); their scenarios rerun the series'
own column only (the description says which).
"""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMPRESS_MODES = ("none,multifd-zstd,compress,compress-nofill,compress-zstd,"
                  "compress-zstd-nofill,compress-lz4,compress-lz4-nofill")
UPSTREAM_MODES = ("none,compress,multifd,multifd-zlib,multifd-zstd,xbzrle,"
                  "7.2-compress,7.2-none")
SKIP_TRACES = ["--trace", "migration_bitmap_clear_unused_pages",
               "--trace", "migration_bitmap_recheck_unused",
               "--trace", "migration_bitmap_sync_start",
               "--trace", "migration_bitmap_sync_end",
               "--trace", "ram_load_zero_unsent"]

UNSHAPED_10G = ["--links", "unshaped,10000"]
RTT_1G = ["--links", "1000", "--rtt", "10,50"]
PLAIN = "none,none@base,multifd,multifd@base"
TLS = "tls,tls@base,multifd+tls,multifd+tls@base"


def noharm_args(modes, links):
    """MODES on the series and on the base QEMU (make build-base), idle"""
    return (["--binary", "base=build/qemu-base/qemu-system-x86_64",
             "--modes", modes] + links
            + ["--reps", "3", "--workloads", "idle", "--threads", "2"])


def limit_args(ms):
    """busy guest, 1 Gbit/s at RTT 10 and 50 ms, downtime limit MS (the
    committed folder also has an @nsd column: a one-off build counting
    only unsent bytes (SIOCOUTQNSD) as pending, not rerun)"""
    return ["--modes", "compress", "--workloads", "dirty",
            "--links", "1000", "--rtt", "10,50", "--downtime-ms", str(ms),
            "--reps", "3", "--threads", "2"]


# name: (bench.py arguments, folder under docs/bench, what it measures,
#        standard: run by a plain `make bench`)
SCENARIOS = {
    "modes-100mbit": (
        ["--links", "100", "--workloads", "idle,dirty", "--modes", COMPRESS_MODES,
         "--reps", "2", "--threads", "2"],
        "modes-100mbit",
        "every compress method (fill-link on and off), none, multifd-zstd; "
        "idle and busy guest, 100 Mbit/s", True),
    "modes-1g-10g-unshaped": (
        ["--links", "1000,10000,unshaped", "--workloads", "idle,dirty",
         "--modes", COMPRESS_MODES, "--reps", "3", "--threads", "2"],
        "modes-1g-10g-unshaped",
        "the same modes at 1 Gbit/s, 10 Gbit/s and unshaped", True),
    "level-follows-link": (
        ["--links", "100,1000", "--workloads", "idle,dirty", "--modes",
         "compress-zstd,compress-zstd-l3,compress-zstd-l9,compress-zstd-auto,"
         "multifd-zstd", "--reps", "3", "--threads", "2"],
        "level-follows-link",
        "zstd at level 1, 3, 9 and following the link (compress-level-max 9), "
        "multifd-zstd; 100 Mbit/s and 1 Gbit/s", True),
    "level-follows-link-final": (
        ["--links", "100,1000", "--workloads", "dirty", "--modes",
         "compress-zstd,compress-zstd-auto", "--reps", "1", "--threads", "2"],
        "level-follows-link-final",
        "level 1 against following the link, busy guest, one run each, "
        "with the series' final level patches", False),
    "skip-unused-8g": (
        ["--mem-mb", "8192", "--region-mb", "1024", "--workloads", "idle",
         "--modes", "none,skip,compress,compress+skip,compress-zstd,"
         "compress-zstd+skip", "--timeout", "300",
         "--links", "1000,100", "--reps", "3", "--threads", "2",
         "--no-return-path"],
        "skip-unused-8g",
        "8 GiB guest that uses 1 GiB, with and without skip-unused-pages; "
        "1 Gbit/s and 100 Mbit/s", True),
    "upstream-modes-idle": (
        ["--workloads", "idle,dirty", "--dirty-mbps", "24", "--links", "1000,100",
         "--modes", UPSTREAM_MODES, "--reps", "3", "--threads", "2",
         "--no-return-path"],
        "upstream-modes-idle",
        "the first series against multifd (none, zlib, zstd), XBZRLE and "
        "QEMU 7.2; idle guest (busy: 24 MiB/s), 1 Gbit/s and 100 Mbit/s", False),
    "upstream-modes-busy": (
        ["--workloads", "dirty", "--links", "1000,100", "--modes", UPSTREAM_MODES,
         "--reps", "3", "--threads", "2", "--no-return-path"],
        "upstream-modes-busy",
        "the same modes, busy guest (16 MiB/s dirtied)", False),
    "xbzrle-busy-100mbit": (
        ["--workloads", "dirty", "--links", "100", "--reps", "2", "--modes",
         "compress,compress+xbzrle,xbzrle,compress-zstd,compress-zstd+xbzrle",
         "--threads", "2", "--no-return-path"],
        "xbzrle-busy-100mbit",
        "compress with and without XBZRLE, busy guest, 100 Mbit/s", False),
    "busy-100mbit-downtime": (
        ["--workloads", "dirty", "--links", "100", "--reps", "3", "--modes",
         "compress,compress-zstd,multifd-zstd", "--breakdown", "--threads", "2"],
        "busy-100mbit-downtime",
        "real downtime and the downtime window phase by phase, busy guest, "
        "100 Mbit/s, limit 300 ms", False),
    "downtime-limit-100": (
        limit_args(100), "downtime-limit-1g-rtt/limit-100",
        "real downtime at a 100 ms limit, busy guest, 1 Gbit/s at RTT 10 and "
        "50 ms", False),
    "downtime-limit-300": (
        limit_args(300), "downtime-limit-1g-rtt/limit-300",
        "the same at a 300 ms limit", False),
    "downtime-rate-drop-1g": (
        ["--modes", "compress", "--workloads", "dirty",
         "--links", "1000", "--downtime-ms", "300", "--rate-drop", "150",
         "--reps", "3", "--threads", "2"],
        "downtime-rate-drop-1g",
        "real downtime when the link halves (1 Gbit/s to 500 Mbit/s) before "
        "the switchover (the committed folder also has an @noavg column: a "
        "one-off build using the last period's bandwidth only, not rerun)",
        False),
    "noharm-unshaped-10g": (
        noharm_args(PLAIN, UNSHAPED_10G), "noharm-unshaped-10g",
        "no compression: the series against the base QEMU, unshaped and "
        "10 Gbit/s", False),
    "noharm-1g-rtt": (
        noharm_args(PLAIN, RTT_1G), "noharm-1g-rtt",
        "the same at 1 Gbit/s, RTT 10 and 50 ms", False),
    "noharm-tls-unshaped-10g": (
        noharm_args(TLS, UNSHAPED_10G), "noharm-tls-unshaped-10g",
        "TLS and multifd+TLS, the series against the base, unshaped and "
        "10 Gbit/s (needs builds with GnuTLS)", False),
    "noharm-tls-1g-rtt": (
        noharm_args(TLS, RTT_1G), "noharm-tls-1g-rtt",
        "the same at 1 Gbit/s, RTT 10 and 50 ms", False),
    "skip-unused-64g-1g": (
        ["--binary", "fb=bench/qemu-pagemap-fallback.sh", "--mem-mb", "65536",
         "--region-mb", "512", "--workloads", "idle", "--links", "1000",
         "--modes", "none,skip,skip@fb", "--reps", "2", "--timeout", "400"]
        + SKIP_TRACES + ["--threads", "2"],
        "skip-unused-64g-1g",
        "64 GiB guest that uses 1.6 GiB, with and without skip-unused-pages "
        "(@fb: /proc/self/pagemap instead of PAGEMAP_SCAN), 1 Gbit/s", False),
    "skip-unused-64g-100mbit": (
        ["--mem-mb", "65536", "--region-mb", "512", "--workloads", "idle",
         "--links", "100", "--modes", "none,skip", "--reps", "1",
         "--timeout", "400"]
        + SKIP_TRACES + ["--threads", "2"],
        "skip-unused-64g-100mbit",
        "the same guest at 100 Mbit/s, one run each", False),
}


def out_dir(name):
    """docs/bench/FOLDER of scenario NAME, relative when run from the top."""
    path = os.path.join(TOP, "docs", "bench", SCENARIOS[name][1])
    return os.path.relpath(path) if os.path.abspath(os.curdir) == TOP else path


def scenario_argv(argv):
    """(NAME, argv) with `--scenario NAME` (or --scenario=NAME) replaced by
    the scenario's arguments and --out docs/bench/FOLDER, the rest of argv
    after them (so that it adds to or overrides them); (None, argv) without."""
    for i, a in enumerate(argv):
        if a == "--scenario" or a.startswith("--scenario="):
            name = a.partition("=")[2] if "=" in a else (
                argv[i + 1] if i + 1 < len(argv) else "")
            rest = argv[:i] + argv[i + (1 if "=" in a else 2):]
            if name not in SCENARIOS:
                raise ValueError(f"unknown scenario {name!r}; known: "
                                 + ", ".join(SCENARIOS))
            return name, SCENARIOS[name][0] + ["--out", out_dir(name)] + rest
    return None, argv


def standard():
    return [n for n, (_a, _f, _d, std) in SCENARIOS.items() if std]


def main():
    if sys.argv[1:] == ["--standard"]:
        print(" ".join(standard()))
        return
    for name, (args, folder, what, std) in SCENARIOS.items():
        print(f"{name}{' (standard)' if std else ''}: docs/bench/{folder}\n"
              f"    {what}\n    bench/bench.py {' '.join(args)}")


if __name__ == "__main__":
    main()
