#!/usr/bin/python3
"""Drives a testbed of the user's shared engine without the JVM: opens it, runs a command in it,
closes it. The frames are those of docs/protocol.md, "The engine socket".

    python3 docs/engine-client.py TARBALL [COMMAND...]
"""
import os
import socket
import struct
import subprocess
import sys


def frame(kind, payload=b""):
    return kind.encode() + struct.pack(">I", len(payload)) + payload


def read_frame(sock):
    header = sock.recv(5, socket.MSG_WAITALL)
    if len(header) < 5:
        raise EOFError("the engine closed the connection")
    (length,) = struct.unpack(">I", header[1:])
    payload = sock.recv(length, socket.MSG_WAITALL) if length else b""
    return chr(header[0]), payload


def nul_terminated(words):
    return b"".join(word.encode() + b"\0" for word in words)


class Session:
    """One virtualisation-server session: protocol lines in, answer lines out."""

    def __init__(self, engine_socket, options):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(engine_socket)
        environment = [f"{name}={value}" for name, value in os.environ.items()]
        self.sock.sendall(
            frame("w", os.getcwd().encode())
            + frame("v", nul_terminated(environment))
            + frame("a", nul_terminated(["virt-server", *options]))
        )
        self.pending = b""
        assert self.answer() == "ok"

    def answer(self):
        while b"\n" not in self.pending:
            kind, payload = read_frame(self.sock)
            if kind == "o":
                self.pending += payload
            elif kind == "e":
                sys.stderr.buffer.write(payload)
            else:
                raise RuntimeError(f"the session ended: {kind} {payload!r}")
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def request(self, line):
        self.sock.sendall(frame("i", (line + "\n").encode()))
        answer = self.answer()
        if not answer.startswith("ok"):
            raise RuntimeError(f"{line}: {answer}")
        return answer[3:]

    def quit(self):
        """Ends the session; returns the server's exit status."""
        self.sock.sendall(frame("i", b"quit\n") + frame("c"))
        while True:
            kind, payload = read_frame(self.sock)
            if kind == "x":
                self.sock.close()
                return payload[0]


def run(exec_socket, argv):
    """Runs argv in the testbed through its exec socket; returns its exit status."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(exec_socket)
        sock.sendall(frame("a", nul_terminated(argv)) + frame("c"))
        while True:
            kind, payload = read_frame(sock)
            if kind in "oe":
                (sys.stdout if kind == "o" else sys.stderr).buffer.write(payload)
            elif kind == "x":
                return payload[0]
            else:
                raise RuntimeError(payload.decode())


def main():
    tarball, command = sys.argv[1], sys.argv[2:] or ["cat", "/etc/os-release"]
    # Starts the engine if it is not running, and says where it listens either way.
    started = subprocess.run(
        ["uchroot", "engine"], check=True, capture_output=True, text=True
    )
    engine_socket = started.stdout.split()[-1]
    session = Session(engine_socket, ["-t", tarball])
    session.request("open")
    exec_socket = session.request("print-execute-command").split(",")[-1]
    status = run(exec_socket, command)
    session.request("close")
    session.quit()
    sys.stdout.flush()
    print(f"exit status {status}")


if __name__ == "__main__":
    main()
