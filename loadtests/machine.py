"""Where the CPU went during a run: the whole machine, the shop's processes, PostgreSQL, and the load generator.

On a 2-core box shared with the load generator (and, on a developer machine, with whatever else runs), a slow
run means nothing until you know whether the shop had the cores. This samples /proc once a second.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHARED = {"postgres": "postgresql (shared)", "pgbouncer": "pgbouncer (shared)"}


def _cpu_seconds_by_process(process_groups: dict[int, str]) -> dict[int, tuple[str, float]]:
    """pid -> (label, CPU seconds so far): our processes by process group, the shared database by name."""
    seen: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        label = process_groups.get(int(fields[2])) or next(
            (label for needle, label in SHARED.items() if cmdline.startswith(needle) or f"/{needle}" in cmdline),
            "everything else on the machine",
        )
        seen[int(entry.name)] = (label, seconds)
    return seen


def _machine_busy_seconds() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


class MachineSampler:
    """Start before the load, stop after it; `stop()` says who used the CPU in between.

    Processes are sampled every second, so one that ends before `stop()` (locust itself) is still counted up
    to its last sample; one that starts during the window counts from zero.
    """

    def __init__(self, process_groups: dict[int, str]) -> None:
        self.process_groups = process_groups  # process group id -> label; may grow while sampling
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.load_averages: list[float] = []
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}

    def _sample(self, *, initial: bool = False) -> None:
        for pid, (label, seconds) in _cpu_seconds_by_process(self.process_groups).items():
            self.first.setdefault(pid, seconds if initial else 0.0)
            self.last[pid] = (label, seconds)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.load_averages.append(os.getloadavg()[0])
            self._sample()

    def start(self) -> MachineSampler:
        self.started = time.monotonic()
        self.busy_before = _machine_busy_seconds()
        self._sample(initial=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self.started
        busy_after = _machine_busy_seconds()
        busy = busy_after[0] - self.busy_before[0]
        total = busy_after[1] - self.busy_before[1]
        used: dict[str, float] = defaultdict(float)
        for pid, (label, seconds) in self.last.items():
            used[label] += max(seconds - self.first.get(pid, 0.0), 0.0)
        return {
            "wall_s": round(wall, 1),
            "cores": os.cpu_count(),
            "machine_busy_pct": round(100 * busy / total, 1) if total else 0.0,
            "cpu_seconds": {label: round(value, 1) for label, value in sorted(used.items(), key=lambda i: -i[1])},
            "load_average_mean": round(sum(self.load_averages) / len(self.load_averages), 2)
            if self.load_averages
            else 0.0,
        }


CAPTURE_TASK = "payments.tasks.payment_capture_task"
COUNTED = ("runs", "succeeded", "cpu_s")


def task_counters(prometheus_dir: Path) -> dict[str, dict[str, float]]:
    """task name -> {"runs", "succeeded", "cpu_s"} so far, read from the stack's multiprocess metric files.

    The worker counts every task run and the CPU of the thread that ran it (observability/task_context.py); read
    before and after the load, the difference says which task costs the worker what.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(prometheus_dir))
    tasks: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COUNTED, 0.0))
    for family in registry.collect():
        for sample in family.samples:
            task = sample.labels.get("task")
            if task is None:
                continue
            if sample.name == "shop_celery_tasks_total":
                tasks[task]["runs"] += sample.value
                if sample.labels.get("state") == "SUCCESS":
                    tasks[task]["succeeded"] += sample.value
            elif sample.name == "shop_celery_task_cpu_seconds_total":
                tasks[task]["cpu_s"] += sample.value
    return dict(tasks)


def worker_accounting(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], *, worker_cpu_s: float
) -> dict[str, Any]:
    """Where the worker's CPU went between two `task_counters` readings, and what a captured order cost it.

    `worker_cpu_s` is the worker's process group (the prefork parent and its children) from the sampler: what the
    tasks' own threads did not spend is Celery's work around them (the broker, acks, handing tasks to children).
    """
    tasks = {}
    for name in sorted(after):
        earlier = before.get(name, {})
        runs, succeeded, cpu_s = (after[name][key] - earlier.get(key, 0.0) for key in COUNTED)
        if runs > 0:
            tasks[short_name(name)] = {
                "runs": int(runs),
                "succeeded": int(succeeded),
                "cpu_s": round(cpu_s, 2),
                "cpu_ms_per_run": round(1000 * cpu_s / runs, 2),
            }
    in_tasks = sum(task["cpu_s"] for task in tasks.values())
    capture = tasks.get(short_name(CAPTURE_TASK), {"succeeded": 0, "cpu_s": 0.0})
    captures = capture["succeeded"]  # capture tasks that ran to the end (captured or declined), not retries
    return {
        "tasks": tasks,
        "worker_cpu_s": round(worker_cpu_s, 2),
        "in_tasks_cpu_s": round(in_tasks, 2),
        "outside_tasks_cpu_s": round(max(worker_cpu_s - in_tasks, 0.0), 2),
        "capture_tasks_succeeded": captures,
        "worker_cpu_ms_per_capture_task": round(1000 * worker_cpu_s / captures, 1) if captures else None,
        "capture_task_own_cpu_ms": round(1000 * capture["cpu_s"] / captures, 2) if captures else None,
    }


def short_name(task: str) -> str:
    """payments.tasks.payment_capture_task -> payment_capture_task (the report's rows)."""
    return task.rsplit(".", 1)[-1]


def worker_line(worker: dict[str, Any]) -> str:
    """`worker_accounting` in one sentence, for the console and the run's page."""
    per_capture = worker["worker_cpu_ms_per_capture_task"]
    head = f"{worker['worker_cpu_s']:,.1f} CPU-s"
    if per_capture is not None:
        head += (
            f" for {worker['capture_tasks_succeeded']:,} capture tasks = {per_capture} ms per capture "
            f"(the capture task's own {worker['capture_task_own_cpu_ms']} ms)"
        )
    by_task = ", ".join(
        f"{name} {task['runs']:,} runs x {task['cpu_ms_per_run']} ms" for name, task in worker["tasks"].items()
    )
    outside = worker["outside_tasks_cpu_s"]
    return f"{head}; in tasks: {by_task or 'none'}; Celery's own work around them: {outside} CPU-s"
