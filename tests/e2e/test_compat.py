"""Wire compatibility with the old implementation: Debian bookworm's QEMU
7.2 and the patched QEMU migrate to each other with `compress` on, both
ways, and the guest verifies all of its memory afterwards.

The source is stopped before the migration, or (with xbzrle, which needs
passes over pages the guest wrote) before the switchover: 7.2 under TCG
here loses pages that the guest writes during a live migration, with no
capability as well and 7.2 -> 7.2 too (~50 pages differ from the stopped
source; the guest panics at the destination).  A stream from 7.2 written
while the guest ran is checked against 7.2's own load of it instead.
"""

import os
import re
import time

import pytest

from harness.migrate import (assert_compress_postcopy_used,
                             assert_compress_xbzrle_used,
                             migrate_compress_postcopy,
                             migrate_compress_xbzrle, wait_status, watch)
from harness.link import IP_DST, NS_DST, NS_SRC, Link, in_netns
from harness.vm import QEMU, free_port, qemu72

OLD = qemu72()
pytestmark = pytest.mark.skipif(OLD is None, reason="run scripts/fetch-qemu72.sh")

WORKLOAD = {"mode": "dirty", "mb": 64, "dirty_mbps": 8, "check_mbps": 64,
            "hb_ms": 250}
MACHINE = ["-machine", "pc-q35-7.2"]


def side(vms, name, old, args=(), workload=WORKLOAD, **kw):
    if old:
        binary, env, extra = OLD
        return vms(name, workload=workload, qemu=binary, env=env,
                   extra_args=MACHINE + extra + list(args), **kw).start()
    return vms(name, workload=workload, qemu=QEMU,
               extra_args=MACHINE + list(args), **kw).start()


@pytest.mark.parametrize("src_old", [True, False], ids=["7.2-to-ours", "ours-to-7.2"])
def test_compress_across_versions(vms, src_old):
    src = side(vms, "src", src_old)
    dst = side(vms, "dst", not src_old, incoming="defer")
    src.wait_ready()
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "compress", "state": True}])
    src.qmp.cmd("migrate-set-parameters", **{"compress-threads": 2})
    dst.qmp.cmd("migrate-set-parameters", **{"decompress-threads": 2})
    ver = src.qmp.cmd("query-version")["qemu"]
    assert (ver["major"], ver["minor"]) == ((7, 2) if src_old else (10, 0)), ver

    uri = f"tcp:127.0.0.1:{free_port()}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    last = src.heartbeats()[-1]
    src.qmp.cmd("stop")
    src.qmp.cmd("migrate", uri=uri)
    info = wait_status(src)
    assert info["status"] == "completed", info
    stats = info["compression"]
    assert stats["pages"] > 8192, stats           # the region's pages at least
    assert stats["compressed-size"] < stats["pages"] * 4096 * 0.7, stats
    assert wait_status(dst)["status"] == "completed"
    dst.qmp.cmd("cont")

    dst.assert_healthy_after(last["seq"])


@pytest.mark.parametrize("method", ["zstd", "lz4"])
def test_frames_into_72_fail_cleanly(vms, method):
    """A frame travels under 7.2's compressed page flag behind the length
    escape 0xffffffff: 7.2 reads a negative length and fails the load
    cleanly; the source's guest runs on, intact."""
    src = side(vms, "src", False)
    dst = side(vms, "dst", True, incoming="defer")
    src.wait_ready()
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "compress", "state": True}])
    src.qmp.cmd("migrate-set-parameters", **{"compress-threads": 2,
                                             "compress-method": method})
    uri = f"tcp:127.0.0.1:{free_port()}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    hbs = src.heartbeats()
    src.qmp.cmd("migrate", uri=uri)
    assert wait_status(src)["status"] == "failed"
    dst.wait_for(lambda: not dst.alive(), 30, "7.2 to exit")
    assert "Invalid compressed data length: -1" in dst.stderr(), dst.stderr()
    assert src.qmp.cmd("query-status")["running"]
    src.assert_healthy_after(hbs[-1]["seq"], since=len(hbs))


@pytest.mark.parametrize("src_old", [True, False], ids=["7.2-to-ours", "ours-to-7.2"])
def test_compress_postcopy_across_versions(vms, src_old):
    """compress with postcopy-ram, as 7.2 to 9.0 allowed: 7.2 compresses
    in both phases, ours in the precopy phase only; either loads the
    other's stream.  The source is stopped (see above); the destination
    runs from the switch on, pulling the pages it lacks."""
    src = side(vms, "src", src_old)
    # ours traces the records it loads in postcopy mode
    dst = side(vms, "dst", not src_old, incoming="defer",
               args=["-trace", "ram_load_postcopy_loop"] if src_old else [])
    src.wait_ready()
    last = src.heartbeats()[-1]
    info = migrate_compress_postcopy(src, dst, f"tcp:127.0.0.1:{free_port()}",
                                     stop_source=True)
    assert info["status"] == "completed", info
    assert_compress_postcopy_used(info)
    assert wait_status(dst)["status"] == "completed"
    if src_old:
        # 7.2 compressed in the postcopy phase too, and ours loaded those
        flags = [int(m.group(1), 16) for m in re.finditer(
            r"ram_load_postcopy_loop .*flags=0x([0-9a-f]+)", dst.stderr())]
        assert sum(1 for f in flags if f & 0x100) > 1000, len(flags)

    dst.assert_healthy_after(last["seq"])


