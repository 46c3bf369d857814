"""Run every ``bench/*_bench.py`` in turn and print their output (``make bench`` calls this).

Run: ``.venv/bin/python bench/run_all.py [NAME ...]`` (names filter, e.g. ``sts``). Each benchmark
runs in its own process with this interpreter and a time limit; the exit status is non-zero if any
of them failed or timed out. Ctrl-C stops the running benchmark (which cleans up after itself).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TIME_LIMIT = 120.0  # seconds per benchmark; each is designed to take well under a minute


def benchmarks(names: Sequence[str]) -> list[Path]:
    """The benchmark scripts, sorted, keeping those whose name contains one of ``names`` (if any)."""
    scripts = sorted(BENCH_DIR.glob("*_bench.py"))
    return [s for s in scripts if not names or any(n in s.name for n in names)]


def run(script: Path) -> bool:
    """Run one benchmark, its output going straight to ours; True if it succeeded in time."""
    print(f"=== {script.name}", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=BENCH_DIR.parent)
    try:
        status = proc.wait(timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        print(f"=== {script.name}: timed out after {TIME_LIMIT:.0f}s", flush=True)
        return False
    finally:
        # Reached on timeout and on Ctrl-C alike: SIGTERM lets the benchmark stop its servers.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - start
    print(f"=== {script.name}: {'ok' if status == 0 else f'FAILED (exit {status})'} in {elapsed:.0f}s\n")
    return status == 0


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    scripts = benchmarks(names)
    if not scripts:
        print(f"no benchmark in {BENCH_DIR} matches {names}", file=sys.stderr)
        return 2
    failed = [s.name for s in scripts if not run(s)]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
