#!/usr/bin/python3
"""Join standard input and output to a TCP connection, both ways, until
either side closes: what qemu's user-mode `guestfwd=...-cmd:` runs for each
connection the guest makes to a forwarded address.

  tcp-relay.py HOST PORT
"""
import os
import selectors
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
conn = socket.create_connection((host, port), timeout=10)
conn.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ, "in")
sel.register(conn, selectors.EVENT_READ, "sock")
open_ends = 2
while open_ends:
    events = sel.select(timeout=60)
    if not events:
        break
    for key, _ in events:
        if key.data == "in":
            data = os.read(0, 65536)
            if data:
                conn.sendall(data)
            else:
                sel.unregister(0)
                conn.shutdown(socket.SHUT_WR)
                open_ends -= 1
        else:
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            if data:
                os.write(1, data)
            else:
                sel.unregister(conn)
                open_ends -= 1
                os.close(1)
