#!/usr/bin/env python3
"""Measure a TCP link: connect time, echo round trip, bulk throughput each way.

    linkprobe.py server HOST PORT        # serves until killed
    linkprobe.py client HOST PORT MIB    # prints one JSON object

The server answers on one port: the client's first byte says what it wants
(e = echo, d = download MIB mebibytes, u = upload and tell the count).
"""
import json
import socket
import statistics
import sys
import threading
import time

CHUNK = 1 << 20


def drain(sock):
    """Read until the peer closes its side; the number of bytes read."""
    n = 0
    while True:
        b = sock.recv(CHUNK)
        if not b:
            return n
        n += len(b)


def serve_one(conn):
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kind = conn.recv(1)
        if kind == b"e":
            while True:
                b = conn.recv(64)
                if not b:
                    return
                conn.sendall(b)
        elif kind == b"d":
            mib = int(conn.recv(16).decode().strip())
            buf = b"\0" * CHUNK
            for _ in range(mib):
                conn.sendall(buf)
        elif kind == b"u":
            conn.sendall(str(drain(conn)).encode())


def server(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def client(host, port, mib):
    addr = (host, port)
    # Connect time: SYN → SYN/ACK, one round trip.
    connects = []
    for _ in range(10):
        t = time.perf_counter()
        c = socket.create_connection(addr)
        connects.append(time.perf_counter() - t)
        c.sendall(b"x")  # unknown kind: the server closes
        c.close()
    # Echo round trip on one connection.
    c = socket.create_connection(addr)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"e")
    rtts = []
    for _ in range(20):
        t = time.perf_counter()
        c.sendall(b"ping")
        got = b""
        while len(got) < 4:
            got += c.recv(64)
        rtts.append(time.perf_counter() - t)
    c.close()
    # Download (server → client).
    c = socket.create_connection(addr)
    c.sendall(b"d" + str(mib).encode().ljust(16))
    t = time.perf_counter()
    n = drain(c)
    down = n / (time.perf_counter() - t)
    c.close()
    # Upload (client → server).
    c = socket.create_connection(addr)
    c.sendall(b"u")
    buf = b"\0" * CHUNK
    t = time.perf_counter()
    for _ in range(mib):
        c.sendall(buf)
    c.shutdown(socket.SHUT_WR)
    c.recv(64)
    up = mib * CHUNK / (time.perf_counter() - t)
    c.close()
    print(json.dumps({
        "connect_ms": statistics.median(connects) * 1000,
        "echo_rtt_ms": statistics.median(rtts) * 1000,
        "download_mbit_s": down * 8 / 1e6,
        "upload_mbit_s": up * 8 / 1e6,
        "bulk_mib": mib,
    }))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
