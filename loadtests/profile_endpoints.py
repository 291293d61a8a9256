"""Where a request's time goes, per endpoint, in one process (pyinstrument): the profile behind the findings in
loadtests/README.md ("Profiles").

    DATABASE_URL=postgres://shop@127.0.0.1:6432/shop_load_bench .venv/bin/python -m loadtests.profile_endpoints

Runs against a seeded database (`make bench` leaves one: LOAD_BENCH_DB) through Django's WSGI handler, the whole
middleware chain included, with production-like settings (DEBUG off). Each endpoint is called PROFILE_CALLS
times (200) after a warm-up; the report names the CPU per call and the top frames. Orders are placed with the
first load buyer, so run it only against a load or bench database.
"""

from __future__ import annotations

import json
import os
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("THROTTLE_USER_RATE", "1000000/min")
os.environ.setdefault("THROTTLE_IP_RATE", "1000000/min")

import django

django.setup()

from django.test import Client  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from accounts.models import User  # noqa: E402
from shop.models import Product  # noqa: E402

CALLS = int(os.environ.get("PROFILE_CALLS") or 200)
ORDER = {
    "shipping_address": {
        "name": "Profile",
        "line1": "1 Main St",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
    "note": "",
}


def main() -> None:
    client = Client()
    product_ids = list(Product.objects.filter(is_active=True, stock_on_hand__gt=1000).values_list("id", flat=True)[:50])
    buyer = User.objects.filter(username__startswith="load-").order_by("id").first()
    assert buyer is not None and product_ids, "seed the database first (make bench or loadtests.seed)"
    token = str(AccessToken.for_user(buyer))
    calls = {
        "GET /api/v1/products/": lambda i: client.get("/api/v1/products/?page_size=20"),
        "GET /api/v1/products/<id>/": lambda i: client.get(f"/api/v1/products/{product_ids[i % 50]}/"),
        "POST /api/v1/orders/": lambda i: client.post(
            "/api/v1/orders/",
            data=json.dumps({**ORDER, "lines": [{"product_id": product_ids[i % 50], "quantity": 1}]}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        ),
    }
    for name, call in calls.items():
        for i in range(10):
            status = call(i).status_code
            assert status < 300, (name, status)
        profiler = Profiler(interval=0.0005)
        cpu = time.process_time()
        wall = time.perf_counter()
        profiler.start()
        for i in range(CALLS):
            call(i)
        profiler.stop()
        cpu_ms = (time.process_time() - cpu) * 1000 / CALLS
        wall_ms = (time.perf_counter() - wall) * 1000 / CALLS
        print(f"\n===== {name}: {cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms wall per call ({CALLS} calls, profiled) =====")
        print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=True))


if __name__ == "__main__":
    main()
