"""Faults during a compressed live migration of the test guest over a
tc-shaped link between two network namespaces (100 Mbit/s each way),
return-path on as libvirt sets it, each compression method in turn.

Each test repeats its fault --fault-reps times (default 2; `make soak-faults`
runs 100), at a random point (--fault-seed; printed): a random time into the
migration (0-3 s or 3-12 s), while a 1 ms downtime limit keeps the busy guest from
converging (setup, first pass, later passes), or, one time in four, the
pause before switchover (the guest stopped, RAM's last pass and device
state not sent).  After every fault the guest the source still holds runs
on with its integrity check clean, and a migration at the end succeeds.
Where one source survives every fault (dst_kill, cancel, link_lost), its
RSS is sampled after each and must not grow (with 8 faults or more).

- dst_kill: the destination killed; the migration fails.
- cancel: migrate_cancel; the migration is cancelled and the destination
  exits (or never saw a connection).
- src_kill: the source killed; the destination exits with a migration
  error, no hang.  (A new source each time.)
- link_cut: the link down (veth) for 1 to 5 s, then up: the migration
  carries on and completes; the guest moves on each time (ping-pong).
- link_lost: the link down for good: the migration stalls until
  migrate_cancel, which cancels it at once; the destination, which cannot
  know (QEMU sets no timeout on the stream), is killed.  Not after
  pre-switchover: the base QEMU sends the last pass holding the lock its
  monitor needs, so there a lost link blocks QMP, migrate_cancel included,
  until TCP gives up (tcp_retries2, ~15 min).  Lost while the source
  still connects, the connection may fail first ("No route to host"), and
  the next "migrate" is refused ("duplicate yank instance") until that
  connection attempt is over: the test retries it.
- lossy_link: 2 to 6 s of packet loss (1-10 % each way) and delay
  (10-100 ms; see Run.impair), then the link as before; the migration
  completes; the guest moves on each time.
"""

import os
import random
import time

import pytest

from harness.link import IP_DST, IP_SRC, NS_DST, NS_SRC, Link, in_netns
from harness.migrate import set_caps, set_params, wait_status, watch
from harness.proc import rss_flat, rss_kib
from harness.qmp import QMPError

from harness.checks import (DIRTY, assert_guest_healthy_after, assert_migrated,
                            assert_source_runs_on)

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root (ip netns, tc)")

METHODS = ("zlib", "zstd", "lz4")
WL = dict(DIRTY, mb=32)
MEM_MB = 256
MBIT = 100
ADDRESS = {NS_SRC: IP_SRC, NS_DST: IP_DST}
ACTIVE = ("setup", "active", "pre-switchover", "device")


class Run:
    """One test's guest, link and random choices."""

    def __init__(self, vms, link, name, reps, seed):
        self.vms = vms
        self.link = link
        self.reps = reps
        self.rng = random.Random(f"{seed}-{name}")
        self.n = 0
        self.rss_samples = []
        print(f"--fault-seed={seed} --fault-reps={reps}")

    def vm(self, ns, incoming=False):
        self.n += 1
        vm = self.vms(f"{'dst' if incoming else 'src'}{self.n}", workload=WL,
                      mem_mb=MEM_MB, wrapper=in_netns(ns),
                      incoming="defer" if incoming else None)
        vm.ns = ns
        vm.start()
        if not incoming:
            vm.wait_ready()         # a new guest booted
        return vm

    def other(self, vm):
        return NS_DST if vm.ns == NS_SRC else NS_SRC

    def begin(self, src, method, limit_ms=1):
        """A new destination across the link; start migrating to it."""
        dst = self.vm(self.other(src), incoming=True)
        uri = f"tcp:{ADDRESS[dst.ns]}:{4000 + self.n}"
        caps = {"compress": True, "return_path": True, "pause_before_switchover": True}
        for vm in (dst, src):
            set_caps(vm, **caps)
            set_params(vm, compress_method=method)
        set_params(dst, decompress_threads=2)
        set_params(src, compress_threads=2, downtime_limit=limit_ms)
        dst.qmp.cmd("migrate-incoming", uri=uri)
        # A migration cancelled while its connection was still being made
        # (the link lost in setup) keeps the base QEMU's "migration" yank
        # instance until that connection attempt ends: "migrate" is refused
        # until then (seconds, once the link is back)
        deadline = time.monotonic() + 120
        while True:
            try:
                src.qmp.cmd("migrate", uri=uri)
                return dst
            except QMPError as e:
                if "duplicate yank instance" not in e.desc or time.monotonic() > deadline:
                    raise
                print("  migrate refused: the last connection attempt is not over")
                time.sleep(1)

    def point(self, src):
        """Wait for a random point of the migration; describe it."""
        if self.rng.random() < 0.25:
            time.sleep(self.rng.uniform(0, 2))
            set_params(src, downtime_limit=300)
            info = wait_status(src, ("pre-switchover", "failed", "completed",
                                     "cancelled"), timeout=180)
            assert info["status"] == "pre-switchover", info
            return "pre-switchover"
        # half in the first seconds (setup, first pass), half later
        t = self.rng.choice([self.rng.uniform(0, 3), self.rng.uniform(3, 12)])
        time.sleep(t)
        info = src.qmp.cmd("query-migrate")
        assert info["status"] in ACTIVE, info
        return f"{t:.2f}s {info['status']} sync={info.get('ram', {}).get('dirty-sync-count')}"

    def finish(self, src, timeout=240):
        """Let the migration converge and complete; return the final info."""
        def drive(info, _elapsed):
            if info["status"] == "pre-switchover":
                src.qmp.cmd("migrate-continue", state="pre-switchover")
                return False
            return info["status"] not in ACTIVE

        set_params(src, downtime_limit=300)
        return watch(src, (), timeout, on_sample=drive)

    def assert_rss_flat(self):
        """One source that survived every fault: its RSS must not grow
        from the first faults to the last (harness.proc.rss_flat), with 8
        faults or more."""
        r = self.rss_samples
        print(f"source RSS after each fault, MiB: {[k >> 10 for k in r]}")
        if len(r) >= 8:
            assert rss_flat(r)[0], r

    def fail_after(self, src, expect, timeout=60):
        """After a fault: the migration ends as expect, the source guest
        runs on intact."""
        if src.qmp.cmd("query-migrate")["status"] == "pre-switchover":
            src.qmp.cmd("migrate-continue", state="pre-switchover")
        info = wait_status(src, timeout=timeout)
        assert info["status"] in ((expect,) if isinstance(expect, str) else expect), info
        src.wait_for(lambda: src.qmp.cmd("query-status")["status"] == "running",
                     30, "the source guest to run")
        assert_source_runs_on(src)
        self.rss_samples.append(rss_kib(src.proc.pid))
        return info

    def complete(self, src, dst):
        """The migration runs to its end after the fault; the guest
        carries on intact at dst, which holds it from now on."""
        info = self.finish(src)
        assert_migrated(src, dst, info)
        assert_guest_healthy_after(src, dst)
        src.kill()
        return dst

    def repeat(self, src, what, fault):
        """self.reps times: a new destination, a random point of the migration
        to it, fault(src, dst) (which returns the QEMU that holds the guest
        from then on, if not src).  Then the RSS check, where one source
        survived every fault, and the migration that must succeed."""
        for i in range(self.reps):
            method = METHODS[i % 3]
            dst = self.begin(src, method)
            print(f"rep {i} {method}: {what} at {self.point(src)}")
            src = fault(src, dst) or src
        if self.rss_samples:
            self.assert_rss_flat()
        self.migrate_to_end(src, METHODS[self.reps % 3])

    def migrate_to_end(self, src, method):
        """The migration after the faults: it succeeds and the guest
        carries on intact at the destination, which is returned."""
        dst = self.begin(src, method, limit_ms=300)
        return self.complete(src, dst)


