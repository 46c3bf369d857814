"""``fedgate serve`` told to stop (SIGTERM) while a request is in flight: the request completes.

The request in flight is a Query API POST whose body the client is still sending when the signal
arrives; it is finished after the signal and gets its whole answer (an AWS error document: it is
unsigned), new connections are refused, and the process exits 0.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from tests.conftest import free_port, read_until_closed
from tests.serving import serve, stop, write_config

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


def _wait_until_read(port: int, client_port: int) -> None:
    """Until the server has accepted our connection and read all we sent (its end's receive queue,
    in ``/proc/net/tcp``, is empty): a loaded machine may take longer than any fixed pause."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            ours = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
            if ours == (port, client_port) and int(fields[4].split(":")[1], 16) == 0:
                return
        time.sleep(0.02)
    raise AssertionError("the server never read the request's head")


def test_a_request_in_flight_at_sigterm_completes_and_the_process_exits_0(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "fedgate.yaml", port)
    process = serve([str(BIN / "fedgate"), "serve", "-c", str(config)], config, port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = (
                f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(BODY)}\r\n\r\n"
            )
            sock.sendall(head.encode() + BODY[:10])
            _wait_until_read(port, sock.getsockname()[1])
            time.sleep(0.1)  # the handler it started is waiting for the rest of the body
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while True:  # the listening socket closes first: new connections are refused
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    break
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            sock.sendall(BODY[10:])  # the rest, after the signal
            answer = read_until_closed(sock)
        head_part, _, body = answer.partition(b"\r\n\r\n")
        assert head_part.startswith(b"HTTP/1.1 403 ")
        assert b"<Code>MissingAuthenticationToken</Code>" in body and body.endswith(b"</ErrorResponse>")
        assert process.wait(timeout=20) == 0
    finally:
        stop(process)
