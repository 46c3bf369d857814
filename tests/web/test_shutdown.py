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
            time.sleep(0.5)  # the handler is reading the body
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
