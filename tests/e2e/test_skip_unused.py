"""Capability skip-unused-pages with the project's guest: the pages it
never used are left out, the pages it first writes while the migration
runs arrive, a QEMU 7.2 destination refuses the stream cleanly, and a
savevm keeps every page."""

import re
import subprocess

import pytest

from harness.migrate import set_caps, set_params, start_migration, wait_status
from harness.vm import QEMU, free_port, qemu72

# 1 GiB guest: 32 MiB region at READY, then 32 MiB more touched for the
# first time at 8 MiB/s (4 s of guest time), all verified by the workload
MEM_MB = 1024
GROW = {"mode": "dirty", "mb": 32, "dirty_mbps": 4, "check_mbps": 64,
        "hb_ms": 250, "grow_mb": 32, "grow_mbps": 8}
GROW_PAGES = 32 * 256
# what the guest kernel and the workload use stays far below this
UNUSED_MIN_MB = 700


def unused_mb(info):
    return info["ram"]["unused-pages"] * info["ram"]["page-size"] >> 20


def grown(vm):
    return vm.heartbeats()[-1].get("grown", 0)


@pytest.mark.parametrize("method", [None, "zstd"], ids=["plain", "zstd"])
def test_skip_unused_growing_guest(vms, tmp_path, method):
    """The guest touches new pages all through the migration: those left
    out at the start are dirty later and arrive; the guest's check on the
    destination covers every page it has, the new ones included."""
    src = vms("src", mem_mb=MEM_MB, workload=GROW).start()
    dst = vms("dst", mem_mb=MEM_MB, workload=GROW, incoming="defer").start()
    src.wait_ready()
    caps = {"skip_unused_pages": True}
    if method:
        caps.update(compress=True)
        set_params(dst, compress_method=method)
        set_params(src, compress_method=method)
    # a pass takes seconds, and the migration does not converge before the
    # growth is over
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock", caps=caps,
                    params={"max_bandwidth": 16 << 20, "downtime_limit": 1})
    at_start = grown(src)
    # a TCG guest next to the compression threads on 2 cores is slow
    src.wait_for_line(r"^WL GROWN", 240)
    set_params(src, downtime_limit=2000, max_bandwidth=1 << 30)
    info = wait_status(src)
    assert info["status"] == "completed", info
    assert at_start < GROW_PAGES // 2, at_start     # most grew during it
    assert unused_mb(info) > UNUSED_MIN_MB, info["ram"]
    assert "unused pages skipped:" in src.qmp.hmp("info migrate")
    if method:
        assert info["compression"]["pages"] > 8192, info["compression"]
    dst.wait_for(lambda: dst.qmp.cmd("query-status")["status"] == "running",
                 60, "the destination to run")
    hbs = dst.assert_healthy_after(src.heartbeats()[-1]["seq"])
    assert hbs[-1]["grown"] == GROW_PAGES, hbs[-1]


def test_without_skip_nothing_is_left_out(vms, tmp_path):
    src = vms("src", mem_mb=MEM_MB, workload=GROW).start()
    dst = vms("dst", mem_mb=MEM_MB, workload=GROW, incoming="defer").start()
    src.wait_ready()
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock")
    info = wait_status(src)
    assert info["status"] == "completed", info
    assert info["ram"]["unused-pages"] == 0, info["ram"]
    dst.assert_healthy_after(src.heartbeats()[-1]["seq"])


def test_skip_after_memory_was_read(vms, tmp_path):
    """Something read all of the guest's memory before the migration (a
    pmemsave here; a dump or a migration without skipping that was
    cancelled do the same): the pages never written now map the host's
    shared zero page (or its huge zero page).  PAGEMAP_SCAN tells those
    apart and they are still left out; the /proc/self/pagemap fallback
    cannot, and sends them."""
    wl = {"mode": "idle", "mb": 32, "check_mbps": 64, "hb_ms": 250}
    trace = ["-trace", "migration_bitmap_clear_unused_pages"]
    src = vms("src", mem_mb=MEM_MB, workload=wl, extra_args=trace).start()
    dst = vms("dst", mem_mb=MEM_MB, workload=wl, incoming="defer").start()
    src.wait_ready()
    src.memory_digest()
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock",
                    caps={"skip_unused_pages": True})
    info = wait_status(src)
    assert info["status"] == "completed", info
    how = re.findall(r"migration_bitmap_clear_unused_pages "
                     r"block ram0 \((\S+)\)", src.stderr())
    assert len(how) == 1, src.stderr()[-2000:]
    print(f"{how[0]}: {info['ram']}")
    if how[0] == "pagemap-scan":
        assert unused_mb(info) > UNUSED_MIN_MB, info["ram"]
    else:
        assert unused_mb(info) < UNUSED_MIN_MB, info["ram"]
    dst.assert_healthy_after(src.heartbeats()[-1]["seq"])


