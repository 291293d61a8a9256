"""`python manage.py check_invariants [--json] [--output FILE] [--no-publish]`: audit the data, exit 1 on any violation.

Logs share stdout with this output, so `--json` prints the document as one line, the last one on stdout
(`... | tail -n1 | jq`), and `--output FILE` writes it to a file for scripts such as the load suite.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from observability.invariants import InvariantResult, check_all, publish_results, results_as_dict


def format_table(results: list[InvariantResult]) -> str:
    rows = [("INVARIANT", "STATUS", "COUNT", "DETAIL")]
    rows += [(result.name, "ok" if result.ok else "VIOLATED", str(result.count), result.detail) for result in results]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [
        f"{name:<{widths[0]}}  {status:<{widths[1]}}  {count:>{widths[2]}}  {detail}"
        for name, status, count, detail in rows
    ]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Audit the database invariants (stock, orders, lines, payments). Exits 1 when any is violated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
        parser.add_argument("--output", metavar="FILE", help="also write the JSON document to FILE")
        parser.add_argument(
            "--no-publish",
            action="store_true",
            help="do not export the results (metrics gauge in the cache, Sentry events)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        results = check_all()
        summary = publish_results(results) if not options["no_publish"] else results_as_dict(results)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as output:
                json.dump(summary, output, indent=2, default=str)
        if options["json"]:
            self.stdout.write(json.dumps(summary, default=str))
        else:
            self.stdout.write(format_table(results))
            verdict = "all invariants hold" if summary["ok"] else "INVARIANTS VIOLATED"
            self.stdout.write(verdict)
        if not summary["ok"]:
            sys.exit(1)
