"""End-to-end live migration of the project's test guest between two
patched QEMUs, checked by the guest's own memory-integrity workload."""

import os
import subprocess

import pytest

from harness.checks import DIRTY, assert_guest_healthy_after, assert_migrated
from harness.migrate import (assert_compress_postcopy_used,
                             assert_compress_xbzrle_used, migrate,
                             migrate_compress_postcopy,
                             migrate_compress_xbzrle, start_migration,
                             wait_status)
from harness.vm import free_port


def start_pair(vms, workload=DIRTY, dst_kw=None):
    src = vms("src", workload=workload).start()
    dst = vms("dst", workload=workload, incoming="defer", **(dst_kw or {})).start()
    src.wait_ready()
    return src, dst


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_precopy_dirty_guest(vms, tmp_path, transport):
    src, dst = start_pair(vms)
    if transport == "tcp":
        uri = f"tcp:127.0.0.1:{free_port()}"
    else:
        uri = f"unix:{tmp_path}/mig.sock"
    info = migrate(src, dst, uri)
    assert_migrated(src, dst, info)
    assert_guest_healthy_after(src, dst)


def test_destination_dies_mid_migration(vms):
    """Killing the destination fails the migration; the source guest runs on."""
    src, dst = start_pair(vms)
    # slow enough that the migration is still running when we kill dst
    start_migration(src, dst, f"tcp:127.0.0.1:{free_port()}",
                    params={"max_bandwidth": 4 << 20})
    src.wait_for(lambda: src.qmp.cmd("query-migrate")["ram"]["transferred"] > 8 << 20
                 if src.qmp.cmd("query-migrate").get("ram") else False,
                 60, "8 MiB transferred")
    dst.kill()
    info = wait_status(src, timeout=60)
    assert info["status"] == "failed", info
    assert src.qmp.cmd("query-status")["status"] == "running"
    n = len(src.heartbeats())
    before = src.heartbeats()[-1]
    src.wait_for(lambda: len(src.heartbeats()) >= n + 4, 30, "source heartbeats")
    after = src.heartbeats()[-1]
    assert after["seq"] > before["seq"] and after["errors"] == 0
    assert after["passes"] > before["passes"]
    assert src.corruptions() == []


def test_corruption_is_detected(vms, tmp_path):
    """The integrity check is real: overwrite one page of the destination's
    guest RAM from outside after migration, expect the guest to report it."""
    mem = f"/dev/shm/qemu-mt-e2e-{os.getpid()}-{tmp_path.name}"
    src, dst = start_pair(vms, dst_kw={"mem_path": mem})
    info = migrate(src, dst, f"tcp:127.0.0.1:{free_port()}")
    assert_migrated(src, dst, info)
    assert_guest_healthy_after(src, dst, min_passes=1)

    # printed by the guest at boot, on the source; addresses do not move
    m = src.wait_for_line(r"^WL PFN page=(\d+) pfn=0x([0-9a-f]+)", 10)
    page, pfn = int(m.group(1)), int(m.group(2), 16)
    assert pfn * 4096 < 2 << 30   # below the PCI hole: file offset == GPA
    with open(mem, "r+b") as f:
        f.seek(pfn * 4096 + 100)
        old = f.read(16)
        f.seek(pfn * 4096 + 100)
        f.write(bytes(b ^ 0x5A for b in old))
    m = dst.wait_for_line(rf"^WL CORRUPT page={page} ", 30)
    dst.wait_for(lambda: dst.heartbeats()[-1]["errors"] >= 1, 30, "errors >= 1")