OLD = qemu72()


@pytest.mark.skipif(OLD is None, reason="run scripts/fetch-qemu72.sh")
def test_skip_unused_to_72(vms):
    """QEMU 7.2 cannot zero what the source leaves out: the capability,
    in the stream's configuration section, makes it refuse the stream
    ("unknown capability") rather than keep whatever its memory held.
    The source runs on intact, and migrates to it without the capability;
    both memories are then the same."""
    binary, env, extra = OLD
    machine = ["-machine", "pc-q35-7.2"]
    src = vms("src", mem_mb=MEM_MB, workload=GROW, qemu=QEMU,
              extra_args=machine).start()
    src.wait_ready()
    src.wait_for(lambda: grown(src) > 0, 30, "the guest to grow")

    def dst72():
        return vms("dst", mem_mb=MEM_MB, workload=GROW, qemu=binary, env=env,
                   extra_args=machine + extra, incoming="defer").start()
    dst = dst72()
    uri = f"tcp:127.0.0.1:{free_port()}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    set_caps(src, skip_unused_pages=True)
    src.qmp.cmd("migrate", uri=uri)
    info = wait_status(src)
    assert info["status"] == "failed", info
    dst.wait_for(lambda: not dst.alive(), 30, "7.2 to exit")
    assert "unknown capability skip-unused-pages" in dst.stderr(), \
        dst.stderr()
    hbs = src.heartbeats()
    src.assert_healthy_after(hbs[-1]["seq"], since=len(hbs))
    assert src.qmp.cmd("query-status")["status"] == "running"

    dst.kill()
    dst = dst72()
    uri = f"tcp:127.0.0.1:{free_port()}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    src.qmp.cmd("stop")
    last = src.heartbeats()[-1]["seq"]
    set_caps(src, skip_unused_pages=False)
    src.qmp.cmd("migrate", uri=uri)
    info = wait_status(src)
    assert info["status"] == "completed", info
    assert wait_status(dst)["status"] == "completed"
    assert dst.memory_digest() == src.memory_digest()
    dst.qmp.cmd("cont")
    dst.assert_healthy_after(last)


def test_savevm_loadvm_sends_every_page(vms, tmp_path):
    """A snapshot may be loaded into a guest whose memory is not zero: with
    the capability on, savevm still saves every page, and loadvm into the
    same, since grown guest gives back exactly the memory it saved."""
    disk = str(tmp_path / "snap.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"],
                   check=True)
    drive = ["-drive", f"if=none,id=d0,file={disk},format=qcow2",
             "-device", "virtio-blk-pci,drive=d0"]
    vm = vms("vm", mem_mb=MEM_MB, workload=GROW, extra_args=drive).start()
    vm.wait_ready()
    set_caps(vm, skip_unused_pages=True)
    vm.qmp.cmd("stop")
    saved = vm.memory_digest()
    at_save = grown(vm)
    seq_at_save = vm.heartbeats()[-1]["seq"]
    assert vm.qmp.hmp("savevm s1") == ""
    assert vm.qmp.cmd("query-migrate")["ram"]["unused-pages"] == 0
    vm.qmp.cmd("cont")
    # pages that were never used at the snapshot are written now
    assert at_save < GROW_PAGES, at_save
    vm.wait_for(lambda: grown(vm) >= min(at_save + 2048, GROW_PAGES), 120,
                "the guest to grow")
    vm.qmp.cmd("stop")
    assert vm.qmp.hmp("loadvm s1") == ""
    assert vm.memory_digest() == saved
    before = len(vm.heartbeats())
    vm.qmp.cmd("cont")
    # the guest goes on from the snapshot
    vm.assert_healthy_after(seq_at_save, what="verification passes after loadvm",
                            since=before)


