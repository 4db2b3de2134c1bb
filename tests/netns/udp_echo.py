"""Tiny UDP probe: ``serve PORT`` answers each datagram with the source address it saw (and
prints that address, one line per datagram, so its log shows what arrived); ``ask HOST PORT
[SOURCE_IP [SOURCE_PORT]]`` sends one datagram, from that address and port if given, and prints
the answer (exit 1 if none within a second). The same source port twice is the same flow to
connection tracking."""

import socket
import sys


def serve(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        _, peer = s.recvfrom(64)
        print(peer[0], flush=True)
        s.sendto(peer[0].encode(), peer)


def ask(host: str, port: int, source: str = "", source_port: int = 0) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.bind((source, source_port))
    s.sendto(b"who am i", (host, port))
    try:
        print(s.recv(64).decode())
    except TimeoutError:
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        source = sys.argv[4] if len(sys.argv) > 4 else ""
        source_port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        sys.exit(ask(sys.argv[2], int(sys.argv[3]), source, source_port))
