"""Workshop writes: prepare a run's seeded data, reset a mode, record runs and the exam.

Every row written or removed here carries a workshop tag (workshop/tags.py); nothing of the real shop is
touched. Stock is only ever set the conserved way: received = on hand + units held by live orders.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from cart.models import CartItem
from cart.services import cart_add_item
from core.errors import Conflict
from mail.models import OutboxMessage
from orders.models import STATUSES_HOLDING_STOCK, Order, OrderLine
from orders.placement import do_order_create, order_place, order_request_fingerprint
from orders.services import LineRequest, ShippingAddress
from payments.models import Payment
from shop.models import Category, Product
from workshop import tags
from workshop.models import Run, RunKind, RunStatus
from workshop.modes import MODES, mode_get
from workshop.presets import Preset, preset_for
from workshop.tags import SIDES, Side

logger = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("WORKSHOP_RESULTS_DIR") or ROOT / "workshop" / "results")

# Workshop accounts can sign in with the demo password (the teacher page's "try it" signs you in as one).
WORKSHOP_PASSWORD = "demo-password-123"
PLENTY = 100_000
CATALOG_ROWS = 100  # n-plus-one: the catalog each side starts from; the run grows it, reset shrinks it back
CURIOUS_FROM = 90  # authorization: curious accounts are numbered 90, 91, ...
BROWSER_ACCOUNT = 80  # frontend-state: the browser script's own account, so it never edits a locust user's order
ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="12 Analytical St", city="Berlin", postal_code="10115", country="DE"
)


@dataclass(frozen=True)
class ProductSpec:
    number: int
    name: str
    stock: int | None  # None: the preset's scarce stock


PRODUCTS: dict[str, list[ProductSpec]] = {
    "races": [
        ProductSpec(1, "Limited teapot", None),
        ProductSpec(2, "Sencha tin", PLENTY),
        ProductSpec(3, "Matcha whisk", PLENTY),
    ],
    "n-plus-one": [],  # generated: CATALOG_ROWS products in the side's own category
    "capacity": [ProductSpec(1, "Gift card", PLENTY)],
    "authorization": [ProductSpec(1, "Tea sampler", PLENTY)],
    "frontend-state": [ProductSpec(1, "Tea sampler", PLENTY)],
    "observability": [ProductSpec(1, "Oolong tin", PLENTY), ProductSpec(2, "Clay cup", PLENTY)],
}
SCARCE_STOCK = 3
RUN_CAPACITY_LOCK = 0x57_0125  # the advisory lock key that serialises run_create ("WS" runs)


@dataclass(frozen=True)
class ResetReport:
    mode: str
    seat: str
    orders_removed: int
    payments_removed: int
    products_restored: int
    products_removed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- Accounts, products, stock ------------------------------------------------------------------------------


def _accounts(seat: str, mode: str, side: Side, numbers: Iterable[int]) -> list[User]:
    wanted = [tags.username(seat, mode, side, number) for number in numbers]
    existing = set(User.objects.filter(username__in=wanted).values_list("username", flat=True))
    missing = [name for name in wanted if name not in existing]
    if missing:
        password = make_password(WORKSHOP_PASSWORD)  # one hash for all of them (argon2 is slow on purpose)
        User.objects.bulk_create(
            [User(username=name, email=f"{name}@workshop.example", password=password) for name in missing],
            ignore_conflicts=True,
        )
    by_name = {user.username: user for user in User.objects.filter(username__in=wanted)}
    return [by_name[name] for name in wanted]


def side_accounts(seat: str, mode: str, side: Side) -> Any:
    return User.objects.filter(username__startswith=tags.account_prefix(seat, mode, side))


def side_products(seat: str, mode: str, side: Side) -> Any:
    return Product.objects.filter(sku__startswith=tags.sku_prefix(seat, mode, side))


def _category(seat: str, mode: str, side: Side) -> Category:
    """The side's own category (created once; one query when it exists)."""
    slug = tags.category_slug(seat, mode, side)
    Category.objects.bulk_create(
        [Category(slug=slug, name=f"Workshop {seat}: {MODES[mode].title} ({side})")], ignore_conflicts=True
    )
    category = Category.objects.filter(slug=slug).first()
    assert category is not None, "created just above, or there before"
    return category


def _held_units() -> Any:
    """Units held by live orders of each product (a subquery), counted exactly as the invariant checker does."""
    return (
        OrderLine.objects.filter(product=OuterRef("pk"), order__status__in=STATUSES_HOLDING_STOCK)
        .order_by()
        .values("product")
        .annotate(units=Sum("quantity"))
        .values("units")
    )


