"""The ratio that turns dirty guest RAM into stream bytes (for the
switchover decision, expected-downtime and auto-converge's trigger) is
that of what the last period really sent, compressed and raw pages
together: with one compression thread and compress-wait-thread off about
a third of the pages go out raw (the rest fill a 256-page batch while the
period's budget lasts), and a ratio of the compressed pages alone (what
the engine used before) would promise 30 % fewer bytes than the stream
carries."""

import re

from harness.migrate import set_params, start_migration, wait_status

from harness.checks import DIRTY, assert_guest_healthy_after, assert_migrated

# dirties more than the link carries: no convergence until the limit rises
BUSY = dict(DIRTY, mb=16, dirty_mbps=32)

TRACE_RE = re.compile(r"ram_compress_update_rates pages=(\d+) ratio=(\d+)/1000")


def periods(trace):
    """(pages, ratio) of each period that sent 1000 pages or more"""
    text = trace.read_text() if trace.exists() else ""
    return [(int(p), int(r) / 1000) for p, r in TRACE_RE.findall(text)
            if int(p) >= 1000]


def test_switchover_ratio_counts_raw_pages(vms, tmp_path):
    trace = tmp_path / "src.trace"
    src = vms("src", workload=BUSY, mem_mb=256, extra_args=[
        "-trace", f"enable=ram_compress_update_rates,file={trace}"]).start()
    dst = vms("dst", workload=BUSY, mem_mb=256, incoming="defer").start()
    src.wait_ready()
    # several periods (a second at least each) before it may converge
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock",
                    caps={"compress": True},
                    params={"compress_threads": 1, "compress_wait_thread": False,
                            "downtime_limit": 1, "max_bandwidth": 24 << 20},
                    dst_params={})
    # the ratio is taken once a period (a second at least): wait for three
    src.wait_for(lambda: len(periods(trace)) >= 3, 120, "3 rate periods")
    set_params(src, downtime_limit=2000, max_bandwidth=1 << 30)
    info = wait_status(src, timeout=120)
    assert_migrated(src, dst, info)
    assert_guest_healthy_after(src, dst)

    ram, comp = info["ram"], info["compression"]
    nonzero = ram["normal"] + comp["pages"]
    # a third of the non-zero pages went raw (busy counts zero pages too)
    assert ram["normal"] > 0.2 * nonzero, (ram, comp)
    # the whole migration's stream bytes per page byte, zero pages left out
    stream = (ram["precopy-bytes"] + ram["downtime-bytes"]
              - 9 * ram["duplicate"]) / (nonzero * 4096)
    compressed_only = (comp["compressed-size"] + 12 * comp["pages"]) / \
        (comp["pages"] * 4096)
    assert stream > 1.3 * compressed_only, (stream, compressed_only)

    assert len(periods(trace)) >= 3, trace.read_text()
    for pages, ratio in periods(trace):
        assert abs(ratio - stream) < 0.25 * stream, (pages, ratio, stream)
        assert ratio > 1.15 * compressed_only, (pages, ratio, compressed_only)
