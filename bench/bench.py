#!/usr/bin/env python3
"""make bench: migration modes on a shaped link, in one run.

Source and destination QEMU run in two network namespaces joined by a veth
pair whose source end is rate-limited with tc (tbf); they migrate over TCP
between them.  With `--rtt` the namespaces are joined by harness/delayline.c
instead (two TUN devices, the RTT added half each way; tbf as before).  For
each link, RTT, workload and mode the test guest migrates `--reps` times;
the tables give the median and [min-max] of each figure.

Modes: the patched QEMU without compression, with `compress` (`-nofill`:
with compress-fill-link off; `-l3`, `-l9`: at that level; `-auto`: from
`--level` up to 9 as the link allows, compress-level-max), with multifd
(compression none, zlib, zstd; as many channels as compress threads), with
XBZRLE; Debian bookworm's QEMU 7.2 with its own `compress` and without;
`tls` and `multifd+tls` (x509 certificates made for the run, verified both
ways; not in the default list).  MODE@NAME: that mode with the QEMU given
as `--binary NAME=PATH` on both sides (e.g. the base QEMU without the
series, to show that migration without compression is no worse).

Writes OUT/results.json (every raw figure), OUT/results.md (tables, machine,
command) and OUT/results.svg (chart; both rendered by bench/report.py).
`--scenario NAME` runs a named scenario of bench/scenarios.py into its
folder under docs/bench (`make bench SCENARIO=NAME`).  Needs root (ip
netns, tc).
"""

import argparse
import itertools
import json
import os
import shutil
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import downtime  # noqa: E402
from harness.link import IP_DST, NS_DST, NS_SRC, Link, in_netns  # noqa: E402
from harness.migrate import real_downtime_ms, set_caps, set_params, watch  # noqa: E402
from harness.proc import process_cpu, thread_cpu  # noqa: E402
from harness.vm import QEMU, VM, qemu72  # noqa: E402
from report import link_label, machine, write_report  # noqa: E402
from scenarios import SCENARIOS, scenario_argv  # noqa: E402


def modes(args):
    n = args.threads
    comp = {"compress-threads": n, "compress-level": args.level,
            "decompress-threads": args.dthreads}
    mfd = {"multifd-channels": n}

    def compressed(method=None, **params):
        """the compress capability with METHOD (None: zlib) and PARAMS"""
        if method:
            params["compress-method"] = method
        return (None, {"compress": True}, dict(comp, **params))

    nofill = {"compress-fill-link": False}
    nowait = {"compress-wait-thread": False}
    return {
        "none": (None, {}, {}),
        "compress": compressed(),
        "compress-zstd": compressed("zstd"),
        "compress-lz4": compressed("lz4"),
        # fixed levels beside --level, and the level that follows the link
        # from --level up to 9 (compress-level-max)
        "compress-zstd-l3": compressed("zstd", **{"compress-level": 3}),
        "compress-zstd-l9": compressed("zstd", **{"compress-level": 9}),
        "compress-zstd-auto": compressed("zstd", **{"compress-level-max": 9}),
        "compress-l9": compressed(**{"compress-level": 9}),
        "compress-auto": compressed(**{"compress-level-max": 9}),
        # compress-fill-link off: wait for a thread even when the link idles
        "compress-nofill": compressed(**nofill),
        "compress-zstd-nofill": compressed("zstd", **nofill),
        "compress-lz4-nofill": compressed("lz4", **nofill),
        # pages that find every thread busy go raw, link busy or not
        "compress-lz4-nowait": compressed("lz4", **nowait),
        "compress-zstd-nowait": compressed("zstd", **nowait),
        "multifd": (None, {"multifd": True}, dict(mfd, **{"multifd-compression": "none"})),
        "multifd-zlib": (None, {"multifd": True},
                         dict(mfd, **{"multifd-compression": "zlib",
                                      "multifd-zlib-level": args.level})),
        "multifd-zstd": (None, {"multifd": True},
                         dict(mfd, **{"multifd-compression": "zstd",
                                      "multifd-zstd-level": args.level})),
        "xbzrle": (None, {"xbzrle": True}, {}),
        # compression in the first pass, XBZRLE for cached pages after it
        "compress+xbzrle": (None, {"compress": True, "xbzrle": True}, comp),
        "compress-zstd+xbzrle": (None, {"compress": True, "xbzrle": True},
                                 dict(comp, **{"compress-method": "zstd"})),
        # leave out the pages the guest never used (issue 13)
        "skip": (None, {"skip-unused-pages": True}, {}),
        "compress+skip": (None, {"compress": True, "skip-unused-pages": True},
                          comp),
        "compress-zstd+skip": (None, {"compress": True,
                                      "skip-unused-pages": True},
                               dict(comp, **{"compress-method": "zstd"})),
        "7.2-compress": ("7.2", {"compress": True}, comp),
        "7.2-none": ("7.2", {}, {}),
        # TLS with x509 credentials (tls_files), verified both ways
        "tls": (None, {}, {"tls-creds": TLS_ID}),
        "multifd+tls": (None, {"multifd": True},
                        dict(mfd, **{"multifd-compression": "none",
                                     "tls-creds": TLS_ID})),
    }


