"""Where the worker's CPU goes per captured order, in one process: the profile behind loadtests/README.md
("Fifth pass").

    DATABASE_URL=postgres://shop@127.0.0.1:6432/shop_load_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        PAYMENT_PROVIDER_URL=http://127.0.0.1:8251 EMAIL_PORT=1026 .venv/bin/python -m loadtests.profile_worker

It needs a seeded load or bench database (`make bench` leaves one), the payment simulator and an SMTP sink on
the ports named (`python -m payments.simulator --port 8251`, `python -m mail.sink --port 1026 --directory D`),
and a Redis database of its own: the placements it makes send their Celery nudges there, and nobody consumes
them (flush it afterwards). It places PROFILE_ORDERS orders (200) with the first load buyer, then runs what a
worker runs for them, step by step, measuring the CPU of this thread per step, and prints one pyinstrument
profile of the whole worker side (wall clock: it names the waits), or with PROFILE_CPU=1 cProfile on the
thread's CPU clock (it names the work; PROFILE_LINES functions, 60).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
import uuid
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")

import django

django.setup()

from pyinstrument import Profiler  # noqa: E402

from accounts.models import User  # noqa: E402
from mail.models import MailEvent, OutboxMessage, OutboxStatus  # noqa: E402
from orders.placement import order_place  # noqa: E402
from orders.services import LineRequest, ShippingAddress  # noqa: E402
from shop.models import Product  # noqa: E402

CPU_PROFILE = os.environ.get("PROFILE_CPU") == "1"  # cProfile on the thread's CPU clock instead of pyinstrument
CPU_PROFILE_LINES = int(os.environ.get("PROFILE_LINES") or 60)  # how many of cProfile's functions to print
ORDERS = int(os.environ.get("PROFILE_ORDERS") or 200)
ADDRESS = ShippingAddress(name="Profile", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


def place(buyer: User, product_ids: list[int]) -> list[int]:
    return [
        order_place(
            customer=buyer,
            lines=[LineRequest(product_id=product_ids[i % len(product_ids)], quantity=1)],
            shipping_address=ADDRESS,
            idempotency_key=str(uuid.uuid4()),
        ).order.pk
        for i in range(ORDERS)
    ]


def cpu_s(calls: list[Callable[[], object]]) -> float:
    """The CPU this thread spent on the calls, in seconds."""
    started = time.thread_time()
    for call in calls:
        call()
    return time.thread_time() - started


def main() -> None:
    from mail.services import outbox_deliver
    from payments.tasks import payment_capture_task

    buyer = User.objects.filter(username__startswith="load-").order_by("id").first()
    product_ids = list(Product.objects.filter(is_active=True, stock_on_hand__gt=1000).values_list("id", flat=True)[:50])
    assert buyer is not None and product_ids, "seed the database first (make bench or loadtests.seed)"
    place(buyer, product_ids[:5])  # warm-up: connections, the provider's client, templates
    order_ids = place(buyer, product_ids)

    def deliveries(event: MailEvent) -> list[Callable[[], object]]:
        pending = OutboxMessage.objects.filter(order_id__in=order_ids, event=event, status=OutboxStatus.PENDING)
        return [lambda pk=pk: outbox_deliver(outbox_id=pk) for pk in pending.values_list("pk", flat=True)]

    # The worker's steps mostly wait (the provider's latency, SMTP round trips): pyinstrument's wall-clock view
    # names the waits, cProfile on this thread's CPU clock (PROFILE_CPU=1) names the work.
    cpu_profiler = cProfile.Profile(time.thread_time)
    wall_profiler = Profiler(interval=0.0005)
    if CPU_PROFILE:
        cpu_profiler.enable()
    else:
        wall_profiler.start()
    totals = {
        # The task's body as the worker runs it (`apply` runs it here, with Celery's tracing, without a broker).
        "payment_capture_task": cpu_s([lambda pk=pk: payment_capture_task.apply(args=[pk]) for pk in order_ids]),
        **{
            f"outbox_deliver {event}": cpu_s(deliveries(event))
            for event in (MailEvent.ORDER_PLACED, MailEvent.ORDER_PAID)
        },
    }
    if CPU_PROFILE:
        cpu_profiler.disable()
    else:
        wall_profiler.stop()
    for name, seconds in totals.items():
        print(f"{name:40} {seconds * 1000 / len(order_ids):6.2f} ms CPU per order")
    print(f"{'all':40} {sum(totals.values()) * 1000 / len(order_ids):6.2f} ms CPU per order ({len(order_ids)} orders)")
    if CPU_PROFILE:
        pstats.Stats(cpu_profiler).sort_stats("cumulative").print_stats(CPU_PROFILE_LINES)
    else:
        print(wall_profiler.output_text(unicode=False, color=False, show_all=False, short_mode=True))


if __name__ == "__main__":
    main()
