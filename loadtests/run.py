"""`make loadtest` / `make loadtest-stress`: stack, seed, locust, audit, report, verdict. Exits 1 on a fail.

Settings come from the environment (the Makefile passes them through):

    USERS=100 SPAWN_RATE=25 DURATION=2m      the load (DURATION: 30s, 2m, 1m30s or plain seconds)
    HOST=https://shop.example                target a running deployment instead of starting a private stack
    LOAD_DATABASE_URL=postgres://...         with HOST: the target's database, for seeding and the audit
    LOAD_DB_NAME=shop_load                   without HOST: the private stack's database (created, migrated)
    APP_PORT=8000 PROVIDER_PORT=8100         without HOST: where the private stack listens
    LOAD_STEPS=50,100,... LOAD_STEP_S=30     stress mode: the user counts of the ramp and each step's length
    LOAD_LATENCY_BUDGETS=0                   report p95 budgets but pass on correctness alone (the CI smoke)
    LOAD_FRESH_DB=0                          keep the private stack's database between runs (default: re-create it,
                                             so every run starts from the same data)
    LOAD_PROGRESS_S=10                       how often the progress line is printed during the run
    LOAD_SHED_OK=1                           count a 503 with Retry-After (load shed) as a polite refusal, not a 5xx
                                             (always so in stress mode; the CI smoke sets it: correctness alone)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadtests import audit, index_page, report
from loadtests.budgets import budgets_doc
from loadtests.machine import MachineSampler, task_counters, worker_accounting, worker_line
from loadtests.progress import PREFIX as PROGRESS_PREFIX
from loadtests.stack import ROOT, VENV_BIN, Stack, database_prepare, free_port, port_in_use

RESULTS = ROOT / "loadtests" / "results"


STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"== [{time.monotonic() - STARTED:5.1f}s] {message}")


def parse_duration(text: str) -> float:
    """'2m' -> 120, '1m30s' -> 90, '45' -> 45."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise SystemExit(f"DURATION={text!r}: use seconds or a form like 30s, 2m, 1m30s")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts))


def pick_port(variable: str, default: int) -> int:
    """The port named in the environment, else the default, else (default busy, e.g. `make run`) a free one."""
    if os.environ.get(variable):
        return int(os.environ[variable])
    if port_in_use(default):
        port = free_port()
        say(f"port {default} is taken (a `make run`?); the private stack uses {port} instead")
        return port
    return default


def warm_up(host: str, fixture: dict[str, Any]) -> None:
    """A deployed shop's workers are warm (health checks, earlier traffic); a fresh private stack's are not.

    A few dozen requests let every gunicorn worker import its views and fill its caches before the clock starts.
    """
    from concurrent.futures import ThreadPoolExecutor

    slugs = list(fixture.get("product_slugs", {}).values())[:5]
    paths = ["/", "/api/v1/products/", "/api/v1/categories/", "/accounts/login/", *[f"/p/{slug}/" for slug in slugs]]

    def fetch(path: str) -> None:
        try:
            with urllib.request.urlopen(f"{host}{path}", timeout=30):
                pass
        except OSError:
            pass  # a warm-up miss is not a result; the run itself judges every answer

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(fetch, paths * 6))