def default_modes():
    # skip: a scenario of its own (make bench: sparse guest); tls: needs
    # a QEMU built with GnuTLS
    return [m for m in modes(argparse.Namespace(threads=1, level=1, dthreads=1))
            if "skip" not in m and "tls" not in m]


def mode_spec(all_modes, mode, binaries):
    """(binary or None, (version, caps, params)) of MODE or MODE@NAME."""
    base, _, name = mode.partition("@")
    if base not in all_modes:
        raise ValueError(f"unknown mode {base}; known: {', '.join(all_modes)}")
    spec = all_modes[base]
    if not name:
        return None, spec
    if name not in binaries:
        raise ValueError(f"{mode}: no --binary {name}=PATH")
    if spec[0] is not None:
        raise ValueError(f"{mode}: {base} names its own QEMU")
    return binaries[name], spec


TLS_ID = "tls0"
# openssl configuration: the CA's, then the extensions of each certificate
TLS_CONF = {
    "ca": """[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = qemu-mt bench CA
[ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
""",
    "server": f"""basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:{IP_DST},DNS:{NS_DST}
""",
    "client": """basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
""",
}


def tls_files(workdir):
    """A CA, a server certificate for IP_DST and a client certificate, as
    QEMU's tls-creds-x509 reads them from one directory (ca-cert.pem,
    server-{cert,key}.pem, client-{cert,key}.pem); made with openssl.
    Returns the directory."""
    d = os.path.join(workdir, "tls")
    os.makedirs(d, exist_ok=True)

    def ssl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    for name, conf in TLS_CONF.items():
        with open(os.path.join(d, f"{name}.cnf"), "w") as f:
            f.write(conf)
        ssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", f"{name}-key.pem")
    ssl("req", "-new", "-x509", "-config", "ca.cnf", "-key", "ca-key.pem",
        "-days", "30", "-out", "ca-cert.pem")
    for name, cn in (("server", IP_DST), ("client", "qemu-mt bench client")):
        ssl("req", "-new", "-key", f"{name}-key.pem", "-subj", f"/CN={cn}",
            "-out", f"{name}.csr")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca-cert.pem",
            "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "30",
            "-extfile", f"{name}.cnf", "-out", f"{name}-cert.pem")
    return d


def tls_args(tls_dir, endpoint):
    return ["-object", f"tls-creds-x509,id={TLS_ID},dir={tls_dir},"
                       f"endpoint={endpoint},verify-peer=on"]


