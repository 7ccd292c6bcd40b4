"""A network link between two namespaces, shaped with tc: what the
benchmarks and the demo migrate over (QEMU's max-bandwidth is not a link:
QEMU lifts it at switchover, and multifd channels ignore it).  Needs root
(ip netns, tc)."""

import os
import subprocess

# QEMU_MT_LINK_ID=N: other names, for a second link beside the first
_ID = os.environ.get("QEMU_MT_LINK_ID", "")
NS_SRC, NS_DST = f"qemu-mt{_ID}-src", f"qemu-mt{_ID}-dst"
IP_SRC, IP_DST = "10.199.0.1", "10.199.0.2"
VETH_SRC, VETH_DST = f"qmt{_ID}-s", f"qmt{_ID}-d"


def in_netns(ns):
    """The command prefix that runs a program in network namespace ns."""
    return ["ip", "netns", "exec", ns]


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Link:
    """veth pair between two namespaces; set(mbit) shapes src -> dst."""

    def __enter__(self):
        self.down()
        sh("ip", "netns", "add", NS_SRC)
        sh("ip", "netns", "add", NS_DST)
        sh("ip", "link", "add", VETH_SRC, "netns", NS_SRC, "type", "veth",
           "peer", "name", VETH_DST, "netns", NS_DST)
        for ns, dev, ip in ((NS_SRC, VETH_SRC, IP_SRC), (NS_DST, VETH_DST, IP_DST)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def set(self, mbit):
        # burst: at least one 10 ms worth of data, never below 64 KiB
        burst = max(64 * 1024, mbit * 1000 * 1000 // 8 // 100)
        sh("ip", "netns", "exec", NS_SRC, "tc", "qdisc", "replace", "dev",
           VETH_SRC, "root", "tbf", "rate", f"{mbit}mbit", "burst", str(burst),
           "latency", "50ms")

    def notsent_lowat(self, nbytes):
        """TCP_NOTSENT_LOWAT for every socket of the source namespace
        (net.ipv4.tcp_notsent_lowat): how much written data may wait in
        a socket unsent; the default is unlimited."""
        sh("ip", "netns", "exec", NS_SRC, "sysctl", "-qw",
           f"net.ipv4.tcp_notsent_lowat={nbytes}")

    def down(self):
        for ns in (NS_SRC, NS_DST):
            sh("ip", "netns", "del", ns, check=False)

    def __exit__(self, *exc):
        self.down()
