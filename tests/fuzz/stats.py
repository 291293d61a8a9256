"""What the outside checks ran, printed at the end of every run that included them (see conftest.py)."""

from __future__ import annotations

from collections import Counter

api_operations: set[str] = set()
api_cells: Counter[tuple[str, str]] = Counter()  # (operation, actor) -> requests of the fuzzing pass
api_examples: Counter[str] = Counter()  # per actor, fuzzing pass
api_checks = 0  # every check run on every response, both passes
api_check_names: set[str] = set()
stateful_steps: Counter[str] = Counter()  # per actor
stateful_scenarios: Counter[str] = Counter()
crawl_routes: set[str] = set()
crawl_requests = 0
crawl_statuses: Counter[int] = Counter()


def record_api(*, operation: str, actor: str, checks: list[str], stateful: bool) -> None:
    global api_checks
    api_checks += len(checks)
    api_check_names.update(checks)
    if stateful:
        return  # counted per step by the state machine
    api_operations.add(operation)
    api_cells[(operation, actor)] += 1
    api_examples[actor] += 1


def record_crawl(*, route: str, status: int) -> None:
    global crawl_requests
    crawl_routes.add(route)
    crawl_requests += 1
    crawl_statuses[status] += 1


def summary_lines() -> list[str]:
    lines = []
    if api_examples:
        per_actor = ", ".join(f"{actor} {count}" for actor, count in sorted(api_examples.items()))
        lines.append(
            f"schemathesis: {len(api_operations)} operations x {len(api_examples)} actors = {len(api_cells)} cells, "
            f"{sum(api_examples.values())} requests ({per_actor}; at least {min(api_cells.values())} per cell), "
            f"{api_checks} checks run"
        )
        lines.append(f"schemathesis checks: {len(api_check_names)} kinds ({', '.join(sorted(api_check_names))})")
    if stateful_scenarios:
        lines.append(
            f"schemathesis stateful: {sum(stateful_scenarios.values())} scenarios, "
            f"{sum(stateful_steps.values())} linked calls ({', '.join(sorted(stateful_scenarios))})"
        )
    if crawl_requests:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(crawl_statuses.items()))
        lines.append(f"hostile crawl: {len(crawl_routes)} HTML routes, {crawl_requests} requests ({statuses})")
    if not api_examples and api_checks:
        lines.append(f"schemathesis checks run: {api_checks}")
    return lines
