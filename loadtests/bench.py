"""`make bench`: the shop's throughput next to its ceilings, measured in the same run on the same machine.

    /healthz            the framework and middleware ceiling (gunicorn + Django, no database)
    product list        a typical read: one query, serialized, paginated
    product detail      one product by id
    order placement     the API write: idempotency claim, locks, order, lines, stock, payment, commit
    pgbench             the order placement's own SQL (order_placement.pgbench.sql) through the same PgBouncer:
                        the database ceiling for that write

HTTP figures come from wrk (C, light on the shared CPU); `apt-get install wrk` if it is missing. The bench
uses its own database (LOAD_BENCH_DB, default shop_load_bench, re-created each time) and a private stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from loadtests.stack import ROOT, VENV_BIN, Stack, database_prepare, free_port, port_in_use

DURATION_S = int(os.environ.get("BENCH_DURATION_S") or 15)
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS") or 24)
PGBENCH_CLIENTS = int(os.environ.get("BENCH_PGBENCH_CLIENTS") or 12)

ORDER_LUA = """
-- One order per request: a fresh Idempotency-Key each time, tokens and products spread over the requests.
local tokens = {%(tokens)s}
local run_id = "%(run_id)s"
local products = {%(products)s}
local counter = 0
local threads = 0
function setup(thread)
  -- thread_id is a global of each thread's own Lua state: keys from two threads never collide.
  threads = threads + 1
  thread:set("thread_id", threads)
