"""What every real process of the test tiers shares: free ports, polling, and
``Process`` (start in a session of its own, log to a file, wait until ready,
stop by pid, quote the log when a start fails).

Free ports and polling come from the product (``strongroom.devcluster.processes``),
which its dev cluster uses too; here they raise the built-in errors tests expect.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from strongroom.devcluster import processes as _processes

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` right now (Serf uses both),
    never returned twice by this process (RuntimeError if there is none)."""
    try:
        return _processes.free_port(host)
    except _processes.DevClusterError as exc:
        raise RuntimeError(str(exc)) from None


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    fatal: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it.

    Exceptions from the predicate count as "not yet", except those of a
    ``fatal`` type, which propagate at once.  Raises TimeoutError naming
    ``what`` and the last exception once ``timeout`` seconds have passed.
    """
    try:
        return _processes.wait(predicate, time.monotonic() + timeout, what, interval=interval, fatal=fatal)
    except _processes.WaitTimedOut as exc:
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {exc.last_error!r})") from None


def freeze(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP ``pid`` and return once every one of its threads is stopped:
    ``kill`` returns before they are, and on a busy machine a thread of a
    multi-threaded server (Consul's Go runtime) can still answer a request
    sent right after it.  Resume with SIGCONT."""
    os.kill(pid, signal.SIGSTOP)

    def all_stopped() -> bool:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                states.append(stat.read().rsplit(")", 1)[1].split()[0])
        return all(state in ("T", "t") for state in states)

    wait_until(all_stopped, timeout, f"every thread of process {pid} to stop", interval=0.005)


class AgentExited(RuntimeError):
    """The process ended while we waited for it to become ready."""


class Process:
    """One server process of ours: the part every class below shares.

    The process runs in its own session (a Ctrl-C aimed at pytest must not kill
    it before the fixture's teardown does), stdin closed, its output appended
    to ``log_path``.  Invariants: it is only ever signalled by its own pid (with
    ``kill_group``, SIGKILL goes to the process group it leads, whose id is that
    same pid); ``stop()`` is idempotent and removes ``scratch``, the temporary
    directory made for it, if any.  Use as a context manager.
    """

    name = "process"
    stop_timeout = 10.0
    # True for servers with children (gunicorn workers) that must die with them.
    kill_group = False

    def __init__(self, log_path: Path, scratch: Path | None = None):
        self.log_path = log_path
        self.scratch = scratch
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """Process id of the running process."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} not started")
        return self.proc.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )

    def _wait_ready(self, ready: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
        """Poll ``ready`` until it is truthy.  Raises AgentExited as soon as the
        process has exited, TimeoutError at the deadline; both quote the log."""

        def check() -> object:
            if not self.running():
                raise AgentExited(f"{self.name} exited with {self.proc.returncode}")
            return ready()

        try:
            wait_until(check, timeout, what, interval=interval, fatal=(AgentExited,))
        except AgentExited as exc:
            raise AgentExited(f"{exc}; {self._startup_output()}") from None
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {self._startup_output()}") from None

    def _startup_output(self) -> str:
        """What a failed start quotes from the log."""
        return f"log tail:\n{self.log_tail()}"

    def log_text(self) -> str:
        """Everything the process has printed so far ("" when there is no log file)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the process's output."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM to our pid, SIGKILL after ``timeout`` (default ``stop_timeout``),
        reap, remove ``scratch``.  Idempotent."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    if self.kill_group:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    else:
                        os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def start(self) -> Process:
        """Start the process and wait until it is ready; each subclass says what ready is."""
        raise NotImplementedError

    def __enter__(self):
        if self.proc is None:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
