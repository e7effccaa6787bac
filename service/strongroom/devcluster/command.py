"""What ``strongroom dev-cluster`` does: ``run`` starts a cluster and, unless
detached, keeps it until SIGINT/SIGTERM; ``stop_directory`` is ``--stop``."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import NoReturn, TextIO

from strongroom.devcluster.cluster import STATE_FILE, DevCluster, Options, children_from
from strongroom.devcluster.processes import DevClusterError, exit_status, runs, stop_children


def stop_directory(directory: Path, out: TextIO = sys.stdout) -> int:
    """``--stop``: stop the processes ``DIR/cluster.json`` names that still run."""
    path = directory.resolve() / STATE_FILE
    if not path.exists():
        raise DevClusterError(f"no {path}: nothing to stop")
    stopped = stop_children(children_from(path))
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}", file=out)
    return 0


def run(options: Options, *, detach: bool = False, out: TextIO = sys.stdout) -> int:
    """Start the cluster; with ``detach`` return once it is ready, else run until SIGINT/SIGTERM."""

    def interrupted(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupted) for signum in (signal.SIGINT, signal.SIGTERM)}
    cluster = DevCluster(options)
    try:
        cluster.start()
        print(cluster.usage(), file=out, flush=True)
        if detach:
            return 0
        while True:
            for child in list(cluster.children):
                if not runs(child):
                    print(
                        f"warning: {child.name} (pid {child.pid}) exited with {exit_status(child)}; "
                        f"see {cluster.dir / (child.name + '.log')}",
                        file=out,
                        flush=True,
                    )
                    cluster.children.remove(child)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        print("\nstopping the dev cluster...", file=out, flush=True)
        cluster.stop()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
