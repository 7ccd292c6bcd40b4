"""The tables, downtime breakdown and chart of a bench run: OUT/results.md
and OUT/results.svg from what OUT/results.json holds (bench/bench.py writes
them after every run; `bench/bench.py --report OUT/results.json` rewrites
them from the raw figures alone)."""

import argparse
import os
import platform
import statistics
import time


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
