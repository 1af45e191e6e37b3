"""What a user watching a job sees: each stage's status and result lines, progress bars while
it works, and errors; everything else (Ray's, transformers' and the workers' logs) goes to a log
file under ``RUN/logs/``, complete for debugging.

``quiet(log_path)`` moves ``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2 (Ray core, the
raylet and C++ libraries write there) onto the log file and keeps a duplicate of the real terminal.
``say`` writes a line to both, ``bar`` draws a tqdm bar on the terminal only, and
``RemoteBar`` is a bar that Ray workers (Stage 1 and 2 training) advance from their own processes.
Outside ``quiet`` (``--verbose``, tests, library use) ``say`` is ``print`` and bars draw on stderr
as tqdm does.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from typing import Any, Iterator, Optional, TextIO

# The real stdout and stderr while quiet (lines go to the first, bars to the second), else None.
_terminal: Optional[TextIO] = None
_terminal_err: Optional[TextIO] = None


def say(line: str) -> None:
    """A line the user should see: on the terminal and in the log."""
    print(line, flush=True)
    if _terminal is not None:
        _terminal.write(line + "\n")


def bar(total: Optional[int], desc: str, unit: str = "it", **kwargs: Any) -> Any:
    """A tqdm progress bar on the terminal (stderr when not quiet); left out of the log, where
    its redraws would bury the lines that matter."""
    from tqdm.auto import tqdm

    stream = _terminal_err or sys.stderr
    interactive = stream.isatty()  # a job log or CI gets a line every 30 s, not a redraw twice a second
    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=interactive, leave=True,
                mininterval=0.5 if interactive else 30, **kwargs)


class RemoteBar:
    """A driver-side bar that Ray workers advance: ``handle`` goes to the workers, which call
    ``handle.update.remote(n, **postfix)``; a driver thread polls it twice a second. Workers
    never block on it (fire and forget), and a dead bar costs them nothing but a lost update."""

    def __init__(self, total: int, desc: str, unit: str = "step") -> None:
        import ray

        self.handle = ray.remote(num_cpus=0)(_Counter).remote()
        self._bar = bar(total, desc, unit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import ray

        while not self._stop.wait(0.5):
            self._refresh(ray)
        self._refresh(ray)

    def _refresh(self, ray: Any) -> None:
        with contextlib.suppress(Exception):  # the bar is a convenience: never fail the job over it
            done, postfix = ray.get(self.handle.get.remote(), timeout=5)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            if done > self._bar.n:  # through update(), so a job log gets tqdm's throttled lines only
                self._bar.update(done - self._bar.n)

    def __enter__(self) -> "RemoteBar":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import ray

        self._stop.set()
        self._thread.join(timeout=10)
        self._bar.close()
        with contextlib.suppress(Exception):
            ray.kill(self.handle)


class _Counter:
    """The state behind a ``RemoteBar``: steps done and the latest postfix (e.g. the loss)."""

    def __init__(self) -> None:
        self.done, self.postfix = 0, {}

    def update(self, done: int, **postfix: Any) -> None:
        self.done, self.postfix = max(self.done, done), postfix  # a resumed worker reports its absolute step

    def get(self) -> tuple[int, dict[str, Any]]:
        return self.done, self.postfix


@contextlib.contextmanager
def quiet(log_path: str) -> Iterator[str]:
    """Send everything written to fds 1 and 2 to ``log_path`` (appended) while the block runs;
    ``say`` and ``bar`` still reach the terminal. Yields the log's path."""
    global _terminal, _terminal_err
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    out, err = (io.TextIOWrapper(os.fdopen(os.dup(saved[fd]), "wb", buffering=0), write_through=True) for fd in (1, 2))
    log = open(log_path, "ab", buffering=0)
    log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n".encode())
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    streams = sys.stdout, sys.stderr  # not always fds 1 and 2 (pytest, notebooks replace them)
    sys.stdout = sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(log.fileno()), "wb", buffering=0), write_through=True)
    _terminal, _terminal_err = out, err
    try:
        yield log_path
    finally:
        sys.stdout.flush()
        sys.stdout.close()
        sys.stdout, sys.stderr = streams
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        _terminal = _terminal_err = None
        out.close()
        err.close()
        log.close()