def _products(seat: str, mode: str, side: Side, scarce_stock: int) -> list[Product]:
    category = _category(seat, mode, side)
    existing = set(side_products(seat, mode, side).values_list("sku", flat=True))
    missing = [spec for spec in PRODUCTS[mode] if tags.sku(seat, mode, side, spec.number) not in existing]
    Product.objects.bulk_create(
        [
            Product(
                category=category,
                sku=tags.sku(seat, mode, side, spec.number),
                name=f"{spec.name} ({side} {seat})",
                slug=f"{tags.category_slug(seat, mode, side)}-{spec.number}",
                description="Workshop product.",
                price="9.50",
                stock_on_hand=scarce_stock if spec.stock is None else spec.stock,
                stock_received=scarce_stock if spec.stock is None else spec.stock,
            )
            for spec in missing
        ],
        ignore_conflicts=True,
    )
    return list(side_products(seat, mode, side).order_by("id"))


def _restore_stock(seat: str, mode: str, side: Side, scarce_stock: int) -> int:
    """Put each tagged product back to its preset units on hand, the conserved way.

    Twin side: its orders are gone, so received = preset + whatever live orders still hold (normally nothing).
    Fixed side: stock is only added (received and on hand grow together), as a real shop restocks.
    """
    restored = 0
    for spec in PRODUCTS[mode]:
        preset = scarce_stock if spec.stock is None else spec.stock
        products = side_products(seat, mode, side).filter(sku=tags.sku(seat, mode, side, spec.number))
        held = products.annotate(held=_held_units()).values_list("held", flat=True).first()
        if side == "twin":
            restored += products.update(stock_on_hand=preset, stock_received=preset + (held or 0))
        else:
            restored += products.filter(stock_on_hand__lt=preset).update(
                stock_received=F("stock_received") + (preset - F("stock_on_hand")), stock_on_hand=preset
            )
    return restored


def _catalog(seat: str, side: Side, rows: int) -> int:
    """n-plus-one: the side's category holds `rows` products (added in one INSERT .. SELECT generate_series)."""
    category = _category(seat, "n-plus-one", side)
    prefix = tags.sku_prefix(seat, "n-plus-one", side)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # a bulk load, not a request
        cursor.execute(
            """
            INSERT INTO shop_product (category_id, sku, name, slug, description, price, currency, is_active,
                                      stock_on_hand, stock_received, version, created_at, updated_at)
            SELECT %(category)s, %(prefix)s || lpad(n::text, 5, '0'), 'Workshop tea ' || n,
                   %(slug)s || '-' || n, 'Workshop product.', 9.50, 'EUR', true, 100, 100, 1, now(), now()
            FROM generate_series(1, %(rows)s) AS n
            ON CONFLICT DO NOTHING
            """,
            {"category": category.pk, "prefix": prefix, "slug": category.slug, "rows": rows},
        )
        added = cursor.rowcount
        cursor.execute("ANALYZE shop_product")
    return added


def catalog_grow(*, seat: str, side: Side, rows: int) -> int:
    """n-plus-one: grow one side's catalog to `rows` products (the run grows both at the same moment)."""
    return _catalog(seat, side, rows)


def _shrink_catalog(seat: str, side: Side) -> int:
    """n-plus-one reset: back to CATALOG_ROWS. A product someone ordered or carted is retired, never deleted."""
    grown = side_products(seat, "n-plus-one", side).exclude(sku__lte=tags.sku(seat, "n-plus-one", side, CATALOG_ROWS))
    used = Q(Exists(OrderLine.objects.filter(product=OuterRef("pk")))) | Q(
        Exists(CartItem.objects.filter(product=OuterRef("pk")))
    )
    grown.filter(used).update(is_active=False)
    removed, _ = grown.exclude(used).delete()
    return int(removed)


# --- Reset ---------------------------------------------------------------------------------------------------


def workshop_reset(*, seat: str, mode: str, scarce_stock: int = SCARCE_STOCK) -> ResetReport:
    """Remove the twin's orders, restore stock the conserved way; the fixed path's orders are real and stay."""
    mode_get(mode)
    tags.check_seat(seat)
    with transaction.atomic(durable=True):
        twin_orders = Order.objects.filter(customer__in=side_accounts(seat, mode, "twin"))
        payments_removed, _ = Payment.objects.filter(order__in=twin_orders).delete()
        # The seeded orders' mail rows protect their orders (on_delete=PROTECT): they go first, with them.
        OutboxMessage.objects.filter(order__in=twin_orders).delete()
        orders_removed = twin_orders.count()
        twin_orders.delete()  # its lines go with it (ON DELETE CASCADE)
        restored = sum(_restore_stock(seat, mode, side, scarce_stock) for side in SIDES)
        products_removed = sum(_shrink_catalog(seat, side) for side in SIDES) if mode == "n-plus-one" else 0
    report = ResetReport(mode, seat, orders_removed, int(payments_removed), restored, products_removed)
    logger.info("workshop reset", **report.as_dict())
    return report