def tls_probe(binary, env, extra, tls_dir):
    """None if binary loads the run's x509 credentials, else why not (a
    QEMU built without GnuTLS)."""
    p = subprocess.run(
        [binary, "-M", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"]
        + extra + tls_args(tls_dir, "server"),
        input='{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n',
        capture_output=True, text=True, env=env, timeout=60)
    return None if p.returncode == 0 else (p.stderr.strip() or f"exit {p.returncode}")


def cpu_seconds(pid):
    """CPU time of a QEMU process without its vCPU threads (TCG burns a
    vCPU whatever the migration does).  The process total, not a sum over
    the live threads: compression and multifd threads have ended by the
    time the migration completes, and their time would be lost."""
    return process_cpu(pid) - sum(sec for name, sec in thread_cpu(pid).values()
                                  if name.startswith("CPU "))


def guest_bytes_sent(info):
    """Guest RAM the migration moved, resent pages included: every page it
    sent whole, compressed, as a zero page or XBZRLE-encoded."""
    ram = info.get("ram", {})
    pages = (ram.get("normal", 0) + ram.get("duplicate", 0)
             + info.get("compression", {}).get("pages", 0)
             + info.get("xbzrle-cache", {}).get("pages", 0))
    return pages * ram.get("page-size", 4096)


def one_run(args, workdir, mode, spec, workload, mbit, run_id, rtt=0,
            binary=None, tls_dir=None, link=None):
    version, caps, params = spec
    if version == "7.2":
        binary, env, extra = qemu72()
        extra = extra + ["-machine", "pc-q35-7.2"]
    else:
        binary, env, extra = binary or QEMU, None, []
    extra = extra + ["-name", "guest,debug-threads=on"]
    # 7.2 has none of the downtime checkpoints
    traced = (args.breakdown or args.trace) and version is None

    def trace_args(side):
        if not traced:
            return []
        path = os.path.join(workdir, f"{side}.trace")
        if os.path.exists(path):
            os.unlink(path)
        events = ["vmstate_downtime_*", "ram_decompress_sync_all"] + args.trace
        return ["-msg", "timestamp=on", "-D", path] + \
            [a for ev in events for a in ("-trace", ev)]
    wl = {"mode": workload, "mb": args.region_mb, "hb_ms": 100}
    if workload == "dirty":
        wl["dirty_mbps"] = args.dirty_mbps
    tls = "tls-creds" in params
    src = VM(workdir, "src", mem_mb=args.mem_mb, workload=wl, qemu=binary,
             env=env, wrapper=in_netns(NS_SRC), extra_args=extra + trace_args("src")
             + (tls_args(tls_dir, "client") if tls else []))
    dst = VM(workdir, "dst", mem_mb=args.mem_mb, workload=wl, qemu=binary,
             env=env, incoming="defer", wrapper=in_netns(NS_DST),
             extra_args=extra + trace_args("dst")
             + (tls_args(tls_dir, "server") if tls else []))
    res = {"mode": mode, "workload": workload, "link_mbit": mbit, "rtt_ms": rtt,
           "run": run_id}
    try:
        src.start()
        dst.start()
        src.wait_ready(timeout=300)
        time.sleep(1)
        base = {"downtime-limit": args.downtime_ms}
        if args.max_bandwidth and mbit:
            base["max-bandwidth"] = mbit * 1000 * 1000 // 8
        else:
            base["max-bandwidth"] = 1 << 40     # effectively unlimited
        # libvirt always turns return-path on: the source's downtime then
        # ends when the destination says it is done (SHUT)
        if args.return_path:
            caps = dict(caps, **{"return-path": True})
        for vm in (src, dst):
            set_caps(vm, **{k: v for k, v in caps.items()})
        set_params(dst, **{k: v for k, v in params.items()
                           if not k.startswith("compress-")
                           or k == "compress-method"})
        set_params(src, **dict(base, **{k: v for k, v in params.items()
                                        if k != "decompress-threads"}))
        uri = f"tcp:{IP_DST}:4444"
        dst.qmp.cmd("migrate-incoming", uri=uri)
        cpu0 = (cpu_seconds(src.proc.pid), cpu_seconds(dst.proc.pid))
        t0 = time.monotonic()
        src.qmp.cmd("migrate", uri=uri)
        seen = {"print": 0, "cpu_pass1": None, "levels": [], "el": 0}

        def sample(info, _elapsed):
            """every poll; true once the migration ran past --timeout"""
            st = info.get("status")
            ram = info.get("ram", {})
            el = seen["el"] = time.monotonic() - t0
            if "level" in info.get("compression", {}):
                seen["levels"].append(info["compression"]["level"])
            # the first pass is over at the second bitmap sync
            if seen["cpu_pass1"] is None and (
                    st not in ("active", "setup") or
                    ram.get("dirty-sync-count", 0) >= 2):
                seen["cpu_pass1"] = cpu_seconds(src.proc.pid) - cpu0[0]
            if st in ("completed", "failed", "cancelled"):
                return False
            if el > args.timeout:
                return True
            # --rate-drop: the link's rate halves as the migration nears
            # its switchover (after the first pass)
            if (args.rate_drop is not None and link and mbit and
                    "rate_drop_s" not in res and st == "active" and
                    ram.get("dirty-sync-count", 0) >= 2 and
                    ram.get("remaining", 1 << 62) <= args.rate_drop * 2**20):
                link.set(mbit // 2)
                res["rate_drop_s"] = round(el, 2)
            if el - seen["print"] >= 1 and "ram" in info:
                seen["print"] = el
                print(f"\r    {el:6.1f}s {ram['mbps']:8.1f} Mbit/s  "
                      f"sent {ram['transferred'] / 2**20:8.1f} MiB  "
                      f"remaining {ram['remaining'] / 2**20:7.1f} MiB  "
                      f"pass {ram['dirty-sync-count']}   ", end="", flush=True)
            return False

        info = watch(src, timeout=None, on_sample=sample)
        if info["status"] not in ("completed", "failed", "cancelled"):
            # past --timeout
            src.qmp.cmd("migrate_cancel")
            res["converged"] = False
            # a cancelled migration reports no figures: keep those of the
            # last poll before the cancel
            last = info
            info = watch(src, timeout=None)
            if "ram" in last and "ram" not in info:
                info = dict(last, status=info["status"],
                            **{"total-time": round(seen["el"] * 1000)})
        levels, cpu_pass1 = seen["levels"], seen["cpu_pass1"]
        print("\r" + " " * 90 + "\r", end="")
        res["status"] = info["status"]
        res.setdefault("converged", info["status"] == "completed")
        if tls:
            res["tls_creds"] = src.qmp.cmd("query-migrate-parameters").get("tls-creds")
        if info["status"] == "completed":
            # "completed" on the source: all sent; the destination may
            # still be loading the last of it
            deadline = time.monotonic() + 60
            while dst.alive() and time.monotonic() < deadline and \
                    dst.qmp.cmd("query-status")["status"] != "running":
                time.sleep(0.05)
        # a QEMU that exited (guest panic with -no-reboot) has no figure
        cpu1 = tuple(cpu_seconds(vm.proc.pid) if vm.alive() else None
                     for vm in (src, dst))
        ram = info.get("ram", {})
        res.update({
            "total_ms": info.get("total-time"),
            "downtime_ms": info.get("downtime"),
            "setup_ms": info.get("setup-time"),
            "transferred": ram.get("transferred"),
            "downtime_bytes": ram.get("downtime-bytes"),
            "mbps": ram.get("mbps"),
            "passes": ram.get("dirty-sync-count"),
            "ram_total": ram.get("total"),
            "guest_sent": guest_bytes_sent(info),
            "cpu_src_s": None if cpu1[0] is None else round(cpu1[0] - cpu0[0], 2),
            "cpu_dst_s": None if cpu1[1] is None else round(cpu1[1] - cpu0[1], 2),
            "cpu_src_pass1_s": None if cpu_pass1 is None else round(cpu_pass1, 2),
            "unused_pages": ram.get("unused-pages"),
            # pages compressed, and sent uncompressed by compress-fill-link
            "compressed_pages": info.get("compression", {}).get("pages"),
            "fill_pages": info.get("compression", {}).get("fill-pages"),
            # the compression level over the polls (compress-level-max)
            "level_max": max(levels) if levels else None,
            "level_mean": round(statistics.mean(levels), 1) if levels else None,
        })
        if info["status"] == "completed" and dst.alive():
            # the pause the guest sees: source STOP to destination RESUME
            real = real_downtime_ms(src, dst)
            res["real_downtime_ms"] = None if real is None else round(real, 1)
            if traced:
                # the destination's last checkpoints follow its RESUME
                time.sleep(0.5)
                res["breakdown"] = downtime.breakdown(
                    os.path.join(workdir, "src.trace"), os.path.join(workdir, "dst.trace"))
        if traced and args.trace:
            # kept for reading: out/traces/MODE-LINK-WORKLOAD-RUN.{src,dst}.trace
            tdir = os.path.join(args.out, "traces")
            os.makedirs(tdir, exist_ok=True)
            for side in ("src", "dst"):
                path = os.path.join(workdir, f"{side}.trace")
                if os.path.exists(path):
                    link = f"{mbit}-rtt{rtt}" if rtt else f"{mbit}"
                    shutil.copy(path, os.path.join(
                        tdir, f"{mode}-{link}-{workload}-{run_id}.{side}.trace"))
        if info["status"] == "completed":
            try:
                dst.wait_for(lambda: len(dst.heartbeats()) >= 3, 60, "heartbeats")
                hb = dst.heartbeats()[-1]
                res["guest_intact"] = hb["errors"] == 0 and not dst.corruptions()
            except Exception as e:
                res["guest_intact"] = False
                panic = [ln for ln in dst.serial_lines() if "Kernel panic" in ln]
                res["guest_note"] = (panic[0][:160] if panic else
                                     "destination QEMU exited" if not dst.alive()
                                     else str(e)[:160])
        return res
    except Exception as e:      # a broken mode must not stop the others
        res["status"] = "error"
        res["error"] = str(e)[:300]
        return res
    finally:
        src.kill()
        dst.kill()


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", metavar="NAME",
                    help="the arguments of a named scenario (bench/scenarios.py) "
                         "and --out docs/bench/FOLDER; the other arguments add to "
                         "or override them; known: " + ", ".join(SCENARIOS))
    ap.add_argument("--mem-mb", type=int, default=1024)
    ap.add_argument("--region-mb", type=int, default=768,
                    help="guest memory filled with realistic content")
    ap.add_argument("--workloads", default="idle,dirty")
    ap.add_argument("--dirty-mbps", type=int, default=16,
                    help="busy workload: MiB/s dirtied (more than 100 Mbit/s)")
    ap.add_argument("--links", default="1000,100",
                    help="Mbit/s, comma separated; 0 or 'unshaped': no tbf")
    ap.add_argument("--rtt", default="0", metavar="MS[,MS...]",
                    help="round-trip times to add (harness/delayline.c), each "
                         "with every link; 0: the veth pair (default)")
    ap.add_argument("--tcp-buffers", type=int, metavar="BYTES",
                    help="the most TCP buffers per socket (tcp_rmem and tcp_wmem's "
                         "maximum) in both namespaces; default: the kernel's "
                         "(4 MiB to send: below 1 Gbit/s at 50 ms RTT)")
    ap.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                    help="a QEMU for modes MODE@NAME, both sides (repeatable)")
    ap.add_argument("--modes", default=",".join(default_modes()),
                    help="comma separated; MODE@NAME: with --binary NAME's QEMU; "
                         "known: " + ", ".join(modes(argparse.Namespace(
                             threads=1, level=1, dthreads=1))))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                    help="compress threads and multifd channels (default: cores)")
    ap.add_argument("--dthreads", type=int, default=min(2, os.cpu_count() or 2))
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--downtime-ms", type=int, default=300)
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds before a migration counts as not converging")
    ap.add_argument("--no-return-path", dest="return_path", action="store_false",
                    help="without the return-path capability (libvirt sets it)")
    ap.add_argument("--breakdown", action="store_true",
                    help="trace both QEMUs and break each run's downtime down "
                         "(bench/downtime.py)")
    ap.add_argument("--rate-drop", type=float, metavar="MIB",
                    help="halve the tbf rate once the RAM still to send falls "
                         "to MIB after the first pass (a bandwidth drop just "
                         "before the switchover); restored for the next run")
    ap.add_argument("--trace", action="append", default=[], metavar="EVENT",
                    help="also trace EVENT (QEMU -trace pattern) in both QEMUs and "
                         "keep the logs under OUT/traces (repeatable)")
    ap.add_argument("--notsent-lowat", type=int, metavar="BYTES",
                    help="net.ipv4.tcp_notsent_lowat in the source's namespace "
                         "(default: the kernel's, unlimited)")
    ap.add_argument("--max-bandwidth", action="store_true",
                    help="secondary view: also set QEMU's max-bandwidth to the link")
    ap.add_argument("--out", default=os.path.join(TOP, "build", "bench"))
    ap.add_argument("--report", metavar="JSON",
                    help="only rewrite results.{md,svg} next to JSON from its raw figures")
    return ap