def exits(vm, timeout):
    deadline = time.monotonic() + timeout
    while vm.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not vm.alive()


@pytest.fixture
def run(vms, request):
    with Link() as link:
        seed = request.config.getoption("--fault-seed") or \
            str(random.randrange(1 << 30))
        r = Run(vms, link, request.node.name,
                request.config.getoption("--fault-reps"), seed)
        link.set_both(MBIT)
        yield r


def test_dst_kill(run):
    def fault(src, dst):
        dst.kill()
        run.fail_after(src, "failed")
    run.repeat(run.vm(NS_SRC), "destination killed", fault)


def test_cancel(run):
    def fault(src, dst):
        src.qmp.cmd("migrate_cancel")
        run.fail_after(src, "cancelled")
        # the destination sees the stream end and gives up, unless the
        # cancel came before it accepted a connection
        if not exits(dst, 30):
            assert dst.qmp.cmd("query-migrate").get("status") == "setup"
            dst.kill()
        else:
            assert dst.proc.returncode == 1, dst.stderr()
    run.repeat(run.vm(NS_SRC), "migrate_cancel", fault)


def test_src_kill(run):
    def fault(src, dst):
        src.kill()
        assert exits(dst, 30), "destination still running"
        err = dst.stderr()
        assert dst.proc.returncode == 1 and "load of migration failed" in err, \
            (dst.proc.returncode, err)
        return run.vm(NS_SRC)       # the next source
    run.repeat(run.vm(NS_SRC), "source killed", fault)


def test_link_cut(run):
    def fault(src, dst):
        cut = run.rng.uniform(1, 5)
        print(f"  link down for {cut:.1f}s")
        run.link.cable(False)
        time.sleep(cut)
        run.link.cable(True)
        return run.complete(src, dst)
    run.repeat(run.vm(NS_SRC), "link cut", fault)


def test_link_lost(run):
    def fault(src, dst):
        run.link.cable(False)
        time.sleep(run.rng.uniform(1, 3))
        # not continued from pre-switchover: the last pass runs with the
        # lock that QMP needs held (the base QEMU's way), so a cancel would
        # wait until TCP gives up on the link (~15 min)
        info = src.qmp.cmd("query-migrate")
        connecting = info["status"] in ("setup", "failed")
        if info["status"] != "failed":
            assert info["status"] in ACTIVE, info
            print(f"  stalled in {info['status']}, migrate_cancel")
            src.qmp.cmd("migrate_cancel")
        # cancelled, not failed (patch "set cancelling before shutting the
        # return path down"), and at once; but lost while the source still
        # connected, the connection may fail first (no route to the host)
        info = run.fail_after(src, ("cancelled", "failed") if connecting
                              else "cancelled", timeout=30)
        if info["status"] == "failed":
            assert "Failed to connect" in info.get("error-desc", ""), info
        assert dst.alive(), dst.stderr()
        dst.kill()
        run.link.cable(True)
    run.repeat(run.vm(NS_SRC), "link lost", fault)


def test_lossy_link(run):
    def fault(src, dst):
        r = run.rng
        loss, delay, window = r.uniform(1, 10), r.randint(10, 100), r.uniform(2, 6)
        print(f"  {loss:.1f}% loss, {delay} ms delay ({'netem' if run.link.has_netem() else 'nftables+tbf'}) "
              f"for {window:.1f}s")
        run.link.impair(MBIT, loss, delay)
        time.sleep(window)
        run.link.impair(MBIT, 0, 0)
        return run.complete(src, dst)
    run.repeat(run.vm(NS_SRC), "lossy link", fault)