end
request = function()
  counter = counter + 1
  local p = products[(counter %% #products) + 1]
  local body = '{"lines":[{"product_id":' .. p .. ',"quantity":1}],"shipping_address":{"name":"Bench",' ..
    '"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},"note":""}'
  return wrk.format("POST", "/api/v1/orders/", {
    ["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1],
    ["Idempotency-Key"] = "bench-" .. thread_id .. "-" .. counter .. "-" .. run_id,
    ["Content-Type"] = "application/json",
  }, body)
end
"""


def wrk(url: str, *, script: Path | None = None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"requests in ([\d.]+)s", output).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    bad = int(bad_match.group(1)) if bad_match else 0
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    p99_ms = 0.0
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {
        "rps": round((requests - bad) / seconds, 1),
        "requests": requests,
        "non_2xx": bad,
        "p99_ms": round(p99_ms, 1),
    }


def pgbench(database_url: str, *, ranges: dict[str, int]) -> dict[str, float]:
    command = [
        "pgbench",
        "-n",
        "-f",
        str(ROOT / "loadtests" / "order_placement.pgbench.sql"),
        "-c",
        str(PGBENCH_CLIENTS),
        "-j",
        "2",
        "-T",
        str(DURATION_S),
    ]
    for name, value in ranges.items():
        command += ["-D", f"{name}={value}"]
    output = subprocess.run([*command, database_url], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{output.stdout[-1500:]}{output.stderr[-1500:]}")
    tps = float(re.search(r"tps = ([\d.]+)", output.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", output.stdout)
    return {"tps": round(tps, 1), "failed": int(failed.group(1)) if failed else 0}


def access_tokens(host: str, usernames: list[str], password: str) -> list[str]:
    tokens = []
    for username in usernames:
        request = urllib.request.Request(
            f"{host}/api/v1/auth/token/",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            tokens.append(json.load(response)["access"])
    return tokens


def main() -> None:
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        raise SystemExit("make bench needs wrk and pgbench: apt-get install -y wrk postgresql-client")
    db_name = os.environ.get("LOAD_BENCH_DB") or "shop_load_bench"
    out = ROOT / "loadtests" / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    app_port = int(os.environ.get("APP_PORT") or 8000)
    provider_port = int(os.environ.get("PROVIDER_PORT") or 8100)
    if port_in_use(app_port) or port_in_use(provider_port):
        app_port, provider_port = free_port(), free_port()
    print(f"== bench database {db_name} (fresh), private stack on :{app_port}", flush=True)
    database_prepare(db_name, fresh=True, log=out / "migrate.log")
    # Throughput, not fairness: the per-user write limit would cap one bench user at 30 orders a minute.
    stack = Stack(
        db_name=db_name,
        app_port=app_port,
        provider_port=provider_port,
        log_dir=out / "stack",
        extra_env={
            "THROTTLE_USER_RATE": "1000000/min",
            # A closed loop of 24 connections over 12 threads queues by design; shedding would turn that queue
            # into 503s and the ceiling into a count of refusals (make loadtest-stress measures shedding).
            "SHEDDING_MAX_QUEUE_MS": os.environ.get("SHEDDING_MAX_QUEUE_MS", "0"),
            "CATALOG_CACHE_S": os.environ.get("CATALOG_CACHE_S", "1.0"),
        },
    )
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg()[0]}}
    try:
        stack.start(timeout_s=180)
        env = {**os.environ, "DATABASE_URL": stack.database_url, "LOG_LEVEL": "WARNING"}
        subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-m",
                "loadtests.seed",
                "--out",
                str(out / "fixture.json"),
                "--buyers",
                "50",
                "--top-up",
                "1000000",
                "--rush",
                "0",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        fixture = json.loads((out / "fixture.json").read_text())
        host = stack.host
        print(f"== wrk: {CONNECTIONS} connections, {DURATION_S}s per figure", flush=True)
        results["healthz"] = wrk(f"{host}/healthz")
        print(f"   /healthz              {results['healthz']['rps']:>8} rps", flush=True)
        results["product_list"] = wrk(f"{host}/api/v1/products/?page_size=20")
        print(f"   GET /api/v1/products/ {results['product_list']['rps']:>8} rps", flush=True)
        detail_id = fixture["product_ids"][0]
        results["product_detail"] = wrk(f"{host}/api/v1/products/{detail_id}/")
        print(f"   GET /api/v1/products/{detail_id}/ {results['product_detail']['rps']:>8} rps", flush=True)
        tokens = access_tokens(host, fixture["buyers"][:16], fixture["password"])
        products = fixture["product_ids"][:100]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(
                ORDER_LUA
                % {
                    "run_id": time.strftime("%Y%m%d%H%M%S"),
                    "tokens": ",".join(f'"{t}"' for t in tokens),
                    "products": ",".join(map(str, products)),
                }
            )
        results["order_placement"] = wrk(f"{host}/api/v1/orders/", script=Path(lua.name))
        Path(lua.name).unlink()
        print(f"   POST /api/v1/orders/  {results['order_placement']['rps']:>8} rps (201s)", flush=True)
    finally:
        stack.stop()
    with psycopg.connect(stack.database_url, autocommit=True, prepare_threshold=None) as conn:  # PgBouncer
        products = conn.execute(
            "SELECT min(id), max(id) FROM shop_product WHERE is_active AND sku NOT LIKE 'RUSH-%'"
        ).fetchone()
        users = conn.execute("SELECT min(id), max(id) FROM accounts_user WHERE username LIKE 'load-%'").fetchone()
    assert products and users
    ranges = {"min_product": products[0], "max_product": products[1], "min_user": users[0], "max_user": users[1]}
    print(f"== pgbench: the order SQL, {PGBENCH_CLIENTS} clients through PgBouncer, {DURATION_S}s", flush=True)
    results["pgbench_order_sql"] = pgbench(stack.database_url, ranges=ranges)
    print(f"   order SQL             {results['pgbench_order_sql']['tps']:>8} tps", flush=True)

    healthz = results["healthz"]["rps"] or 1
    ceiling = results["pgbench_order_sql"]["tps"] or 1
    results["ratios"] = {
        "product_list / healthz": round(results["product_list"]["rps"] / healthz, 3),
        "product_detail / healthz": round(results["product_detail"]["rps"] / healthz, 3),
        "order_placement / healthz": round(results["order_placement"]["rps"] / healthz, 3),
        "order_placement / pgbench_order_sql": round(results["order_placement"]["rps"] / ceiling, 3),
    }
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'figure':<38}{'per second':>12}")
    print(f"{'/healthz (framework ceiling)':<38}{results['healthz']['rps']:>12}")
    print(f"{'GET /api/v1/products/':<38}{results['product_list']['rps']:>12}")
    print(f"{'GET /api/v1/products/<id>/':<38}{results['product_detail']['rps']:>12}")
    print(f"{'POST /api/v1/orders/ (201s)':<38}{results['order_placement']['rps']:>12}")
    print(f"{'pgbench order SQL (database ceiling)':<38}{results['pgbench_order_sql']['tps']:>12}")
    for name, ratio in results["ratios"].items():
        print(f"ratio {name:<42} {ratio:>6.1%}")
    print(f"written: {out / 'bench.json'}")


if __name__ == "__main__":
    main()
