"""Migration helpers on top of harness.vm.VM."""

import time

DONE = ("completed", "failed", "cancelled")


def set_caps(vm, **caps):
    """set_caps(vm, compress=True, xbzrle=False): underscores become dashes."""
    if caps:
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": k.replace("_", "-"), "state": bool(v)}
            for k, v in caps.items()])


def set_params(vm, **params):
    if params:
        vm.qmp.cmd("migrate-set-parameters",
                   **{k.replace("_", "-"): v for k, v in params.items()})


def watch(vm, until=DONE, timeout=300, interval=0.1, on_sample=None):
    """Watch (and drive) vm's migration: poll query-migrate every interval
    seconds until its status is one of until; return that last answer.
    on_sample(info, seconds since the watch began), if given, sees every
    answer before that test and may act on it (continue from
    pre-switchover, shape the link, sample CPU, print); a true return ends
    the watch with that answer.  Raises TimeoutError after timeout seconds
    (None: no limit)."""
    t0 = time.monotonic()
    while True:
        info = vm.qmp.cmd("query-migrate")
        elapsed = time.monotonic() - t0
        if on_sample and on_sample(info, elapsed):
            return info
        if info.get("status") in until:
            return info
        if timeout is not None and elapsed > timeout:
            raise TimeoutError(f"{vm.name}: migration still {info.get('status')}"
                               f" after {timeout}s: {info}")
        time.sleep(interval)


def wait_status(vm, statuses=DONE, timeout=300, interval=0.1):
    """Poll query-migrate until its status is one of statuses; return it."""
    return watch(vm, statuses, timeout, interval)


def event_time(ev):
    ts = ev["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def real_downtime_ms(src, dst):
    """The pause as the guest sees it: the source's last STOP event to the
    destination's first RESUME event after it (QMP timestamps, one host
    clock); None if either is missing."""
    stops = [event_time(e) for e in src.qmp.poll_events()
             if e["event"] == "STOP"]
    if not stops:
        return None
    resumes = [event_time(e) for e in dst.qmp.poll_events()
               if e["event"] == "RESUME" and event_time(e) >= stops[-1]]
    return (resumes[0] - stops[-1]) * 1000 if resumes else None


def wait_syncs(vm, syncs, timeout=180):
    """Wait until the migration from vm has synchronized its dirty bitmap
    syncs times (or completed); fail if it failed or was cancelled."""
    def done(info, _elapsed):
        # device, pre-switchover, wait-unplug: still on the way
        assert info["status"] not in ("failed", "cancelled"), info
        return info.get("ram", {}).get("dirty-sync-count", 0) >= syncs
    watch(vm, ("completed",), timeout, on_sample=done)


def migrate_compress_xbzrle(src, dst, uri, method=None, stop_source=False):
    """Migrate with compress and xbzrle on both sides (dst: -incoming defer;
    None: uri writes a stream to a file): a cache for a quarter of the workload's 64 MiB
    (hits and misses in every pass), passes of a few seconds (8 MB/s) under
    a 1 ms downtime limit, so five passes at least while the guest writes;
    then the source stopped if stop_source, and the limits lifted.  Returns
    the last heartbeat before that and the source's final query-migrate."""
    sides = (src, dst) if dst else (src,)
    for vm in sides:
        set_caps(vm, compress=True, xbzrle=True)
        if method:
            set_params(vm, compress_method=method)
    set_params(src, compress_threads=2, xbzrle_cache_size=16 << 20,
               max_bandwidth=8 << 20, downtime_limit=1)
    if dst:
        set_params(dst, decompress_threads=2)
        dst.qmp.cmd("migrate-incoming", uri=uri)
    src.qmp.cmd("migrate", uri=uri)
    wait_syncs(src, 5)
    last = src.heartbeats()[-1]
    if stop_source:
        src.qmp.cmd("stop")
    set_params(src, max_bandwidth=1 << 30, downtime_limit=300)
    return last, wait_status(src)


def assert_compress_xbzrle_used(info):
    """Five passes or more, the region compressed, XBZRLE hits and misses."""
    assert info["ram"]["dirty-sync-count"] >= 5, info["ram"]
    assert info["compression"]["pages"] > 8192, info["compression"]
    cache = info["xbzrle-cache"]
    assert cache["pages"] > 0 and cache["cache-miss"] > 0, cache


def migrate_compress_postcopy(src, dst, uri, method=None, stop_source=False):
    """Migrate with compress and postcopy-ram on both sides (dst:
    -incoming defer): a precopy phase at 8 MB/s until 2048 pages went
    compressed, then migrate-start-postcopy (the source stopped first if
    stop_source).  Returns the source's final query-migrate."""
    for vm in (src, dst):
        set_caps(vm, compress=True, postcopy_ram=True)
        if method:
            set_params(vm, compress_method=method)
    set_params(src, compress_threads=2, max_bandwidth=8 << 20)
    set_params(dst, decompress_threads=2)
    dst.qmp.cmd("migrate-incoming", uri=uri)
    if stop_source:
        src.qmp.cmd("stop")
    src.qmp.cmd("migrate", uri=uri)

    def compressed():
        info = src.qmp.cmd("query-migrate")
        assert info["status"] in ("setup", "active"), info
        return info.get("compression", {}).get("pages", 0) >= 2048
    src.wait_for(compressed, 120, "2048 compressed pages")
    src.qmp.cmd("migrate-start-postcopy")
    return wait_status(src)


def assert_compress_postcopy_used(info):
    """Pages compressed in the precopy phase, the rest sent by postcopy."""
    assert info["compression"]["pages"] >= 2048, info["compression"]
    assert info["ram"]["postcopy-bytes"] > 0, info["ram"]


def start_migration(src, dst, uri, caps=None, params=None, dst_params=None):
    """Configure both sides and start migrating src to dst (-incoming defer)."""
    caps = caps or {}
    set_caps(dst, **caps)
    set_params(dst, **(dst_params if dst_params is not None else (params or {})))
    dst.qmp.cmd("migrate-incoming", uri=uri)
    set_caps(src, **caps)
    set_params(src, **(params or {}))
    src.qmp.cmd("migrate", uri=uri)


def migrate(src, dst, uri, caps=None, params=None, dst_params=None, timeout=300):
    """Migrate and wait; return the source's final query-migrate."""
    start_migration(src, dst, uri, caps, params, dst_params)
    return wait_status(src, timeout=timeout)