# --- Prepare a run -------------------------------------------------------------------------------------------


def _access_token(user: User) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(minutes=30))  # a bounded run, plus its reveal; never reused after
    return str(token)


def _web_session(user: User) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def _placed_order(user: User, product: Product) -> int:
    """A real order, through the real use case (the payment follows as it would)."""
    placement = order_place(
        customer=user,
        lines=[LineRequest(product_id=product.pk, quantity=1)],
        shipping_address=ADDRESS,
        idempotency_key=f"workshop-seed-{uuid.uuid4().hex}",
    )
    return int(placement.order.pk)


def _pending_order(user: User, product: Product) -> int:
    """A real order waiting for its payment (no capture sent yet), so it stays editable during the run."""
    lines = [LineRequest(product_id=product.pk, quantity=1)]
    with transaction.atomic(durable=True):
        order = do_order_create(
            customer=user,
            lines=lines,
            shipping_address=ADDRESS,
            note="",
            idempotency_key=f"workshop-seed-{uuid.uuid4().hex}",
            fingerprint=order_request_fingerprint(lines=lines, shipping_address=ADDRESS, note=""),
        )
    return int(order.pk)


def workshop_prepare(*, seat: str, mode: str, preset: Preset, orders_per_editor: int = 12) -> dict[str, Any]:
    """Reset the mode, then seed both sides alike; returns the fixture the load generator reads."""
    workshop_reset(seat=seat, mode=mode, scarce_stock=preset.scarce_stock)
    fixture: dict[str, Any] = {
        "mode": mode,
        "seat": seat,
        "preset": preset.as_dict(),
        "prepared_at": time.time(),
        "sides": {},
    }
    for side in SIDES:
        accounts = _accounts(seat, mode, side, range(1, preset.users + 1))
        products = _products(seat, mode, side, preset.scarce_stock)
        if mode == "n-plus-one":
            _catalog(seat, side, CATALOG_ROWS)
        entry: dict[str, Any] = {
            "category": tags.category_slug(seat, mode, side),
            "products": [{"id": p.pk, "stock": p.stock_on_hand, "name": p.name} for p in products],
            "accounts": [],
        }
        for user in accounts:
            account: dict[str, Any] = {"username": user.username, "id": user.pk, "access": _access_token(user)}
            if mode == "authorization":
                account["orders"] = [_placed_order(user, products[0]) for _ in range(2)]
            if mode == "frontend-state":
                account["session"] = _web_session(user)
                account["orders"] = [_pending_order(user, products[0]) for _ in range(orders_per_editor)]
            entry["accounts"].append(account)
        if mode == "frontend-state":
            (browser_user,) = _accounts(seat, mode, side, [BROWSER_ACCOUNT])
            entry["browser"] = [
                {
                    "username": browser_user.username,
                    "session": _web_session(browser_user),
                    "orders": [_pending_order(browser_user, products[0])],
                }
            ]
        if mode == "authorization":
            curious = _accounts(seat, mode, side, range(CURIOUS_FROM, CURIOUS_FROM + preset.curious))
            entry["curious"] = [{"username": u.username, "id": u.pk, "access": _access_token(u)} for u in curious]
        fixture["sides"][side] = entry
    return fixture


# --- Runs and the exam ---------------------------------------------------------------------------------------


def run_create(
    *, mode: str, seat: str, kind: str = RunKind.RUN, started_by: User | None = None, params: dict[str, Any]
) -> Run:
    mode_get(mode)
    tags.check_seat(seat)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Room capacity: the count and the insert are serialised by one advisory lock (released at commit),
            # so two clicks at the same instant cannot both take the last place.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RUN_CAPACITY_LOCK])
            active = Run.objects.filter(kind=RunKind.RUN, status__in=[RunStatus.STARTING, RunStatus.RUNNING])
            if kind == RunKind.RUN and active.count() >= settings.WORKSHOP_MAX_ACTIVE_RUNS:
                raise Conflict(
                    f"{settings.WORKSHOP_MAX_ACTIVE_RUNS} runs are going on this machine already; "
                    "start yours when one has finished (about a minute)."
                )
            # Two runs of one mode for one seat would audit each other's rows: the partial unique index refuses.
            return Run.objects.create(mode=mode, seat=seat, kind=kind, started_by=started_by, params=params)
    except IntegrityError:
        raise Conflict(f"A {mode} run is already going for this seat; wait for it to finish.") from None


