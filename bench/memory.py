"""Memory of a benchmark process: its peak (VmHWM) and a sampler that adds its child processes'
own pages (used by imap_sync.py's 100,000-message run)."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path


def _kb(path: str, *fields: str) -> int:
    total = 0
    try:
        for line in Path(path).read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in fields:
                total += int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return total


class MemorySampler:
    """Every 20 ms: this process's resident memory plus its parse processes' private memory.

    A child's RSS counts the pages it shares with others (shared libraries; with a forked child,
    its parent's pages too) once more. What the processes really hold together is this process's
    RSS plus the pages each child has of its own (Private_Clean + Private_Dirty in smaps_rollup).
    """

    def __init__(self) -> None:
        self.peak_total_mb = self.peak_children_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            own = _kb("/proc/self/status", "VmRSS")
            children = 0
            kids = []
            for task in Path(f"/proc/{me}/task").iterdir():  # children of any thread
                try:
                    kids += (task / "children").read_text().split()
                except OSError:
                    continue
            for pid in kids:
                children += _kb(f"/proc/{pid}/smaps_rollup", "Private_Clean", "Private_Dirty")
            self.peak_children_mb = max(self.peak_children_mb, children / 1024)
            self.peak_total_mb = max(self.peak_total_mb, (own + children) / 1024)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    VmHWM rather than ru_maxrss: Linux carries ru_maxrss over exec, so this child would report
    its parent's size at fork (the whole 10,000-message run, 220-280 MB) whenever that was larger.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
