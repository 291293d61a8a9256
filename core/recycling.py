"""gunicorn workers recycled one at a time: `max_requests` without the stall of every worker retiring together.

gunicorn retires a worker after `max_requests` (plus jitter) requests: it stops accepting, finishes what it holds,
lingers up to 2 s for its kept-alive connections, exits, and the master forks a replacement. Under an even load
the workers reach their limits close together, and the jitter only makes that less likely: measured under `make
loadtest-stress`, all three retired within one second of each other at 600 users (within 6 s in another run),
and for about four seconds no worker took a new connection (reads p95 2.7 s for that step).

Here a worker about to reach its limit first takes a lock that it shares with its siblings: a file in the
workers' tmp directory, named after the master's pid, locked with `flock`. Holding it, the worker retires as
gunicorn would; the lock goes with its process, and the replacement is forked at once. A worker that finds the
lock taken serves `RETIRE_RETRY_EVERY` more requests and tries again, so at most one worker is ever away.
`GUNICORN_RECYCLE_ONE_AT_A_TIME=false` gives gunicorn's own behaviour back.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO, Any

# How many more requests a worker serves before it asks again, while a sibling is retiring.
RETIRE_RETRY_EVERY = 100


def retire_lock_path(*, master_pid: int, tmp_dir: str | None) -> Path:
    return Path(tmp_dir or tempfile.gettempdir()) / f"gunicorn-{master_pid}-retiring.lock"


def one_at_a_time() -> bool:
    return os.environ.get("GUNICORN_RECYCLE_ONE_AT_A_TIME", "true").lower() == "true"


class OneAtATimeRecycling:
    """For a gunicorn worker class: call `_retire_only_alone()` in each request thread before gunicorn counts it."""

    # gunicorn's Worker provides these.
    alive: bool
    nr: int
    max_requests: int
    ppid: int
    cfg: Any
    log: Any

    _retire_lock: IO[str] | None = None

    def _retire_only_alone(self) -> None:
        """Before gunicorn counts a request: if it may be among this worker's last, retire only if no sibling is."""
        # Threads count their requests concurrently and gunicorn checks after each, so ask one request per thread
        # early: no thread can take the worker past its limit without having asked. (Compared first: this runs on
        # every request, and only the last few of a worker's life get further.)
        early = max(self.cfg.threads, 1)
        if self.nr + early < self.max_requests or not self.alive or not one_at_a_time():
            return
        if self._take_retire_lock():
            return  # ours: gunicorn retires this worker within the next few requests
        self.max_requests = self.nr + early + RETIRE_RETRY_EVERY
        self.log.info("Worker %s postpones its retirement: a sibling is retiring", os.getpid())

    def _take_retire_lock(self) -> bool:
        if self._retire_lock is None:
            path = retire_lock_path(master_pid=self.ppid, tmp_dir=self.cfg.worker_tmp_dir)
            try:
                # Held open for the rest of the process's life: the lock is let go when the process exits.
                self._retire_lock = path.open("a")
            except OSError:
                # The tmp directory is gunicorn's own (its heartbeat files): if it cannot be written, retire as
                # gunicorn would rather than fail the request that asked.
                self.log.warning("Worker %s retires without the shared lock: %s is not writable", os.getpid(), path)
                return True
        try:
            # Taken again by another thread of this worker: the same open file already holds it, so that succeeds.
            fcntl.flock(self._retire_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
