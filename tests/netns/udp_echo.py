"""Tiny UDP probe: ``serve PORT`` answers each datagram with the source address it saw;
``ask HOST PORT`` sends one datagram and prints the answer (exit 1 if none within a second)."""

import socket
import sys


def serve(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        _, peer = s.recvfrom(64)
        s.sendto(peer[0].encode(), peer)


def ask(host: str, port: int) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
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
        sys.exit(ask(sys.argv[2], int(sys.argv[3])))
