"""What the e2e tests check after a migration, shared by them (no test
module imports another)."""

# the busy workload of the e2e tests: 64 MiB rewritten at 8 MiB/s, all of
# it verified at 64 MiB/s, a heartbeat every 250 ms
DIRTY = {"mode": "dirty", "mb": 64, "dirty_mbps": 8, "check_mbps": 64, "hb_ms": 250}


def assert_guest_healthy_after(src, dst, min_passes=2, timeout=60):
    """The guest carries on at the destination where the source left off
    (VM.assert_healthy_after), and the source saw no corruption either."""
    hbs = dst.assert_healthy_after(src.heartbeats()[-1]["seq"], min_passes,
                                   timeout, "verification passes on the destination")
    assert src.corruptions() == [], src.corruptions()
    return hbs


def assert_migrated(src, dst, info):
    assert info["status"] == "completed", info
    assert src.qmp.cmd("query-status")["status"] == "postmigrate"
    # "completed" on the source means all was sent; the destination may
    # still be loading the last of it (seen on a loaded host)
    dst.wait_for(lambda: dst.qmp.cmd("query-status")["status"] == "running",
                 60, "the destination to run")
    assert info["ram"]["transferred"] > 0


def assert_source_runs_on(src):
    """After a failed or cancelled migration the source's guest runs on,
    its memory intact (two more verification passes, no error)."""
    assert src.alive(), src.stderr()
    assert src.qmp.cmd("query-status")["status"] == "running"
    before = src.heartbeats()[-1]
    src.wait_for(lambda: src.heartbeats()[-1]["passes"] > before["passes"] + 1,
                 60, "two verification passes on the source")
    assert src.heartbeats()[-1]["errors"] == 0 and src.corruptions() == []
