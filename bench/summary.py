"""Print the README's performance table from bench/results/*.json (run after the benchmarks).

Run: .venv/bin/python bench/summary.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = [
    "imap_sync",
    "imap_sync_postgresql",
    "pop3_sync",
    "reading",
    "reading_postgresql",
    "send",
    "push",
    "faults",
    "load",
    "load_think_3_10",
]


def main() -> None:
    print("| Benchmark | Metric | Value | When | Command |")
    print("| --- | --- | --- | --- | --- |")
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for i, (metric, entry) in enumerate(data["metrics"].items()):
            when = data.get("when", "")[:16].replace("T", " ") if i == 0 else ""
            command = f"`{data.get('command', '')}`" if i == 0 else ""
            print(
                f"| {name if i == 0 else ''} | {metric} | {entry['value']} {entry.get('unit', '')} | {when} | {command} |"
            )


if __name__ == "__main__":
    main()