@pytest.mark.parametrize("method", ["zlib", "zstd", "lz4"])
def test_compressed_dirty_guest(vms, tmp_path, method):
    """Multi-thread compression with the guest dirtying memory, with each
    method: set up through HMP on the source and QMP on the destination, as
    an operator and libvirt would; the guest's integrity check must stay
    clean."""
    src, dst = start_pair(vms)
    lines = ["migrate_set_capability compress on",
             "migrate_set_parameter compress-threads 2",
             "migrate_set_parameter compress-level 1"]
    if method != "zlib":
        lines.append(f"migrate_set_parameter compress-method {method}")
    for line in lines:
        assert src.qmp.hmp(line) == "", line
    dst.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "compress", "state": True}])
    dst.qmp.cmd("migrate-set-parameters", **{"decompress-threads": 2,
                                             "compress-method": method})
    params = src.qmp.cmd("query-migrate-parameters")
    assert params["compress-threads"] == 2 and params["compress-level"] == 1
    assert params["compress-method"] == method
    assert f"compress-method: {method}" in src.qmp.hmp(
        "info migrate_parameters")

    uri = f"unix:{tmp_path}/mig.sock"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    src.qmp.cmd("migrate", uri=uri)
    info = wait_status(src)
    assert_migrated(src, dst, info)
    stats = info["compression"]
    # the region is filled with realistic content: most pages compress
    assert stats["pages"] > 8192, stats
    assert stats["compressed-size"] < stats["pages"] * 4096 * 0.7, stats
    assert "compression pages:" in src.qmp.hmp("info migrate")
    assert_guest_healthy_after(src, dst)


@pytest.mark.parametrize("method", ["zlib", "zstd"])
def test_compressed_xbzrle_dirty_guest(vms, tmp_path, method):
    """compress and xbzrle together, the guest dirtying memory: after the
    first pass, pages XBZRLE has cached go as deltas against the cache and
    the others are compressed from the copy put in the cache.  A cache that
    differs from what the destination has corrupts the guest silently:
    the guest's integrity check must stay clean."""
    src, dst = start_pair(vms)
    uri = f"unix:{tmp_path}/mig.sock"
    _, info = migrate_compress_xbzrle(src, dst, uri, method)
    assert_migrated(src, dst, info)
    assert_compress_xbzrle_used(info)
    assert "xbzrle pages:" in src.qmp.hmp("info migrate")
    assert_guest_healthy_after(src, dst)


@pytest.mark.parametrize("method", ["zlib", "zstd"])
def test_compressed_postcopy_dirty_guest(vms, tmp_path, method):
    """compress with postcopy-ram: pages compressed in the precopy phase,
    then migrate-start-postcopy while the guest writes; the destination
    runs and pulls what it lacks.  The guest's integrity check must stay
    clean."""
    src, dst = start_pair(vms)
    info = migrate_compress_postcopy(src, dst, f"unix:{tmp_path}/mig.sock",
                                     method)
    assert_migrated(src, dst, info)
    assert_compress_postcopy_used(info)
    assert_guest_healthy_after(src, dst)


def test_savevm_loadvm_compressed(vms, tmp_path):
    """savevm with compress on writes compressed pages into the snapshot.
    Loading it without the capability fails cleanly and starts nothing;
    with the capability on it loads, and the guest verifies its memory."""
    disk = str(tmp_path / "snap.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"],
                   check=True)
    drive = ["-drive", f"if=none,id=d0,file={disk},format=qcow2",
             "-device", "virtio-blk-pci,drive=d0"]
    src = vms("src", workload=DIRTY, extra_args=drive).start()
    src.wait_ready()
    assert src.qmp.hmp("migrate_set_capability compress on") == ""
    assert src.qmp.hmp("migrate_set_parameter compress-threads 2") == ""
    at_save = src.heartbeats()[-1]
    assert src.qmp.hmp("savevm s1") == ""
    info = src.qmp.cmd("query-migrate")
    assert info["compression"]["pages"] > 8192, info
    src.quit()

    dst = vms("dst", workload=DIRTY, extra_args=drive + ["-S"]).start()
    out = dst.qmp.hmp("loadvm s1")
    assert "Received a compressed page, but capability 'compress' is not " \
           "enabled" in out, out
    assert dst.qmp.cmd("query-status")["running"] is False
    assert dst.heartbeats() == []

    assert dst.qmp.hmp("migrate_set_capability compress on") == ""
    assert dst.qmp.hmp("loadvm s1") == ""
    dst.qmp.cmd("cont")
    # the guest goes on from the snapshot: two whole verification passes
    dst.assert_healthy_after(at_save["seq"], what="verification passes after loadvm")
