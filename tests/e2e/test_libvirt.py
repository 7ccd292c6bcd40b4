"""virsh migrate --comp-methods mt between two libvirt session daemons.

libvirt (11.3 from bookworm-backports) drives our patched QEMU exactly as
an operator's `virsh migrate` would: it sets the `compress` capability and
its parameters on both sides over QMP.  Each migration is checked by the
guest's own integrity workload, by libvirt's QMP log and by domjobinfo.
"""

import json
import os
import re
import stat
import time

import pytest

from harness.libvirt import LIBVIRTD, VIRSH, Pair, ensure_user
from harness.vm import BUILD, SerialLog, free_port

DOM = "mtguest"
WORKLOAD = {"mode": "dirty", "mb": 128, "dirty_mbps": 4, "check_mbps": 64,
            "hb_ms": 500}
STOCK_QEMU = "/usr/bin/qemu-system-x86_64"
LOGS = os.path.join(BUILD, "logs", "libvirt")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(LIBVIRTD) and os.path.exists(VIRSH)) or os.getuid() != 0,
    reason="needs root and libvirt (scripts/install-deps.sh installs it)")


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class Guest(SerialLog):
    """The domain's serial log (one file, appended by whichever side runs)."""

    def assert_healthy_after(self, hb_before, passes=2, timeout=90):
        """The guest runs on after a migration: heartbeats continue from
        where they were and at least `passes` whole verification passes over
        its region complete with no error."""
        def progressed():
            hbs = self.heartbeats()
            return (hbs and hbs[-1]["passes"] >= hb_before["passes"] + passes
                    and hbs)
        hbs = wait_for(progressed, timeout, "verification passes after migration")
        seqs = [hb["seq"] for hb in hbs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
        assert hbs[-1]["errors"] == 0, hbs[-1]
        assert self.corruptions() == [], self.corruptions()


@pytest.fixture(scope="module")
def pair(request):
    p = Pair()
    yield p
    p.close(keep=LOGS)


def method_args(method):
    """QEMU arguments choosing the compress method without libvirt knowing:
    the migration object's property, as docs/multi-thread-compression.txt
    tells libvirt users."""
    return ("-global", f"migration.x-compress-method={method}")


@pytest.fixture
def guest(pair, request):
    """The test guest running under daemon a with our QEMU; indirect
    parametrization gives QEMU extra arguments."""
    serial = os.path.join(pair.top, f"{DOM}.serial")
    xml = pair.domain_xml(DOM, serial, WORKLOAD,
                          qemu_args=getattr(request, "param", ()))
    pair.a.check("define", xml)
    pair.a.check("start", DOM)
    g = Guest(serial)
    wait_for(lambda: any(ln.startswith("WL READY") for ln in g.serial_lines()), 90,
             "the guest's workload")
    wait_for(lambda: len(g.heartbeats()) >= 2, 30, "heartbeats")
    yield g
    for d in (pair.a, pair.b):
        d.virsh("destroy", DOM)
        d.virsh("undefine", DOM)
    if os.path.exists(serial):
        os.unlink(serial)


def migrate(src, dst, *opts):
    port = free_port()
    return src.virsh("migrate", "--live", "--unsafe", *opts, DOM, dst.uri,
                     "--migrateuri", f"tcp://127.0.0.1:{port}",
                     "--listen-address", "127.0.0.1", timeout=600)


def last_sent(daemon, command):
    sent = daemon.qmp_sent(command)
    assert sent, f"{daemon.name} sent no {command}"
    return sent


def assert_compress_requested(daemon, threads, dthreads, level):
    """libvirt set capability compress and the parameters asked for."""
    caps = [json.loads(m)["arguments"]["capabilities"]
            for m in last_sent(daemon, "migrate-set-capabilities")]
    assert any({"capability": "compress", "state": True} in c for c in caps), caps
    params = [json.loads(m)["arguments"]
              for m in last_sent(daemon, "migrate-set-parameters")]
    want = {"compress-threads": threads, "decompress-threads": dthreads,
            "compress-level": level}
    assert any(all(p.get(k) == v for k, v in want.items()) for p in params), params


def compressed_pages_reported(daemon):
    """Largest compression.pages QEMU reported to this daemon."""
    best = 0
    for line in daemon.qmp_replies("compression"):
        for m in re.finditer(r'"compression":\s*\{[^}]*"pages":\s*(\d+)', line):
            best = max(best, int(m.group(1)))
    return best


def unused_pages_reported(daemon):
    """Largest ram.unused-pages QEMU reported to this daemon."""
    return max((int(m.group(1)) for line in daemon.qmp_replies("unused-pages")
                for m in re.finditer(r'"unused-pages":\s*(\d+)', line)),
               default=0)


def jobinfo(daemon):
    out = daemon.check("domjobinfo", "--completed", DOM)
    info = {}
    for line in out.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            info[k.strip()] = v.strip()
    return out, info


def mib(value):
    n, unit = value.split()
    return float(n) * {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_mt_there_and_back(pair, guest):
    """--comp-methods mt a -> b, then back b -> a with other parameters."""
    legs = [(pair.a, pair.b, 2, 2, 1), (pair.b, pair.a, 1, 1, 6)]
    for i, (src, dst, threads, dthreads, level) in enumerate(legs):
        hb = guest.heartbeats()[-1]
        r = migrate(src, dst, "--comp-methods", "mt",
                    "--comp-mt-threads", str(threads),
                    "--comp-mt-dthreads", str(dthreads),
                    "--comp-mt-level", str(level))
        assert r.returncode == 0, r.stderr
        assert dst.domstate(DOM) == "running"
        assert src.domstate(DOM) in (None, "shut off")
        for d in (src, dst):
            assert_compress_requested(d, threads, dthreads, level)
        assert compressed_pages_reported(src) > 0
        # the source's domain is gone when it was transient: ask the
        # destination, which keeps the completed job's statistics too
        out, info = jobinfo(dst)
        with open(os.path.join(pair.top, f"domjobinfo-mt-{i}.txt"), "w") as f:
            f.write(out)
        assert info["Operation"] == "Incoming migration", out
        # compressed: far less on the wire than the guest's RAM
        assert 0 < mib(info["Memory processed"]) < mib(info["Memory total"]) / 2, out
        guest.assert_healthy_after(hb)


@pytest.mark.parametrize("guest", [method_args("zstd")], indirect=True,
                         ids=["zstd"])
def test_mt_with_method_property(pair, guest):
    """--comp-methods mt with compress-method=zstd chosen in the domain
    XML: libvirt carries the XML to the destination, so both QEMUs agree."""
    hb = guest.heartbeats()[-1]
    r = migrate(pair.a, pair.b, "--comp-methods", "mt", "--comp-mt-level", "1",
                "--comp-mt-threads", "2", "--comp-mt-dthreads", "2")
    assert r.returncode == 0, r.stderr
    assert pair.b.domstate(DOM) == "running"
    assert_compress_requested(pair.a, 2, 2, 1)
    assert compressed_pages_reported(pair.a) > 0
    params = json.loads(pair.b.check(
        "qemu-monitor-command", DOM, '{"execute":"query-migrate-parameters"}'))
    assert params["return"]["compress-method"] == "zstd", params
    out, info = jobinfo(pair.b)
    assert 0 < mib(info["Memory processed"]) < mib(info["Memory total"]) / 2, out
    guest.assert_healthy_after(hb)


@pytest.mark.parametrize("guest", [("-global",
                                    "migration.x-skip-unused-pages=on")],
                         indirect=True, ids=["skip-unused-pages"])
def test_mt_with_skip_unused_property(pair, guest):
    """libvirt does not know skip-unused-pages: the migration object's
    property turns it on, and libvirt's own capability settings leave it
    on; the guest's 512 MiB are mostly left out."""
    hb = guest.heartbeats()[-1]
    r = migrate(pair.a, pair.b, "--comp-methods", "mt")
    assert r.returncode == 0, r.stderr
    assert pair.b.domstate(DOM) == "running"
    assert compressed_pages_reported(pair.a) > 0
    assert unused_pages_reported(pair.a) * 4096 > 256 << 20
    guest.assert_healthy_after(hb)


@pytest.mark.parametrize("guest", [method_args("zstd")], indirect=True,
                         ids=["zstd"])
def test_mt_method_mismatch_loads(pair, guest):
    """A destination XML choosing lz4 while the source sends zstd: every
    record names its method, so the destination decodes zstd all the same
    (its own compress-method does not matter); the guest runs on there,
    intact."""
    hb = guest.heartbeats()[-1]
    # the running domain's own XML (same UUID), with lz4 for the destination
    xml = pair.a.check("dumpxml", "--migratable", DOM)
    assert "migration.x-compress-method=zstd" in xml, xml
    dst_xml = os.path.join(pair.top, f"{DOM}-lz4.xml")
    with open(dst_xml, "w") as f:
        f.write(xml.replace("migration.x-compress-method=zstd",
                            "migration.x-compress-method=lz4"))
    os.chmod(dst_xml, 0o644)
    r = migrate(pair.a, pair.b, "--comp-methods", "mt", "--xml", dst_xml)
    assert r.returncode == 0, r.stderr
    assert pair.b.domstate(DOM) == "running"
    assert pair.a.domstate(DOM) in (None, "shut off")
    assert compressed_pages_reported(pair.a) > 0
    guest.assert_healthy_after(hb)


def test_mt_with_xbzrle(pair, guest):
    """--comp-methods mt,xbzrle a -> b and back: libvirt sets both
    capabilities on both sides; compression in the first pass, XBZRLE for
    pages it has cached afterwards; the guest's check stays clean."""
    for src, dst in ((pair.a, pair.b), (pair.b, pair.a)):
        hb = guest.heartbeats()[-1]
        r = migrate(src, dst, "--comp-methods", "mt,xbzrle",
                    "--comp-mt-threads", "2", "--comp-mt-dthreads", "2",
                    "--comp-mt-level", "1")
        assert r.returncode == 0, r.stderr
        assert dst.domstate(DOM) == "running"
        assert src.domstate(DOM) in (None, "shut off")
        for d in (src, dst):
            caps = [json.loads(m)["arguments"]["capabilities"]
                    for m in last_sent(d, "migrate-set-capabilities")]
            assert any({"capability": "compress", "state": True} in c and
                       {"capability": "xbzrle", "state": True} in c
                       for c in caps), caps
        assert compressed_pages_reported(src) > 0
        guest.assert_healthy_after(hb)


@pytest.fixture
def userfaultfd_for_qemu():
    """Postcopy needs userfaultfd, which the daemons' unprivileged QEMUs
    may not open by default: the system libvirt grants its QEMUs
    /dev/userfaultfd, so the test lets their group use it meanwhile."""
    dev = "/dev/userfaultfd"
    if not os.path.exists(dev):
        pytest.skip("no /dev/userfaultfd (Linux 6.1 or later)")
    st = os.stat(dev)
    os.chown(dev, st.st_uid, ensure_user().pw_gid)
    os.chmod(dev, 0o660)
    yield
    os.chown(dev, st.st_uid, st.st_gid)
    os.chmod(dev, stat.S_IMODE(st.st_mode))


def test_mt_with_postcopy(pair, guest, userfaultfd_for_qemu):
    """--comp-methods mt --postcopy --postcopy-after-precopy: libvirt sets
    compress, postcopy-ram and (libvirt 10.0 and later, whenever both QEMUs
    offer it) postcopy-preempt on both sides and switches to postcopy after
    the first pass; pages are compressed before the switch, the rest is
    pulled by the running destination; the guest's check stays clean."""
    hb = guest.heartbeats()[-1]
    r = migrate(pair.a, pair.b, "--comp-methods", "mt",
                "--comp-mt-threads", "2", "--comp-mt-dthreads", "2",
                "--comp-mt-level", "1", "--postcopy",
                "--postcopy-after-precopy", "--bandwidth", "16")
    assert r.returncode == 0, r.stderr
    assert pair.b.domstate(DOM) == "running"
    assert pair.a.domstate(DOM) in (None, "shut off")
    for d in (pair.a, pair.b):
        caps = [json.loads(m)["arguments"]["capabilities"]
                for m in last_sent(d, "migrate-set-capabilities")]
        assert any({"capability": "compress", "state": True} in c and
                   {"capability": "postcopy-ram", "state": True} in c and
                   {"capability": "postcopy-preempt", "state": True} in c
                   for c in caps), caps
    last_sent(pair.a, "migrate-start-postcopy")
    assert compressed_pages_reported(pair.a) > 0
    guest.assert_healthy_after(hb)


def test_compressed_means_xbzrle(pair, guest):
    """--compressed alone is libvirt's XBZRLE; it still works."""
    hb = guest.heartbeats()[-1]
    r = migrate(pair.a, pair.b, "--compressed")
    assert r.returncode == 0, r.stderr
    assert pair.b.domstate(DOM) == "running"
    caps = [json.loads(m)["arguments"]["capabilities"]
            for m in last_sent(pair.a, "migrate-set-capabilities")]
    assert any({"capability": "xbzrle", "state": True} in c for c in caps)
    guest.assert_healthy_after(hb)


@pytest.mark.skipif(not os.path.exists(STOCK_QEMU),
                    reason="no stock qemu-system-x86_64 installed")
def test_stock_qemu_refuses_mt(pair):
    """What an operator gets without the series: libvirt refuses."""
    serial = os.path.join(pair.top, "stock.serial")
    xml = pair.domain_xml("stock", serial, {"mode": "idle", "mb": 16},
                          emulator=STOCK_QEMU, mem_mb=256)
    pair.a.check("define", xml)
    try:
        pair.a.check("start", "stock")
        port = free_port()
        r = pair.a.virsh("migrate", "--live", "--unsafe", "--comp-methods", "mt",
                         "stock", pair.b.uri, "--migrateuri",
                         f"tcp://127.0.0.1:{port}", "--listen-address", "127.0.0.1")
        assert r.returncode != 0
        assert "Migration option 'compress' is not supported by QEMU binary" \
            in r.stderr, r.stderr
        assert pair.a.domstate("stock") == "running"
    finally:
        pair.a.virsh("destroy", "stock")
        pair.a.virsh("undefine", "stock")
