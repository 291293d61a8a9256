"""n-plus-one: shoppers list one category while it grows from 100 to 10,000 products (the run grows it).

The users are the offered load; the counter comes from the run's own probes of each list (workshop/run.py),
which read the query count from the Server-Timing header at each catalog size.
"""

from __future__ import annotations

from locust import task

from workshop.load.common import LEDGER, SideUser


class ListUser(SideUser):
    abstract = True

    @task
    def browse(self) -> None:
        category = self.side_fixture["category"]
        if self.side == "twin":
            path = self.twin_path(f"products/?category={category}")
        else:
            path = f"/api/v1/products/?category={category}&page_size=100"
        answer = self.send("GET", path, name="GET products")
        LEDGER.write("request", self.side, status=answer.status)
