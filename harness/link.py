"""A network link between two namespaces, shaped with tc: what the
benchmarks and the demo migrate over (QEMU's max-bandwidth is not a link:
QEMU lifts it at switchover, and multifd channels ignore it).  Needs root
(ip netns, tc).

Without an RTT the namespaces are joined by a veth pair.  With one
(Link(rtt_ms=50)) they are joined by two TUN devices of the same names
and harness/delayline.c, a userspace forwarder that holds every packet
rtt_ms / 2 in each direction (this kernel has no sch_netem); it is
compiled into build/delayline when needed."""

import os
import select
import signal
import subprocess
import tempfile

from .vm import BUILD, TOP

# QEMU_MT_LINK_ID=N: other names, for a second link beside the first
_ID = os.environ.get("QEMU_MT_LINK_ID", "")
NS_SRC, NS_DST = f"qemu-mt{_ID}-src", f"qemu-mt{_ID}-dst"
IP_SRC, IP_DST = "10.199.0.1", "10.199.0.2"
# the devices at either end: the veth pair, or the delay line's TUN devices
VETH_SRC, VETH_DST = f"qmt{_ID}-s", f"qmt{_ID}-d"
DELAYLINE_C = os.path.join(TOP, "harness", "delayline.c")
DELAYLINE = os.path.join(BUILD, "delayline")
# packets the TUN devices may queue for the delay line (the default, 500,
# is 6 ms of 1500-byte packets at 1 Gbit/s)
TUN_TXQUEUELEN = 10000


def in_netns(ns):
    """The command prefix that runs a program in network namespace ns."""
    return ["ip", "netns", "exec", ns]


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def delayline():
    """build/delayline, compiled from harness/delayline.c if it is missing
    or older than its source; returns its path."""
    if (not os.path.exists(DELAYLINE) or
            os.path.getmtime(DELAYLINE) < os.path.getmtime(DELAYLINE_C)):
        os.makedirs(BUILD, exist_ok=True)
        tmp = f"{DELAYLINE}.{os.getpid()}"
        subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", tmp, DELAYLINE_C],
                       check=True)
        os.replace(tmp, DELAYLINE)      # atomic: another link may run it
    return DELAYLINE


