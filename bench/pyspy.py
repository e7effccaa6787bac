"""py-spy profiles of gunicorn workers during a benchmark run, and their summary.

``Recorder(pids, seconds, out_dir, label).start()`` runs one ``py-spy record``
per worker (``--nonblocking``: the worker is sampled without being stopped, so
the profile costs it next to nothing) writing collapsed stacks (``--format
raw``); ``stop()`` waits for them.  ``summary(files)`` reads those stacks and
returns the functions with the largest share of samples, by own time (the frame
on top of the stack) and by inclusive time (anywhere on the stack), so a
report can say where a worker's CPU went without a flame graph viewer.

py-spy comes from PyPI (``.venv/bin/pip install py-spy``); it needs ptrace
rights over the workers (root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

RATE = 250  # samples per second: enough for a 10 s run, light on a 2-core machine


def binary() -> str | None:
    """py-spy beside this Python, else on PATH; None without one."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Recorder:
    """One ``py-spy record`` per pid for ``seconds``; files ``<label>-<pid>.txt`` in ``out_dir``."""

    def __init__(self, pids: list[int], seconds: float, out_dir: Path, label: str) -> None:
        self.pids = pids
        self.seconds = seconds
        self.out_dir = out_dir
        self.label = label
        self.files: list[Path] = []
        self._procs: list[subprocess.Popen] = []

    def start(self) -> Recorder:
        exe = binary()
        if exe is None:
            raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in self.pids:
            out = self.out_dir / f"{self.label}-{pid}.txt"
            self.files.append(out)
            argv = [exe, "record", "--nonblocking", "-r", str(RATE), "-d", f"{max(1, int(self.seconds))}"]
            argv += ["-f", "raw", "-o", str(out), "-p", str(pid)]
            self._procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def stop(self, timeout: float = 30.0) -> list[Path]:
        for proc in self._procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(2)  # py-spy writes what it has on SIGINT
                proc.wait(timeout=10)
        return [f for f in self.files if f.exists()]


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py:func`` (line numbers merged)."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    short = "/".join(file.split("/")[-2:]) if "strongroom" in file else file.split("/")[-1]
    return f"{short}:{match.group('func')}"


def summary(files: list[Path], top: int = 25) -> tuple[int, list[tuple[str, float, float]]]:
    """Total samples and ``(function, own %, inclusive %)`` for the ``top`` functions by inclusive share,
    over every file (the workers' samples pooled; idle samples are not recorded by py-spy by default)."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")]
            if frames and frames[0].startswith("process "):
                frames = frames[1:]
            if not frames:
                continue
            total += count
            own[frames[-1]] += count
            for name in set(frames):
                incl[name] += count
    rows = [(name, 100 * own[name] / total, 100 * n / total) for name, n in incl.most_common(top)] if total else []
    return total, rows


def top_own(files: list[Path], top: int = 25) -> tuple[int, list[tuple[str, float]]]:
    """Total samples and the ``top`` functions by own share."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frame = _frame_name(stack.split(";")[-1])
            total += count
            own[frame] += count
    return total, [(name, 100 * n / total) for name, n in own.most_common(top)] if total else []


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.pyspy FILE...``: print the summary of recorded raw profiles."""
    files = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    total, rows = summary(files, top=40)
    print(f"{total} samples")
    print(f"{'inclusive %':>11} {'own %':>6}  function")
    for name, own_share, incl_share in rows:
        print(f"{incl_share:11.1f} {own_share:6.1f}  {name}")
    total, owns = top_own(files, top=30)
    print(f"\n{'own %':>6}  function (by own time)")
    for name, share in owns:
        print(f"{share:6.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