def seed(database_url: str, fixture: Path, *, log: Path, buyers: int) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    env.pop("FAST_PASSWORD_HASHER", None)  # load accounts get a real argon2 hash, as in production
    command = [str(VENV_BIN / "python"), "-m", "loadtests.seed", "--out", str(fixture), "--buyers", str(buyers)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    log.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise SystemExit(f"seeding failed:\n{completed.stderr[-2000:]}")
    print(completed.stdout.strip().splitlines()[-1])
    loaded: dict[str, Any] = json.loads(fixture.read_text())
    return loaded


def provider_control(provider_url: str, settings: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{provider_url}/_control",
        data=json.dumps(settings).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def run_locust(
    *,
    host: str,
    out: Path,
    env: dict[str, str],
    users: int,
    spawn_rate: float,
    run_time: str,
    sampler: MachineSampler,
) -> int:
    command = [
        str(VENV_BIN / "locust"),
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        host,
        "--run-time",
        run_time,
        "--stop-timeout",
        "15",
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if env.get("LOAD_SHAPE") != "steps":
        command += ["--users", str(users), "--spawn-rate", str(spawn_rate)]
    with (out / "locust.log").open("w") as log:
        locust = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        sampler.process_groups[locust.pid] = "load generator (locust)"
        assert locust.stdout is not None
        # Everything locust says goes to locust.log; the progress lines and the stress steps to the terminal too.
        for line in locust.stdout:
            log.write(line)
            if line.startswith((PROGRESS_PREFIX, "[stress]")):
                print(line, end="", flush=True)
        return locust.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stress", action="store_true", help="ramp users in steps until a budget breaks")
    parser.add_argument("--results-dir", type=Path, help="default: loadtests/results/<timestamp>")
    parser.add_argument("--no-latest", action="store_true", help="do not point loadtests/results/latest here")
    args = parser.parse_args()

    users = int(os.environ.get("USERS") or 100)
    spawn_rate = float(os.environ.get("SPAWN_RATE") or 25)
    duration_s = parse_duration(os.environ.get("DURATION") or "2m")
    host = os.environ.get("HOST") or None
    steps = [int(n) for n in (os.environ.get("LOAD_STEPS") or "50,100,150,200,250,300,400").split(",")]
    step_s = float(os.environ.get("LOAD_STEP_S") or 30)
    if args.stress:
        duration_s = len(steps) * step_s
        users = max(steps)

    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-stress" if args.stress else "")
    out = args.results_dir or RESULTS / stamp
    ledger = out / "ledger"
    shutil.rmtree(ledger, ignore_errors=True)  # a reused --results-dir must not mix in an older run's ledger
    ledger.mkdir(parents=True)
    fixture_path = out / "fixture.json"
    fixture: dict[str, Any] = {}
    stack: Stack | None = None
    database_url = os.environ.get("LOAD_DATABASE_URL") or None
    provider_url = os.environ.get("LOAD_PROVIDER_URL") or None
    mail_dir: Path | None = None  # the private stack's SMTP sink; unknown for an outside target (HOST)
    mode = "stress" if args.stress else "load"
    say(f"{mode} run: {users} users, spawn {spawn_rate}/s, {duration_s:.0f}s -> {out}")
    try:
        if host is None:
            db_name = os.environ.get("LOAD_DB_NAME") or "shop_load"
            say(f"private stack: database {db_name} (migrating), gunicorn, Celery worker, provider, redis")
            database_prepare(db_name, fresh=os.environ.get("LOAD_FRESH_DB", "1") != "0", log=out / "migrate.log")
            stack = Stack(
                db_name=db_name,
                app_port=pick_port("APP_PORT", 8000),
                provider_port=pick_port("PROVIDER_PORT", 8100),
                log_dir=out / "stack",
            ).start(timeout_s=180)
            host, database_url, provider_url = stack.host, stack.database_url, stack.provider_url
            mail_dir = stack.mail_dir
            say(f"stack ready at {host}")
        if database_url:
            say("seeding: demo catalog, load accounts with saved sessions, rush products")
            fixture = seed(database_url, fixture_path, log=out / "seed.log", buyers=max(300, users * 2))
        if stack is not None:
            warm_up(host, fixture)
        if provider_url:
            # A realistic provider: some latency, and a few declined cards (those orders end payment_failed).
            provider_control(
                provider_url,
                {
                    "latency_ms": int(os.environ.get("LOAD_PROVIDER_LATENCY_MS") or 50),
                    "decline_rate": float(os.environ.get("LOAD_PROVIDER_DECLINE_RATE") or 0.05),
                },
            )

        env = {**os.environ, "PYTHONPATH": str(ROOT), "LOAD_LEDGER_DIR": str(ledger)}
        if fixture:
            env["LOAD_FIXTURE"] = str(fixture_path)
        if args.stress:
            env.update(
                LOAD_SHAPE="steps",
                LOAD_SHED_OK="1",
                LOAD_STEPS=",".join(map(str, steps)),
                LOAD_STEP_S=str(step_s),
                LOAD_SPAWN_RATE=str(spawn_rate),
            )
        since = time.time() - 1
        say(f"locust against {host} ...")
        groups = {process.pid: f"shop {name}" for name, process in (stack.processes.items() if stack else [])}
        tasks_before = task_counters(stack.prometheus_dir) if stack else None
        sampler = MachineSampler(groups).start()
        run_locust(
            host=host,
            out=out,
            env=env,
            users=users,
            spawn_rate=spawn_rate,
            run_time=f"{int(duration_s + (30 if args.stress else 0))}s",
            sampler=sampler,
        )
        machine = sampler.stop()
        if stack is not None and tasks_before is not None:  # a private stack: its metric files are ours to read
            # Which task cost the worker what, over the same window as the CPU seconds.
            machine["worker"] = worker_accounting(
                tasks_before,
                task_counters(stack.prometheus_dir),
                worker_cpu_s=machine["cpu_seconds"].get("shop worker", 0.0),
            )
        report.write_json(out / "machine.json", machine)

        say("audit: waiting for the worker to settle the run's orders, then checking invariants")
        invariants = audit.audit(
            database_url=database_url,
            ledger_dir=ledger,
            since=since,
            fixture=fixture,
            provider_url=provider_url,
            mail_dir=mail_dir,
            drain_timeout_s=float(os.environ.get("LOAD_DRAIN_TIMEOUT_S") or 90),
        )
    finally:
        if stack is not None:
            stack.stop()

    samples = report.load_samples(ledger)
    summary = report.summarize(
        samples,
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration_s,
        invariants=invariants,
        shed_ok=args.stress or os.environ.get("LOAD_SHED_OK") == "1",
        enforce_latency=os.environ.get("LOAD_LATENCY_BUDGETS", "1") != "0",
    )
    report.write_json(out / "summary.json", summary)
    report.write_json(out / "outcomes.json", report.outcomes_by_endpoint(samples))
    charts = report.write_charts(samples, out / "locust_stats_history.csv", out, title=f"{users} users")
    stress = None
    if args.stress:
        meta = json.loads((ledger / "meta.json").read_text()) if (ledger / "meta.json").exists() else {}
        t0 = meta.get("started_at") or (samples[0].t if samples else time.time())
        ran = ledger / "stress-steps.json"
        steps_run = json.loads(ran.read_text())["steps_run"] if ran.exists() else len(steps)
        stress = report.stress_steps(samples, t0=t0, step_s=step_s, steps=steps[:steps_run])
        report.write_json(out / "stress.json", stress)
        charts.append(report.write_stress_chart(stress, out))
    verdict = summary["verdict"]
    if stress is not None:
        verdict = "pass" if stress["graceful"] and summary["budgets"]["invariants"]["ok"] else "fail"
    index = index_page.write_index(
        out,
        title=f"Hardened Shop {mode} run {stamp}",
        summary=summary,
        samples=samples,
        machine=machine,
        stress=stress,
        charts=charts,
        verdict=verdict,
    )
    if not args.no_latest and args.results_dir is None:
        link = RESULTS / ("latest-stress" if args.stress else "latest")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(out.name)

    print_verdict(summary, stress, out, charts)
    print(
        f"machine during the run: {machine['machine_busy_pct']}% busy on {machine['cores']} cores, load average "
        f"{machine['load_average_mean']}; CPU seconds over {machine['wall_s']}s: {machine['cpu_seconds']}"
    )
    if worker := machine.get("worker"):
        print(f"the worker: {worker_line(worker)}")
    others = machine["cpu_seconds"].get("everything else on the machine", 0.0)
    share = others / max(machine["wall_s"] * (machine["cores"] or 1), 1.0)
    if stack is not None and share > 0.2:
        print(
            f"WARNING: {share:.0%} of the machine's CPU went to other processes during the run: the latency "
            "figures say more about them than about the shop (correctness checks are unaffected)."
        )
    print(f"the run on one page: {index}")
    if args.stress:
        sys.exit(0 if stress and stress["graceful"] and summary["budgets"]["invariants"]["ok"] else 1)
    sys.exit(0 if summary["verdict"] == "pass" else 1)


def print_verdict(summary: dict[str, Any], stress: dict[str, Any] | None, out: Path, charts: list[str]) -> None:
    print()
    print(
        f"requests {summary['requests']}  rps {summary['rps']}  p50 {summary['p50_ms']} ms  "
        f"p95 {summary['p95_ms']} ms  p99 {summary['p99_ms']} ms  failures {summary['failures']}"
    )
    print(f"status codes {summary['status_counts']}")
    for name, budget in summary["budgets"].items():
        print(f"  budget {name:<20} {'ok  ' if budget['ok'] else 'FAIL'} {budget}")
    for name, result in summary["invariants"].items():
        print(f"  invariant {name:<36} {'ok  ' if result['ok'] else 'FAIL'} {result['detail']}")
    failing = [name for name, entry in summary["endpoints"].items() if entry["failures"]]
    if failing:
        print(f"  endpoints with unexpected outcomes: {failing} (bodies in ledger/*.jsonl, kind=unexpected)")
    if stress is not None:
        for row in stress["steps"]:
            print(
                f"  step {row['users']:>4} users  {row['rps']:>6} rps  p95 {row['p95_ms']}  "
                f"{'ok' if row['ok'] else 'broken: ' + '; '.join(row['reasons'])}"
            )
        knee = stress["knee"]
        print(f"KNEE: {knee['users']} users at {knee['rps']} rps" if knee else "KNEE: budgets broke at the first step")
        print(f"PAST THE KNEE: {stress['past_knee']}")
    print(f"report: {out}/summary.json, {out}/report.html, charts {', '.join(charts)}")
    print(f"budgets: {budgets_doc()}")
    if stress is None:
        print(f"VERDICT: {summary['verdict'].upper()}")
    else:
        graceful = stress["graceful"] and summary["budgets"]["invariants"]["ok"]
        print(
            f"STRESS VERDICT: {'PASS' if graceful else 'FAIL'} (past the knee: polite refusals or slower answers, "
            "never 500s or timeouts; every invariant after the run)"
        )


if __name__ == "__main__":
    main()