class Link:
    """veth pair between two namespaces; set(mbit) shapes src -> dst.

    rtt_ms: a round-trip time to add (rtt_ms / 2 each way): TUN devices
    and the delay line instead of the veth pair; 0 or None: the veth pair.
    buffer_mb: the delay line's buffer per direction (packets beyond it
    are dropped); the default, 32 MiB, holds 1 Gbit/s x 250 ms."""

    def __init__(self, rtt_ms=None, buffer_mb=32):
        self.rtt_ms = rtt_ms or 0
        self.buffer_mb = buffer_mb
        self.proc = None
        self.log_path = None
        self.delayline_log = ""     # its counts, once it has stopped

    def __enter__(self):
        self.down()
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self):
        sh("ip", "netns", "add", NS_SRC)
        sh("ip", "netns", "add", NS_DST)
        if self.rtt_ms:
            self._start_delayline()
        else:
            sh("ip", "link", "add", VETH_SRC, "netns", NS_SRC, "type", "veth",
               "peer", "name", VETH_DST, "netns", NS_DST)
        for ns, dev, ip in ((NS_SRC, VETH_SRC, IP_SRC), (NS_DST, VETH_DST, IP_DST)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            if self.rtt_ms:
                sh("ip", "-n", ns, "link", "set", dev, "txqueuelen",
                   str(TUN_TXQUEUELEN))
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def _start_delayline(self):
        binary = delayline()
        fd, self.log_path = tempfile.mkstemp(prefix="qemu-mt-delayline-", suffix=".log")
        self.proc = subprocess.Popen(
            [binary, NS_SRC, VETH_SRC, NS_DST, VETH_DST,
             str(round(self.rtt_ms * 1000 / 2)), str(self.buffer_mb)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=fd)
        os.close(fd)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self._stop_delayline()
            raise RuntimeError(f"delayline did not start: {self.delayline_log}")

    def _stop_delayline(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None
        with open(self.log_path, errors="replace") as f:
            self.delayline_log = f.read()
        os.unlink(self.log_path)

    def alive(self):
        """The delay line runs (always true without an RTT)."""
        return not self.rtt_ms or (self.proc is not None and self.proc.poll() is None)

    def set(self, mbit):
        """tbf at mbit on the source's device (src -> dst); 0 or None: no
        shaping at all (the bare veth pair or delay line)."""
        if not mbit:
            sh(*in_netns(NS_SRC), "tc", "qdisc", "del", "dev", VETH_SRC, "root",
               check=False)
            return
        # burst: one 10 ms worth of data, and never below 96 KiB: above the
        # largest GSO packet (64 KiB and headers).  A packet queued at a
        # higher rate that is larger than the new burst never gets the
        # tokens to leave: the link then carried nothing until unshaped
        # (64 KiB here, from 1 Gbit/s down to 20 Mbit/s, plain TCP too)
        burst = max(96 * 1024, mbit * 1000 * 1000 // 8 // 100)
        sh("ip", "netns", "exec", NS_SRC, "tc", "qdisc", "replace", "dev",
           VETH_SRC, "root", "tbf", "rate", f"{mbit}mbit", "burst", str(burst),
           "latency", "50ms")

    def has_netem(self):
        """Whether the kernel has sch_netem (asked once)."""
        if not hasattr(self, "_netem"):
            probe = sh(*in_netns(NS_SRC), "tc", "qdisc", "replace", "dev",
                       VETH_SRC, "root", "netem", "delay", "1ms", check=False)
            self._netem = probe.returncode == 0
            sh(*in_netns(NS_SRC), "tc", "qdisc", "del", "dev", VETH_SRC,
               "root", check=False)
        return self._netem

    def set_both(self, mbit, netem=None):
        """Both directions at mbit (tbf); netem: extra netem arguments, a
        netem queue at mbit instead (has_netem())."""
        for ns, dev in ((NS_SRC, VETH_SRC), (NS_DST, VETH_DST)):
            if netem:
                cmd = ["netem", "rate", f"{mbit}mbit"] + netem
            else:
                cmd = ["tbf", "rate", f"{mbit}mbit", "burst", "125000",
                       "latency", "50ms"]
            sh(*in_netns(ns), "tc", "qdisc", "replace", "dev", dev, "root", *cmd)

    def impair(self, mbit, loss, delay):
        """Both directions at mbit, loss % of the packets each way dropped
        at random and delay ms added: netem (with jitter, reordering and
        duplication) where the kernel has it; else nftables drops packets
        at random and a tbf queue of delay ms at a fifth of the rate delays
        them (queueing delay, up to delay ms).  impair(mbit, 0, 0) restores
        the link to set_both(mbit)."""
        for ns, dev in ((NS_SRC, VETH_SRC), (NS_DST, VETH_DST)):
            if not loss and not delay:
                sh(*in_netns(ns), "nft", "delete", "table", "inet", "impair",
                   check=False)
                continue
            if self.has_netem():
                continue
            sh(*in_netns(ns), "nft", "add", "table", "inet", "impair")
            sh(*in_netns(ns), "nft", "add", "chain", "inet", "impair", "out",
               "{ type filter hook output priority 0; }")
            sh(*in_netns(ns), "nft", "add", "rule", "inet", "impair", "out",
               "numgen", "random", "mod", "1000", "<", str(int(loss * 10)), "drop")
            sh(*in_netns(ns), "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
               "rate", f"{mbit // 5}mbit", "burst", "25000", "latency", f"{delay}ms")
        if not loss and not delay:
            self.set_both(mbit)
        elif self.has_netem():
            self.set_both(mbit, ["loss", f"{loss:.1f}%", "delay", f"{delay}ms",
                                 f"{delay // 5}ms", "reorder", "10%", "duplicate", "1%"])

    def cable(self, up):
        """The destination's end up or down, as a cable pulled at the far
        side: the source's end loses its carrier."""
        sh(*in_netns(NS_DST), "ip", "link", "set", VETH_DST, "up" if up else "down")
        if up:
            # neighbour entries that failed while the link was down would
            # refuse the next connection ("No route to host") for a while
            for ns in (NS_SRC, NS_DST):
                sh(*in_netns(ns), "ip", "neigh", "flush", "all")

    def tcp_buffers(self, nbytes):
        """Opt-in: the most TCP may buffer per socket (the third value of
        net.ipv4.tcp_rmem and tcp_wmem) in both namespaces, for a window of
        bandwidth x RTT; a new namespace has 4 MiB to send (tcp_wmem) and
        the kernel's default to receive (32 MiB on 6.x)."""
        for ns in (NS_SRC, NS_DST):
            for key in ("tcp_rmem", "tcp_wmem"):
                lo, default, _hi = sh(*in_netns(ns), "sysctl", "-n",
                                      f"net.ipv4.{key}").stdout.split()
                sh(*in_netns(ns), "sysctl", "-qw",
                   f"net.ipv4.{key}={lo} {default} {nbytes}")

    def notsent_lowat(self, nbytes):
        """TCP_NOTSENT_LOWAT for every socket of the source namespace
        (net.ipv4.tcp_notsent_lowat): how much written data may wait in
        a socket unsent; the default is unlimited."""
        sh("ip", "netns", "exec", NS_SRC, "sysctl", "-qw",
           f"net.ipv4.tcp_notsent_lowat={nbytes}")

    def down(self):
        self._stop_delayline()
        for ns in (NS_SRC, NS_DST):
            sh("ip", "netns", "del", ns, check=False)

    def __exit__(self, *exc):
        self.down()
