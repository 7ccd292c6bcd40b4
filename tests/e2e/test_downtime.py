"""The downtime window with compression: the teardown of the compression
threads runs after it on both sides (trace order)."""

import os
import sys

import pytest

from harness.migrate import start_migration, wait_status

from test_migration import DIRTY, assert_guest_healthy_after, assert_migrated

# the trace log parser of bench/downtime.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench"))
import downtime  # noqa: E402


def trace_args(path):
    return ["-msg", "timestamp=on", "-D", str(path), "-trace", "vmstate_downtime_*",
            "-trace", "ram_decompress_load_cleanup", "-trace", "ram_compress_save_cleanup"]


def events(path):
    """[(time, name)] in log order; checkpoints by their name"""
    return [(t, a if ev == "vmstate_downtime_checkpoint" else f"{ev} {a}".rstrip())
            for t, ev, a in downtime.parse(path)]


def index(evs, name):
    found = [i for i, (_t, n) in enumerate(evs) if n == name]
    assert len(found) == 1, (name, evs)
    return found[0]


@pytest.mark.parametrize("method", ["zlib", "zstd"])
def test_teardown_after_the_window(vms, tmp_path, method):
    """With return-path on (libvirt sets it), the destination joins its
    decompression threads after it has started the guest and answered the
    source (SHUT), so neither the guest's pause nor the source's downtime
    waits for it; the source joins its compression threads after its
    downtime has ended."""
    st, dt = tmp_path / "src.trace", tmp_path / "dst.trace"
    src = vms("src", workload=DIRTY, extra_args=trace_args(st)).start()
    dst = vms("dst", workload=DIRTY, incoming="defer", extra_args=trace_args(dt)).start()
    src.wait_ready()
    caps = {"compress": True, "return_path": True}
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock", caps=caps,
                    params={"compress_method": method, "compress_threads": 2},
                    dst_params={"compress_method": method, "decompress_threads": 2})
    info = wait_status(src)
    assert_migrated(src, dst, info)
    dst.wait_for(lambda: "ram_decompress_load_cleanup" in dt.read_text(), 30,
                 "the decompression threads joined")
    src.wait_for(lambda: "ram_compress_save_cleanup" in st.read_text(), 30,
                 "the compression threads joined")

    d = events(dt)
    started = index(d, "dst-precopy-bh-vm-started")
    shut = index(d, "dst-shut-sent")
    joined = index(d, "ram_decompress_load_cleanup threads joined, deferred=1")
    assert started < shut < joined, d
    resume = [e for e in dst.qmp.poll_events() if e["event"] == "RESUME"]
    assert resume, "no RESUME event on the destination"
    ts = resume[0]["timestamp"]
    assert ts["seconds"] + ts["microseconds"] / 1e6 <= d[joined][0], (resume, d)

    s = events(st)
    assert index(s, "src-downtime-end") < index(s, "ram_compress_save_cleanup threads=2"), s
    assert_guest_healthy_after(src, dst)