def run_mark(*, run_id: int, status: str, **fields: Any) -> None:
    Run.objects.filter(pk=run_id).update(status=status, heartbeat_at=timezone.now(), **fields)


def run_add_sample(*, run_id: int, sample: dict[str, Any]) -> None:
    """Append one audit sample (the live chart's next point) and beat the run's heart."""
    with transaction.atomic():
        run = Run.objects.select_for_update().only("samples").get(pk=run_id)
        run.samples = [*run.samples, sample]
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["samples", "heartbeat_at"])


def run_finish(*, run_id: int, scorecard: dict[str, Any] | None, verdict: str, exit_code: int) -> None:
    status = RunStatus.FINISHED if scorecard is not None else RunStatus.FAILED
    Run.objects.filter(pk=run_id).update(
        status=status,
        scorecard=scorecard,
        verdict=verdict[:200],
        exit_code=exit_code,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def runs_expire(*, silent_for_s: int = 60) -> int:
    """A run whose driver died (killed, machine rebooted) stops counting as active after a minute of silence."""
    cutoff = timezone.now() - timedelta(seconds=silent_for_s)
    stale = Run.objects.filter(status__in=[RunStatus.STARTING, RunStatus.RUNNING]).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    return stale.update(status=RunStatus.FAILED, verdict="the run stopped reporting", finished_at=timezone.now())


def exam_start(*, started_by: User | None, params: dict[str, Any], chooser: random.Random | None = None) -> Run:
    """Switch one twin on at random, unnamed: its traffic goes through /workshop/exam/twin/ until revealed."""
    mode = (chooser or random.SystemRandom()).choice(sorted(MODES))
    try:
        with transaction.atomic():
            return Run.objects.create(mode=mode, seat="exam", kind=RunKind.EXAM, started_by=started_by, params=params)
    except IntegrityError:
        raise Conflict("An exam is already running; reveal it first.") from None


def exam_reveal(*, run_id: int) -> Run:
    Run.objects.filter(pk=run_id, kind=RunKind.EXAM, revealed_at__isnull=True).update(revealed_at=timezone.now())
    return Run.objects.get(pk=run_id)


def _spawn_driver(run: Run) -> None:
    """Start `python -m workshop.run --run-id N` detached (a shell backgrounds it and exits, so no zombie).

    Not a Celery task: a run lasts a minute or more, and would hold one of the worker slots that charge payments.
    """
    out = RESULTS_DIR / run.mode / "runs" / f"{run.pk}-{run.seat}"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "run.log"
    Run.objects.filter(pk=run.pk).update(log_path=str(log))
    command = [sys.executable, "-m", "workshop.run", "--run-id", str(run.pk)]
    launcher = ["/bin/sh", "-c", 'exec "$@" >"$WORKSHOP_RUN_LOG" 2>&1 </dev/null &', "workshop-run", *command]
    env = {**os.environ, "WORKSHOP_RUN_LOG": str(log)}
    subprocess.run(launcher, cwd=ROOT, env=env, check=True, timeout=10)  # noqa: S603 - our own fixed command


def run_start(*, mode: str, seat: str, started_by: User | None, size: str | None = None) -> Run:
    """A bounded run in the background: the driver reports samples into the run row as it goes."""
    size = size or settings.WORKSHOP_RUN_SIZE
    params = {"size": size, "duration_s": preset_for(mode, size).duration_s}
    run = run_create(mode=mode, seat=seat, started_by=started_by, params=params)
    _spawn_driver(run)
    return run


def exam_begin(*, started_by: User | None, duration_s: int = 240) -> Run:
    run = exam_start(started_by=started_by, params={"duration_s": duration_s})
    _spawn_driver(run)
    return run


def workshop_try(*, seat: str, mode: str, side: Side) -> tuple[User, str]:
    """An account to try a side by hand in the browser, with something to act on; returns it and where to go."""
    (user,) = _accounts(seat, mode, side, [1])
    products = _products(seat, mode, side, SCARCE_STOCK)
    if mode == "n-plus-one":
        _catalog(seat, side, CATALOG_ROWS)
    prefix = MODES[mode].twin_prefix
    category = tags.category_slug(seat, mode, side)
    if mode == "races":
        if side == "fixed":
            cart_add_item(user=user, product_id=products[0].pk, quantity=1)
            return user, "/cart/"
        return user, f"{prefix}checkout/?category={category}"
    if mode == "frontend-state":
        _pending_order(user, products[0])
        return user, f"{prefix}orders/" if side == "twin" else "/orders/"
    if mode == "n-plus-one":
        return user, f"{prefix}products/?category={category}" if side == "twin" else f"/c/{category}/"
    return user, "/workshop/"
