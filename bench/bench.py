#!/usr/bin/env python3
"""make bench: every migration mode, on a shaped link, in one run.

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
command) and OUT/results.svg (chart).  Needs root (ip netns, tc).
"""

import argparse
import itertools
import json
import os
import platform
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
from harness.migrate import real_downtime_ms, set_caps, set_params  # noqa: E402
from harness.proc import process_cpu, thread_cpu  # noqa: E402
from harness.vm import QEMU, VM, qemu72  # noqa: E402


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


def link_label(mbit, rtt_ms=0):
    """'1000 Mbit/s', 'unshaped', '100 Mbit/s, RTT 50 ms'."""
    label = f"{mbit} Mbit/s" if mbit else "unshaped"
    return label + (f", RTT {rtt_ms:g} ms" if rtt_ms else "")


def scenario_key(s):
    """Unshaped first, then the fastest link, the shortest RTT, idle."""
    mbit, rtt, workload = s
    return (-(mbit or float("inf")), rtt, workload != "idle", workload)


def scenario(r):
    return (r["link_mbit"], r.get("rtt_ms", 0), r["workload"])


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
        info, last_print, cpu_pass1 = None, 0, None
        levels = []
        while True:
            info = src.qmp.cmd("query-migrate")
            st = info.get("status")
            if "level" in info.get("compression", {}):
                levels.append(info["compression"]["level"])
            el = time.monotonic() - t0
            # the first pass is over at the second bitmap sync
            if cpu_pass1 is None and (
                    st != "active" and st != "setup" or
                    info.get("ram", {}).get("dirty-sync-count", 0) >= 2):
                cpu_pass1 = cpu_seconds(src.proc.pid) - cpu0[0]
            if st in ("completed", "failed", "cancelled"):
                break
            if el > args.timeout:
                src.qmp.cmd("migrate_cancel")
                res["converged"] = False
                while src.qmp.cmd("query-migrate").get("status") not in (
                        "cancelled", "failed", "completed"):
                    time.sleep(0.1)
                # a cancelled migration reports no figures: keep those of
                # the last poll before the cancel
                last = info
                info = src.qmp.cmd("query-migrate")
                if "ram" in last and "ram" not in info:
                    info = dict(last, status=info["status"],
                                **{"total-time": round(el * 1000)})
                break
            # --rate-drop: the link's rate halves as the migration nears
            # its switchover (after the first pass)
            ram = info.get("ram", {})
            if (args.rate_drop is not None and link and mbit and
                    "rate_drop_s" not in res and st == "active" and
                    ram.get("dirty-sync-count", 0) >= 2 and
                    ram.get("remaining", 1 << 62) <= args.rate_drop * 2**20):
                link.set(mbit // 2)
                res["rate_drop_s"] = round(el, 2)
            if el - last_print >= 1 and "ram" in info:
                last_print = el
                ram = info["ram"]
                print(f"\r    {el:6.1f}s {ram['mbps']:8.1f} Mbit/s  "
                      f"sent {ram['transferred'] / 2**20:8.1f} MiB  "
                      f"remaining {ram['remaining'] / 2**20:7.1f} MiB  "
                      f"pass {ram['dirty-sync-count']}   ", end="", flush=True)
            time.sleep(0.1)
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


def median_range(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    med = statistics.median(values)
    fmt = (lambda v: f"{v:.0f}") if max(values) >= 100 else (lambda v: f"{v:.1f}")
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} [{fmt(min(values))}-{fmt(max(values))}]"


def tables(results, modes_order):
    out = []
    scen = sorted({scenario(r) for r in results}, key=scenario_key)
    for mbit, rtt, workload in scen:
        rs = [r for r in results if scenario(r) == (mbit, rtt, workload)]
        base = [r["transferred"] for r in rs if r["mode"] == "none"
                and r["status"] == "completed" and r.get("transferred")]
        base = statistics.median(base) if base else None
        out.append(f"\n### {workload} guest, {link_label(mbit, rtt)} link\n")
        out.append("| mode | total s | downtime ms (QEMU) | downtime ms (real) "
                   "| setup ms "
                   "| sent MiB | ratio | Mbit/s | passes | converged | intact "
                   "| CPU s/GiB src | CPU s/GiB dst | CPU s src pass 1 "
                   "| left out MiB |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:"
                   "|---:|---:|")
        for mode in modes_order:
            m = [r for r in rs if r["mode"] == mode]
            if not m:
                continue
            errs = [r for r in m if r["status"] == "error"]
            if len(errs) == len(m):
                out.append(f"| {mode} | error: {errs[0]['error'][:60]} |" + " |" * 13)
                continue
            ok = [r for r in m if r["status"] != "error"]

            def col(key, scale=1.0, runs=ok):
                return median_range([r[key] * scale for r in runs if r.get(key) is not None])
            done = [r for r in ok if r["status"] == "completed"]

            intact = [r for r in ok if r.get("guest_intact")]

            def per_gib(key, runs):
                return median_range([r[key] / (r["guest_sent"] / 2**30) for r in runs
                                     if r.get(key) is not None and r.get("guest_sent")])
            out.append("| " + " | ".join([
                mode, col("total_ms", 1 / 1000, done), col("downtime_ms", 1, done),
                col("real_downtime_ms", 1, done), col("setup_ms"),
                col("transferred", 1 / 2**20),
                median_range([base / r["transferred"] for r in done
                              if base and r.get("transferred")]),
                col("mbps"), col("passes"),
                f"{sum(r['converged'] for r in ok)}/{len(ok)}",
                f"{sum(bool(r.get('guest_intact')) for r in done)}/{len(done)}"
                if done else "-",
                per_gib("cpu_src_s", ok), per_gib("cpu_dst_s", intact),
                col("cpu_src_pass1_s", 1, ok),
                col("unused_pages", 4096 / 2**20, ok)]) + " |")
        notes = [f"- {r['mode']}, run {r['run'] + 1}: {r['guest_note']}"
                 for r in rs if r.get("guest_note")]
        if notes:
            out.append("\nGuest not intact after migration:\n")
            out.extend(notes)
    return "\n".join(out)


def breakdown_tables(results, modes_order):
    """Per scenario, the downtime window phase by phase (bench/downtime.py),
    one column per mode: median of the runs, ms."""
    out = []
    scen = sorted({scenario(r) for r in results if r.get("breakdown")}, key=scenario_key)
    for sc in scen:
        bds = {m: [r["breakdown"] for r in results if r.get("breakdown") and
                   scenario(r) == sc and r["mode"] == m]
               for m in modes_order}
        bds = {m: b for m, b in bds.items() if b}
        names = []
        for b in bds.values():
            for bd in b:
                for _mark, name, _ms in bd["phases"]:
                    if name not in names:
                        names.append(name)

        def med(values):
            return f"{statistics.median(values):.1f}" if values else "-"
        out.append(f"\n### Downtime window, {sc[2]} guest, {link_label(*sc[:2])} link (ms)\n")
        out.append("| phase | " + " | ".join(bds) + " |")
        out.append("|---|" + "---:|" * len(bds))
        for name in names:
            out.append(f"| {name} | " + " | ".join(
                med([ms for bd in b for _m, n, ms in bd["phases"] if n == name])
                for b in bds.values()) + " |")
        for key, label in (("decompress_wait_ms", "of which: destination waits for "
                            "decompression"),
                           ("device_load_ms", "of which: destination loads device state"),
                           ("guest_pause_ms", "**guest paused** (to the vCPUs started)"),
                           ("downtime_ms", "**QEMU's downtime** (to src-downtime-end)")):
            out.append(f"| {label} | " + " | ".join(
                med([bd[key] for bd in b if bd.get(key) is not None])
                for b in bds.values()) + " |")
    return "\n".join(out)


def svg_chart(results, modes_order, path):
    """Bars of median total time, real downtime and MiB sent per mode, one
    group of three panels per scenario."""
    scen = sorted({scenario(r) for r in results}, key=scenario_key)
    # the pause the guest sees where the run measured it (older data: QEMU's)
    down = (("real downtime (ms)", "real_downtime_ms", 1)
            if any(r.get("real_downtime_ms") is not None for r in results)
            else ("downtime (ms)", "downtime_ms", 1))
    figs = [("total time (s)", "total_ms", 1 / 1000), down,
            ("sent (MiB)", "transferred", 1 / 2**20)]
    pw, ph, bar = 300, 22 * len(modes_order) + 40, 16
    w, h = 150 + pw * len(figs), (ph + 30) * len(scen) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for si, sc in enumerate(scen):
        y0 = si * (ph + 30) + 10
        parts.append(f'<text x="4" y="{y0 + 12}" font-weight="bold">{sc[2]} guest, '
                     f'{link_label(*sc[:2])}</text>')
        for fi, (title, key, scale) in enumerate(figs):
            vals = {}
            for mode in modes_order:
                v = [r[key] * scale for r in results
                     if scenario(r) == sc and r["mode"] == mode
                     and r.get("status") == "completed" and r.get(key) is not None]
                if v:
                    vals[mode] = statistics.median(v)
            top = max(vals.values(), default=1) or 1
            x0 = 150 + fi * pw
            parts.append(f'<text x="{x0}" y="{y0 + 28}">{title}</text>')
            for mi, mode in enumerate(modes_order):
                y = y0 + 36 + mi * 22
                if fi == 0:
                    parts.append(f'<text x="4" y="{y + 12}">{mode}</text>')
                if mode in vals:
                    bw = (pw - 70) * vals[mode] / top
                    parts.append(f'<rect x="{x0}" y="{y}" width="{bw:.1f}" height="{bar}" '
                                 'fill="#4a7ab5"/>')
                    parts.append(f'<text x="{x0 + bw + 3:.1f}" y="{y + 12}">'
                                 f'{vals[mode]:.{0 if vals[mode] >= 20 else 1}f}</text>')
                else:
                    ran = any(scenario(r) == sc and r["mode"] == mode for r in results)
                    parts.append(f'<text x="{x0}" y="{y + 12}" fill="#a00">'
                                 f'{"not converged" if ran else "no run"}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB, {platform.platform()}"


def write_report(data, out):
    """OUT/results.{md,svg} from a run's data (what results.json holds);
    return the markdown."""
    args = argparse.Namespace(**data["args"])
    order = [m for m in args.modes.split(",") if m]
    results, t_start, t_end = data["results"], data.get("t_start"), data.get("t_end")
    when = (f"Date: {time.strftime('%Y-%m-%d', time.gmtime(t_start))}, "
            f"{(t_end - t_start) / 60:.0f} min  " if t_start and t_end else "")
    md = ["# Benchmark results\n",
          f"Command: `{data['command']}`  ",
          f"Machine: {data['machine']}  ",
          when,
          f"Guest: {args.mem_mb} MiB, 1 vCPU (TCG), workload region {args.region_mb} MiB "
          f"(busy: {args.dirty_mbps} MiB/s dirtied); downtime limit {args.downtime_ms} ms; "
          f"{args.threads} compress threads / multifd channels, "
          f"{args.dthreads} decompress threads, level {args.level}; "
          + ("return-path on (as libvirt sets it); " if getattr(args, "return_path", False)
             else "return-path off; ") +
          "link shaped with tc tbf between two network namespaces"
          + (" (RTT added by harness/delayline.c between two TUN devices, half "
             "each way)" if any(r.get("rtt_ms") for r in results) else "")
          + (f"; tcp_rmem/tcp_wmem maximum {args.tcp_buffers} bytes in both"
             if getattr(args, "tcp_buffers", None) else "")
          + "; a run that has "
          f"not completed after {args.timeout} s is cancelled (not converged)"
          + ("; QEMU max-bandwidth set to the link too" if args.max_bandwidth else "")
          + (f"; tcp_notsent_lowat {args.notsent_lowat} bytes on the source"
             if getattr(args, "notsent_lowat", None) else "") + ".\n"
          + "".join(f"MODE@{b.partition('=')[0]}: with the QEMU {b.partition('=')[2]} "
                    "on both sides.  " for b in getattr(args, "binary", [])),
          "Each cell: median [min-max] of the runs; total, downtime and "
          "ratio of the completed ones only, sent MiB and passes of a cancelled run "
          "up to the cancel.  ratio: bytes sent by `none` / bytes sent.  "
          "downtime (QEMU): what query-migrate reports (with return-path, up to the "
          "destination's SHUT).  downtime (real): the pause the guest sees, the "
          "source's STOP event to the destination's RESUME event (QMP timestamps, "
          "one host clock).  CPU s/GiB: CPU "
          "seconds of the QEMU process except its vCPU thread, per GiB of guest RAM sent "
          "(zero, whole, compressed and XBZRLE pages, resent ones included); the "
          "destination's only where the guest came through intact.  "
          "intact: of the completed runs, those whose guest's integrity check was "
          "clean after the migration.",
          tables(results, order)]
    if any(r.get("breakdown") for r in results):
        md.append("\nDowntime window from the trace logs of both QEMUs "
                  "(bench/downtime.py; phases in the order they ended):")
        md.append(breakdown_tables(results, order))
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    svg_chart(results, order, os.path.join(out, "results.svg"))
    return "\n".join(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = ap.parse_args()
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
    command = "bench/bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
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