BALLOON = ["-object", "iothread,id=io0",
           "-device", "virtio-balloon-pci,free-page-hint=on,iothread=io0"]


@pytest.mark.parametrize("init_on_alloc", [0, 1])
@pytest.mark.parametrize("skip", [False, True], ids=["hint", "hint+skip"])
def test_free_page_hint(vms, tmp_path, skip, init_on_alloc):
    """virtio-balloon free page hinting (the guest's driver takes its free
    pages and reports them; the source leaves them out) alone and together
    with skip-unused-pages: the guest's check stays clean.  Debian's
    kernel zeroes every page it allocates (init_on_alloc=1), the hinted
    ones too: the guest then writes all of its free memory."""
    wl = {"mode": "idle", "mb": 32, "check_mbps": 64, "hb_ms": 250,
          "modules": 1}
    kernel_args = f"init_on_alloc={init_on_alloc}"
    src = vms("src", mem_mb=MEM_MB, workload=wl, extra_args=BALLOON,
              kernel_args=kernel_args).start()
    dst = vms("dst", mem_mb=MEM_MB, workload=wl, extra_args=BALLOON,
              kernel_args=kernel_args, incoming="defer").start()
    src.wait_ready()
    assert src.wait_for_line(r"^WL MODULE \S+virtio_balloon.ko loaded", 5)
    # a first pass of seconds: the guest's hints arrive while it runs
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock",
                    caps={"skip_unused_pages": skip},
                    params={"max_bandwidth": 32 << 20})
    info = wait_status(src)
    assert info["status"] == "completed", info
    ram = info["ram"]
    print(f"free-page-hint, skip={skip}, init_on_alloc={init_on_alloc}: "
          f"{ram}")
    if not skip:
        assert ram["unused-pages"] == 0, ram
    # with skip: the source asks the host in its first iteration, once
    # hints have taken pages out of the dirty bitmap; those are no longer
    # dirty, and not counted as unused.  With init_on_alloc=1, the pages
    # the guest zeroed to hint them are populated at the next sync.
    if not init_on_alloc:
        # the hinted or unused pages, nearly all of the guest's, were not
        # sent (resent pages only make this figure smaller)
        sent = (ram["normal"] + ram["duplicate"]) * ram["page-size"]
        assert (ram["total"] - sent) >> 20 > UNUSED_MIN_MB, ram
        assert ram["duplicate"] < 32768, ram
    dst.wait_for(lambda: dst.qmp.cmd("query-status")["status"] == "running",
                 60, "the destination to run")
    dst.assert_healthy_after(src.heartbeats()[-1]["seq"])


def test_nothing_runs_outside_a_migration(vms, tmp_path):
    """With the capability on and no migration, QEMU never asks the kernel
    which pages are populated (no open of /proc/self/pagemap, hence no
    PAGEMAP_SCAN); a migration asks twice per RAM block it can skip in (in
    its first iteration, and again after the next bitmap sync)."""
    trace = str(tmp_path / "src.strace")
    wrapper = ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=openat",
               "-e", "signal=none", "-o", trace]
    src = vms("src", mem_mb=MEM_MB, workload=GROW, wrapper=wrapper).start()
    dst = vms("dst", mem_mb=MEM_MB, workload=GROW, incoming="defer").start()
    src.wait_ready()
    set_caps(src, skip_unused_pages=True)

    def pagemap_opens():
        with open(trace) as f:
            return sum('"/proc/self/pagemap"' in line for line in f)
    # the guest runs, grows into new pages, for 3 s (12 heartbeats)
    n = len(src.heartbeats())
    src.wait_for(lambda: len(src.heartbeats()) >= n + 12, 60, "heartbeats")
    assert pagemap_opens() == 0
    start_migration(src, dst, f"unix:{tmp_path}/mig.sock",
                    caps={"skip_unused_pages": True})
    info = wait_status(src)
    assert info["status"] == "completed", info
    assert info["ram"]["unused-pages"] > 0, info["ram"]
    # one RAM block, ram0; each question opens it once, twice where the
    # kernel has no PAGEMAP_SCAN and the pagemap file is read instead
    assert pagemap_opens() in (2, 4)
