"""What a Link carries: ping round-trip times and TCP throughput from the
source namespace to the destination's (one connection, the kernel's
default socket buffers).  Needs root.

    python3 -m harness.linkcheck --rtt 0,10,50 --mbit 1000 --seconds 10
"""

import argparse
import re
import statistics
import subprocess
import sys
import time

from .link import IP_DST, NS_DST, NS_SRC, Link, in_netns, sh

PORT = 5201

# receiver: bytes received per 0.5 s, one line each, until the sender closes
RECEIVER = r"""
import socket, sys, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(1)
print("listening", flush=True)
c, _ = ls.accept()
buf = bytearray(1 << 20)
t0 = time.monotonic()
n, tick = 0, 0.5
while True:
    k = c.recv_into(buf)
    if not k:
        break
    n += k
    t = time.monotonic() - t0
    if t >= tick:
        print(f"{t:.3f} {n}", flush=True)
        tick += 0.5
print(f"{time.monotonic() - t0:.3f} {n}", flush=True)
"""

# sender: as fast as it can for argv[3] seconds
SENDER = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = b"\x5a" * (1 << 20)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    s.sendall(data)
s.close()
"""


def ping(count=20, interval=0.2, ip=IP_DST, ns=NS_SRC):
    """Round-trip times in ms of `count` pings from ns to ip."""
    out = sh(*in_netns(ns), "ping", "-n", "-c", str(count), "-i", str(interval),
             "-W", "2", ip, check=False).stdout
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]


def throughput(seconds=10, ip=IP_DST, port=PORT):
    """One TCP connection from NS_SRC to ip for `seconds`: Mbit/s over
    the whole run, and over its second half (past slow start)."""
    rx = subprocess.Popen(in_netns(NS_DST) + [sys.executable, "-c", RECEIVER, ip, str(port)],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "listening"
        subprocess.run(in_netns(NS_SRC) + [sys.executable, "-c", SENDER, ip, str(port),
                                           str(seconds)], check=True)
        out, _ = rx.communicate(timeout=30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    samples = [(float(t), int(n)) for t, n in (ln.split() for ln in out.split("\n") if ln)]
    t_end, n_end = samples[-1]
    half = [s for s in samples if s[0] >= t_end / 2]
    t_half, n_half = half[0]
    return {"mbit": n_end * 8 / t_end / 1e6,
            "mbit_second_half": (n_end - n_half) * 8 / (t_end - t_half) / 1e6
            if t_end > t_half else None,
            "seconds": t_end, "bytes": n_end}


def tcp_sysctls(ns=NS_SRC):
    return {k: sh(*in_netns(ns), "sysctl", "-n", f"net.ipv4.{k}").stdout.split()
            for k in ("tcp_rmem", "tcp_wmem")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtt", default="0,10,50", help="ms, comma separated")
    ap.add_argument("--mbit", type=int, default=1000, help="tbf rate; 0: unshaped")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--pings", type=int, default=20)
    ap.add_argument("--tcp-buffers", type=int, metavar="BYTES",
                    help="raise tcp_rmem/tcp_wmem's maximum in both namespaces")
    args = ap.parse_args()
    for rtt in [int(x) for x in args.rtt.split(",")]:
        with Link(rtt_ms=rtt) as link:
            link.set(args.mbit)
            if args.tcp_buffers:
                link.tcp_buffers(args.tcp_buffers)
            time.sleep(0.5)
            rtts = ping(args.pings)
            tp = throughput(args.seconds) if args.seconds else None
            shaped = f"tbf {args.mbit} Mbit/s" if args.mbit else "unshaped"
            print(f"RTT {rtt} ms, {shaped}: ping "
                  f"{len(rtts)}/{args.pings} received, median "
                  f"{statistics.median(rtts):.3f} ms, min {min(rtts):.3f}, "
                  f"max {max(rtts):.3f}"
                  + (f"; TCP {tp['mbit']:.0f} Mbit/s over {tp['seconds']:.1f} s, "
                     f"{tp['mbit_second_half']:.0f} Mbit/s in the second half"
                     if tp else "")
                  + f"; {tcp_sysctls()}", flush=True)
        if link.delayline_log:
            print("  " + link.delayline_log.strip().replace("\n", "\n  "), flush=True)


if __name__ == "__main__":
    main()