def main():
    try:
        name, argv = scenario_argv(sys.argv[1:])
    except ValueError as e:
        sys.exit(str(e))
    args = parser().parse_args(argv)
    args.scenario = name
    if args.report:
        with open(args.report) as f:
            print(write_report(json.load(f), os.path.dirname(os.path.abspath(args.report))))
        return
    if os.getuid() != 0:
        sys.exit("bench.py needs root (ip netns, tc)")
    all_modes = modes(args)
    binaries = {}
    for b in args.binary:
        name, eq, path = b.partition("=")
        if not eq or not name or not os.access(path, os.X_OK):
            sys.exit(f"--binary {b}: want NAME=PATH of an executable")
        binaries[name] = os.path.abspath(path)
    order = [m for m in args.modes.split(",") if m]
    specs = {}
    for m in order:
        try:
            specs[m] = mode_spec(all_modes, m, binaries)
        except ValueError as e:
            sys.exit(str(e))
    if any(spec[0] == "7.2" for _b, spec in specs.values()) and qemu72() is None:
        sys.exit("QEMU 7.2 not unpacked: run scripts/fetch-qemu72.sh (make qemu72)")
    os.makedirs(args.out, exist_ok=True)
    command = "bench/bench.py " + " ".join(shlex.quote(a) for a in argv)
    links = [0 if x.strip() in ("0", "unshaped") else int(x) for x in args.links.split(",")]
    rtts = [float(x) if "." in x else int(x) for x in args.rtt.split(",")]
    workloads = args.workloads.split(",")
    total = len(rtts) * len(links) * len(workloads) * len(order) * args.reps
    results = []
    t_start = time.time()

    def record(r):
        print(f"    {r['status']}: total {r.get('total_ms')} ms, "
              f"downtime {r.get('downtime_ms')} ms "
              f"(real {r.get('real_downtime_ms')} ms), sent "
              f"{(r.get('transferred') or 0) / 2**20:.1f} MiB"
              + (f", {r['error']}" if r.get("error") else ""), flush=True)
        results.append(r)
        # rewritten after each run: an interrupted bench still leaves its
        # figures and tables
        data = {"command": command, "machine": machine(),
                "t_start": t_start, "t_end": time.time(),
                "args": vars(args), "results": results}
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(data, f, indent=1)
        return write_report(data, args.out)

    with tempfile.TemporaryDirectory(prefix="qemu-mt-bench-") as wd:
        tls_dir = None
        tls_modes = [m for m, (_b, spec) in specs.items() if "tls-creds" in spec[2]]
        if tls_modes:
            tls_dir = tls_files(wd)
        for m in tls_modes:
            binary, spec = specs[m]
            b, env, extra = qemu72() if spec[0] == "7.2" else (binary or QEMU, None, [])
            why = tls_probe(b, env, extra, tls_dir)
            if why:
                sys.exit(f"mode {m}: {b} cannot use TLS: {why}")
        n = 0
        for rtt in rtts:
            with Link(rtt_ms=rtt) as link:
                if args.notsent_lowat:
                    link.notsent_lowat(args.notsent_lowat)
                if args.tcp_buffers:
                    link.tcp_buffers(args.tcp_buffers)
                for mbit in links:
                    link.set(mbit)
                    for workload, rep, mode in itertools.product(
                            workloads, range(args.reps), order):
                        n += 1
                        print(f"[{n}/{total}] {link_label(mbit, rtt)}, {workload}, "
                              f"{mode}, run {rep + 1}/{args.reps}", flush=True)
                        binary, spec = specs[mode]
                        md = record(one_run(args, wd, mode, spec, workload, mbit, rep,
                                            rtt=rtt, binary=binary, tls_dir=tls_dir,
                                            link=link))
                        if args.rate_drop is not None:
                            link.set(mbit)
                        if not link.alive():
                            sys.exit(f"the delay line stopped: {link.delayline_log}")
            if link.delayline_log:
                print(link.delayline_log, end="", flush=True)
    print(md)
    print(f"\nwritten: {args.out}/results.{{json,md,svg}}")


if __name__ == "__main__":
    main()