def test_golden_stream_from_72(vms, tmp_path):
    """A stream that 7.2 wrote with `compress` (saved to a file, as an
    operator's `migrate exec:` would) loads into ours through
    `-incoming file:` and the guest verifies all of its memory."""
    stream = str(tmp_path / "qemu72-compress.mig")
    src = side(vms, "src", True)
    src.wait_ready()
    src.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "compress", "state": True}])
    src.qmp.cmd("migrate-set-parameters", **{"compress-threads": 2})
    last = src.heartbeats()[-1]
    src.qmp.cmd("stop")
    src.qmp.cmd("migrate", uri=f"exec:cat > {stream}")
    info = wait_status(src)
    assert info["status"] == "completed", info
    assert info["compression"]["pages"] > 8192, info["compression"]
    src.quit()

    dst = side(vms, "dst", False, incoming="defer")
    dst.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "compress", "state": True}])
    dst.qmp.cmd("migrate-incoming", uri=f"file:{stream}")
    assert wait_status(dst)["status"] == "completed"
    dst.qmp.cmd("cont")
    dst.assert_healthy_after(last["seq"])


def migrate_stopping(src, dst, uri):
    """compress and xbzrle, the source stopped before the switchover (see
    above); the last heartbeat before the stop."""
    last, info = migrate_compress_xbzrle(src, dst, uri, stop_source=True)
    assert info["status"] == "completed", info
    assert_compress_xbzrle_used(info)
    return last


def test_compress_xbzrle_to_72(vms):
    """compress and xbzrle together from ours to 7.2, as QEMU 8.1 and
    older allowed: compressed first pass, then XBZRLE for the pages in the
    cache and compressed pages for the others; the guest verifies all of
    its memory on 7.2."""
    src = side(vms, "src", False)
    dst = side(vms, "dst", True, incoming="defer")
    src.wait_ready()
    uri = f"tcp:127.0.0.1:{free_port()}"
    last = migrate_stopping(src, dst, uri)
    assert wait_status(dst)["status"] == "completed"
    dst.qmp.cmd("cont")

    dst.assert_healthy_after(last["seq"])


def test_compress_xbzrle_stream_from_72(vms, tmp_path):
    """A stream that 7.2 wrote with compress and xbzrle while the guest ran
    (compressed pages, XBZRLE pages, plain cache misses) loads into ours
    exactly as into 7.2 itself: the two destinations' RAM is identical.
    Not the guest's own check: 7.2 under TCG here loses pages that the
    guest writes during a live migration (7.2 -> 7.2 without any
    capability: ~50 of 131072 pages differ from the stopped source, and
    the guest panics), so the source's RAM is no reference."""
    stream = str(tmp_path / "qemu72-xbzrle.mig")
    src = side(vms, "src", True)
    src.wait_ready()
    migrate_stopping(src, None, f"exec:cat > {stream}")
    src.quit()

    digests = []
    for name, old in (("dst72", True), ("dst", False)):
        dst = side(vms, name, old, incoming="defer")
        dst.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "compress", "state": True},
            {"capability": "xbzrle", "state": True}])
        dst.qmp.cmd("migrate-set-parameters", **{"decompress-threads": 2})
        dst.qmp.cmd("migrate-incoming", uri=f"exec:cat {stream}")
        assert wait_status(dst)["status"] == "completed"
        digests.append(dst.memory_digest())
        dst.quit()
    assert digests[0] == digests[1], digests


def fill_phase(src, mbit, link, settle, seconds=2):
    """Shape the link at MBIT (0: not at all), wait SETTLE seconds (the
    bandwidth QEMU measures is an average over about half a second), and
    return how many pages the pool compressed and how many went
    uncompressed to fill the link in the next SECONDS; None if the
    migration ended."""
    link.set(mbit)
    time.sleep(settle)
    before = src.qmp.cmd("query-migrate")
    time.sleep(seconds)
    after = src.qmp.cmd("query-migrate")
    if after["status"] != "active":
        return None
    return tuple(after["compression"][k] - before["compression"][k]
                 for k in ("pages", "fill-pages"))


