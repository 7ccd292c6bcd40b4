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


def wait_status(vm, statuses=DONE, timeout=300, interval=0.1):
    """Poll query-migrate until its status is one of statuses; return it."""
    deadline = time.monotonic() + timeout
    while True:
        info = vm.qmp.cmd("query-migrate")
        if info.get("status") in statuses:
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"{vm.name}: migration still {info.get('status')}"
                               f" after {timeout}s: {info}")
        time.sleep(interval)


def _event_time(ev):
    ts = ev["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def real_downtime_ms(src, dst):
    """The pause as the guest sees it: the source's last STOP event to the
    destination's first RESUME event after it (QMP timestamps, one host
    clock); None if either is missing."""
    stops = [_event_time(e) for e in src.qmp.poll_events()
             if e["event"] == "STOP"]
    if not stops:
        return None
    resumes = [_event_time(e) for e in dst.qmp.poll_events()
               if e["event"] == "RESUME" and _event_time(e) >= stops[-1]]
    return (resumes[0] - stops[-1]) * 1000 if resumes else None


def wait_syncs(vm, syncs, timeout=180):
    """Wait until the migration from vm has synchronized its dirty bitmap
    syncs times (or completed); fail if it failed or was cancelled."""
    def done():
        info = vm.qmp.cmd("query-migrate")
        assert info["status"] in ("setup", "active", "completed"), info
        return info.get("ram", {}).get("dirty-sync-count", 0) >= syncs
    vm.wait_for(done, timeout, f"{syncs} dirty bitmap syncs")


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
