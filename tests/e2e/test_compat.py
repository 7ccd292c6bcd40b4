"""Wire compatibility with the old implementation: Debian bookworm's QEMU
7.2 and the patched QEMU migrate to each other with `compress` on, both
ways, and the guest verifies all of its memory afterwards.

The source is stopped before the migration: a live migration between 7.2
and 10.0 under TCG crashed the guest here with compression off as well
(a cross-version problem outside the series), and 7.2's own live
`compress` crashed it 7.2 -> 7.2.  The stream is the same either way: every
page of RAM once, as one zlib stream per page.
"""

import pytest

from harness.migrate import wait_status
from harness.vm import QEMU, free_port, qemu72

OLD = qemu72()
pytestmark = pytest.mark.skipif(OLD is None, reason="run scripts/fetch-qemu72.sh")

WORKLOAD = {"mode": "dirty", "mb": 64, "dirty_mbps": 8, "check_mbps": 64,
            "hb_ms": 250}
MACHINE = ["-machine", "pc-q35-7.2"]


def side(vms, name, old, **kw):
    if old:
        binary, env, extra = OLD
        return vms(name, workload=WORKLOAD, qemu=binary, env=env,
                   extra_args=MACHINE + extra, **kw).start()
    return vms(name, workload=WORKLOAD, qemu=QEMU, extra_args=MACHINE,
               **kw).start()


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

    hbs = dst.wait_passes(2, 90)
    assert hbs[0]["seq"] > last["seq"], (hbs[0], last)
    assert hbs[-1]["errors"] == 0 and dst.corruptions() == [], hbs[-1]


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
    hbs = dst.wait_passes(2, 90)
    assert hbs[0]["seq"] > last["seq"], (hbs[0], last)
    assert hbs[-1]["errors"] == 0 and dst.corruptions() == [], hbs[-1]