def migrate_over_changing_link(vms, dst_old, params, during):
    """Migrate a stopped 1 GiB source with 768 MiB of realistic content
    (about 650 MiB of it not zero) with compress, 2 threads each side and
    params on the source, over a link at 20 Mbit/s that during(src, link)
    then shapes as it likes, returning what it saw; then the link is
    unshaped, the migration completes into ours or 7.2 (dst_old), and the
    guest verifies all of its memory there.  Returns during's result."""
    idle = {"mode": "idle", "mb": 768, "hb_ms": 250}
    with Link() as link:
        link.set(20)
        src = side(vms, "src", False, workload=idle, mem_mb=1024,
                   wrapper=in_netns(NS_SRC))
        dst = side(vms, "dst", dst_old, workload=idle, mem_mb=1024,
                   incoming="defer", wrapper=in_netns(NS_DST))
        src.wait_ready()
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "compress", "state": True}])
        src.qmp.cmd("migrate-set-parameters", **dict(
            {"compress-threads": 2, "max-bandwidth": 1 << 40}, **params))
        dst.qmp.cmd("migrate-set-parameters", **{"decompress-threads": 2})
        uri = f"tcp:{IP_DST}:4444"
        dst.qmp.cmd("migrate-incoming", uri=uri)
        last = src.heartbeats()[-1]
        src.qmp.cmd("stop")
        src.qmp.cmd("migrate", uri=uri)
        seen = during(src, link)
        link.set(0)
        info = wait_status(src)
        assert info["status"] == "completed", info
        assert wait_status(dst)["status"] == "completed"
        dst.qmp.cmd("cont")
        dst.assert_healthy_after(last["seq"])
    return seen


@pytest.mark.skipif(os.getuid() != 0, reason="needs root (ip netns, tc)")
@pytest.mark.parametrize("dst_old", [True, False], ids=["ours-to-7.2", "ours-to-ours"])
def test_fill_link_across_versions(vms, dst_old):
    """compress-fill-link in the 9.0 format (zlib), on a link that binds,
    then does not, then binds again: while 20 Mbit/s carry far less than
    two zlib threads at level 9 compress, pages wait for the threads; at
    1 Gbit/s the threads are behind and pages go uncompressed between
    their records.  7.2 (and ours) load the mixed stream, and the guest
    verifies all of its memory (768 MiB of realistic content, about
    650 MiB of it not zero; the source stopped, as above).  The three
    phases send about 5 + 250 + 20 MiB, so the migration is still on
    when they end."""
    def during(src, link):
        phases = [(mbit, fill_phase(src, mbit, link, settle, seconds))
                  for mbit, settle, seconds in ((20, 1, 2), (1000, 1, 2),
                                                (20, 1, 3))]
        print(f"(Mbit/s, (compressed, filled) pages): {phases}")
        return phases

    phases = migrate_over_changing_link(vms, dst_old, {"compress-level": 9},
                                        during)
    assert all(p is not None for _m, p in phases), phases
    for mbit, (compressed, filled) in phases:
        assert compressed > 0, phases
        if mbit == 20:
            # the link binds: (almost) every page waits for a thread
            assert filled * 10 <= compressed, phases
        else:
            assert filled * 4 >= compressed, phases



def level_phase(src, mbit, link, seconds):
    """Shape the link at MBIT (0: not at all) and return the compression
    levels query-migrate reports over the next SECONDS; None if the
    migration ended."""
    link.set(mbit)
    levels = []

    def sample(info, elapsed):
        if info["status"] not in ("setup", "active"):
            return True
        if "compression" in info:
            levels.append(info["compression"]["level"])
        return elapsed >= seconds

    info = watch(src, (), None, on_sample=sample)
    return levels if info["status"] in ("setup", "active") else None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root (ip netns, tc)")
@pytest.mark.parametrize("dst_old", [True, False], ids=["ours-to-7.2", "ours-to-ours"])
def test_level_follows_link_across_versions(vms, dst_old):
    """compress-level-max in the 9.0 format (zlib, whose level changes
    from one page record to the next): at 20 Mbit/s two threads idle and
    the level goes up from compress-level 1; at 1 Gbit/s they cannot keep
    up and it comes down.  7.2 (and ours) load pages of every level, and
    the guest verifies all of its memory (768 MiB of realistic content;
    the source stopped, as above)."""
    def during(src, link):
        slow = level_phase(src, 20, link, 6)
        fast = level_phase(src, 1000, link, 3)
        print(f"levels at 20 Mbit/s: {slow}; at 1 Gbit/s: {fast}")
        return slow, fast

    slow, fast = migrate_over_changing_link(
        vms, dst_old, {"compress-level": 1, "compress-level-max": 9}, during)
    assert slow and fast, (slow, fast)
    assert slow[0] == 1 and max(slow) >= 3, slow
    assert min(fast) < max(slow), (slow, fast)
