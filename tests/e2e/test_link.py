"""harness.link: the link the benchmarks migrate over.  Without an RTT a
veth pair (ping well under 1 ms); with one, harness/delayline.c between
two TUN devices: the median ping lies within [rtt, rtt + 5 ms], and tbf
on the source's TUN device still sets the rate."""

import os
import statistics

import pytest

from harness.link import Link
from harness.linkcheck import ping, throughput

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root (ip netns, tc)")


@pytest.mark.parametrize("rtt_ms", [0, 10, 50])
def test_ping_rtt(rtt_ms):
    with Link(rtt_ms=rtt_ms) as link:
        link.set(1000)
        rtts = ping(count=12, interval=0.05)
        assert link.alive()
    print(f"RTT {rtt_ms} ms: ping {rtts}; {link.delayline_log}")
    assert len(rtts) >= 10, rtts
    med = statistics.median(rtts)
    if rtt_ms:
        assert rtt_ms <= med <= rtt_ms + 5, rtts
        assert "0 packets (0 bytes) dropped" in link.delayline_log, link.delayline_log
    else:
        assert med < 1, rtts


def test_rate_through_delay_line():
    """tbf on a TUN device shapes: 200 Mbit/s with a 10 ms RTT, 2 s."""
    with Link(rtt_ms=10) as link:
        link.set(200)
        tp = throughput(seconds=2)
    print(f"200 Mbit/s, RTT 10 ms: {tp}")
    assert 150 <= tp["mbit_second_half"] <= 210, tp
