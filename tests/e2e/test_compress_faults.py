"""Faults inside zlib, injected with tests/e2e/zlib_shim.c (LD_PRELOAD).

- A compression (or decompression) thread whose codec state cannot be
  created: the migration fails with an error naming the codec, the source
  guest runs on intact, and a second migration to a new destination works.
- A zlib that writes more than stock zlib's compressBound() for a page
  (as zlib-ng does at level 1): the source must still send only what 9.0's
  decoder accepts (the stock bound), i.e. such a page goes uncompressed.
"""

import os

from harness.migrate import set_caps, start_migration, wait_status
from harness.vm import free_port

from harness.checks import (DIRTY, assert_guest_healthy_after, assert_migrated,
                            assert_source_runs_on)


def preload(shim, **env):
    out = dict(os.environ, LD_PRELOAD=shim, **{k: str(v) for k, v in env.items()})
    if "ASAN_OPTIONS" in out:
        # an ASan build (make sanitize) wants its runtime first otherwise
        out["ASAN_OPTIONS"] += ":verify_asan_link_order=0"
    return out


def compressed_migration(src, dst, threads=4, dthreads=2):
    """Migrate src to dst (-incoming defer) with compression; return the
    source's final query-migrate."""
    start_migration(src, dst, f"tcp:127.0.0.1:{free_port()}",
                    caps={"compress": True},
                    params={"compress_threads": threads},
                    dst_params={"decompress_threads": dthreads})
    return wait_status(src, timeout=120)


def migrate_again(vms, src, name):
    dst = vms(name, workload=DIRTY, incoming="defer").start()
    info = compressed_migration(src, dst)
    assert_migrated(src, dst, info)
    assert info["compression"]["pages"] > 8192, info
    assert_guest_healthy_after(src, dst)


def test_compress_thread_setup_fails(vms, zlib_shim):
    """The third compression thread's deflateInit2() fails."""
    src = vms("src", workload=DIRTY,
              env=preload(zlib_shim, ZSHIM_FAIL_DEFLATE_INIT=3)).start()
    dst = vms("dst", workload=DIRTY, incoming="defer").start()
    src.wait_ready()
    info = compressed_migration(src, dst)
    assert info["status"] == "failed", info
    assert "deflateInit2 failed" in info.get("error-desc", ""), info
    assert "zshim: deflateInit2_ call 3 fails" in src.stderr()
    assert_source_runs_on(src)
    dst.wait_for(lambda: not dst.alive(), 30, "the destination to exit")
    migrate_again(vms, src, "dst2")


def test_decompress_thread_setup_fails(vms, zlib_shim):
    """The second decompression thread's inflateInit() fails."""
    src = vms("src", workload=DIRTY).start()
    dst = vms("dst", workload=DIRTY, incoming="defer",
              env=preload(zlib_shim, ZSHIM_FAIL_INFLATE_INIT=2)).start()
    src.wait_ready()
    info = compressed_migration(src, dst)
    assert info["status"] == "failed", info
    dst.wait_for(lambda: not dst.alive(), 30, "the destination to exit")
    err = dst.stderr()
    assert "zshim: inflateInit_ call 2 fails" in err, err
    assert "inflateInit failed" in err, err
    assert dst.proc.returncode == 1, (dst.proc.returncode, err)
    assert_source_runs_on(src)
    migrate_again(vms, src, "dst2")


def test_deflate_beyond_stock_bound(vms, zlib_shim):
    """Random pages, and a zlib whose output for them exceeds the stock
    bound: they are sent uncompressed and the destination, which enforces
    the bound as 9.0 did, loads everything."""
    wl = dict(DIRTY, fill="random")
    src = vms("src", workload=wl, env=preload(zlib_shim, ZSHIM_LARGE=1)).start()
    dst = vms("dst", workload=wl, incoming="defer").start()
    src.wait_ready()
    info = compressed_migration(src, dst, threads=2)
    assert_migrated(src, dst, info)
    # the region's 16384 random pages could not be compressed within it
    assert info["ram"]["normal"] >= 16384, info["ram"]
    assert info["compression"]["busy"] == 0, info["compression"]
    assert_guest_healthy_after(src, dst)


def test_destination_dies_at_switchover(vms):
    """The destination dies while the source, its guest stopped, sends the
    last pass: the threads stop reading guest RAM before the migration
    thread leaves its RCU section (ram_compress_save_cleanup() asserts that
    nothing is left queued), the migration fails, the source guest resumes
    intact, and a second migration works."""
    src = vms("src", workload=DIRTY).start()
    dst = vms("dst", workload=DIRTY, incoming="defer").start()
    src.wait_ready()
    start_migration(src, dst, f"tcp:127.0.0.1:{free_port()}",
                    caps={"compress": True, "pause_before_switchover": True},
                    params={"compress_threads": 4, "downtime_limit": 2000},
                    dst_params={})
    wait_status(src, ("pre-switchover", "failed", "completed"), timeout=120)
    assert src.qmp.cmd("query-migrate")["status"] == "pre-switchover"
    dst.kill()
    src.qmp.cmd("migrate-continue", state="pre-switchover")
    info = wait_status(src, timeout=60)
    assert info["status"] == "failed", info
    src.wait_for(lambda: src.qmp.cmd("query-status")["status"] == "running",
                 30, "the source guest to resume")
    assert_source_runs_on(src)
    set_caps(src, pause_before_switchover=False)
    migrate_again(vms, src, "dst2")
