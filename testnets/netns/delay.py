#!/usr/bin/env python3
"""Holds every packet of one netfilter queue for a fixed time, then lets it through: the
network-namespace testnet's stand-in for `tc qdisc ... netem delay` on kernels built without
sch_netem. fault.sh runs it inside a node's namespace (`ip netns exec ql-nI`), after pointing the
node's traffic at the queue with iptables' NFQUEUE target.

    delay.py --queue N --delay-ms MS [--ready-file PATH]

It speaks nfnetlink_queue (linux/netfilter/nfnetlink_queue.h) over a raw netlink socket, with
the standard library only: bind the queue, ask for packet metadata only (no payload is copied
to user space), and answer each packet with an accept verdict MS milliseconds after it arrived.
Packets all wait the same time, so they leave in the order they came (a batch verdict accepts
every packet up to an id). On SIGTERM or SIGINT it accepts whatever it still holds and exits 0,
so healing loses no packet. Every wait is bounded; it never touches a packet's contents.
"""

import argparse
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 6
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_HDRLEN = 16


def attribute(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


class Queue:
    def __init__(self, number):
        self.number = number
        self.sequence = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))

    def send(self, message, attributes, flags=NLM_F_REQUEST):
        self.sequence += 1
        # nfgenmsg: family AF_UNSPEC, version 0, the queue number (big-endian).
        body = struct.pack("=BB", 0, 0) + struct.pack(">H", self.number) + b"".join(attributes)
        header = struct.pack("=IHHII", NLMSG_HDRLEN + len(body), (NFNL_SUBSYS_QUEUE << 8) | message, flags,
                             self.sequence, 0)
        self.sock.send(header + body)

    def configure(self, attributes):
        """Sends one config message and waits (at most 5 s) for its acknowledgement."""
        self.send(NFQNL_MSG_CONFIG, attributes, NLM_F_REQUEST | NLM_F_ACK)
        ready, _, _ = select.select([self.sock], [], [], 5)
        if not ready:
            sys.exit("delay.py: the kernel did not acknowledge the queue configuration within 5 s")
        data = self.sock.recv(65536)
        _, kind, _, _, _ = struct.unpack_from("=IHHII", data, 0)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, NLMSG_HDRLEN)
            if error != 0:
                sys.exit(f"delay.py: cannot bind netfilter queue {self.number}: {os.strerror(-error)}")

    def bind(self):
        self.configure([attribute(NFQA_CFG_CMD, struct.pack("=BB", NFQNL_CFG_CMD_BIND, 0) + struct.pack(">H", 0))])
        self.configure([
            attribute(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)),
            attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 65536)),
        ])

    def accept_through(self, packet_id):
        """Accepts every queued packet whose id is at most packet_id."""
        self.send(NFQNL_MSG_VERDICT_BATCH, [attribute(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id))])

    def packets(self, data):
        """The ids of the packets in one receive buffer (netlink messages back to back)."""
        offset = 0
        while offset + NLMSG_HDRLEN <= len(data):
            length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
            if length < NLMSG_HDRLEN:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                position = offset + NLMSG_HDRLEN + 4
                end = offset + length
                while position + 4 <= end:
                    attr_length, attr_kind = struct.unpack_from("=HH", data, position)
                    if attr_length < 4:
                        break
                    if attr_kind & 0x3FFF == NFQA_PACKET_HDR:
                        yield struct.unpack_from(">I", data, position + 4)[0]
                        break
                    position += (attr_length + 3) & ~3
            offset += (length + 3) & ~3


def main():
    parser = argparse.ArgumentParser(description="Delay every packet of a netfilter queue.")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, required=True)
    parser.add_argument("--ready-file")
    options = parser.parse_args()
    if not 0 <= options.queue <= 65535:
        sys.exit(f"delay.py: --queue {options.queue}: a queue number is 0-65535")
    if not 1 <= options.delay_ms <= 60000:
        sys.exit(f"delay.py: --delay-ms {options.delay_ms}: expected 1-60000 ms")
    delay = options.delay_ms / 1000
    # Whatever descriptors fault.sh's caller passed down (a test runner watches a socket of its
    # child to learn that it exited) must not be held open by this long-lived grandchild.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))

    queue = Queue(options.queue)
    queue.bind()
    held = collections.deque()  # (due, packet id), in arrival order
    stopping = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.append(True))
    if options.ready_file:
        with open(options.ready_file + ".tmp", "w") as ready:
            ready.write(f"{os.getpid()}\n")
        os.replace(options.ready_file + ".tmp", options.ready_file)

    while not stopping:
        now = time.monotonic()
        due = None
        while held and held[0][0] <= now:
            due = held.popleft()[1]
        if due is not None:
            queue.accept_through(due)
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
        try:
            ready, _, _ = select.select([queue.sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            data = queue.sock.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError as error:
            # ENOBUFS: the kernel dropped messages for us; the packets it could not send are gone
            # as on a congested link, and the queue goes on.
            print(f"delay.py: {error}", file=sys.stderr)
            continue
        arrived = time.monotonic()
        for packet_id in queue.packets(data):
            held.append((arrived + delay, packet_id))
    if held:
        queue.accept_through(held[-1][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
