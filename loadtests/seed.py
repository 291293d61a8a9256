"""Seed a database for a load run and write the fixture the locust users read (accounts, product ids).

    DATABASE_URL=postgres://shop@127.0.0.1:6432/shop_load python -m loadtests.seed --out fixture.json

Idempotent and quick: the demo catalog (seed_demo), load accounts created in bulk with one password hash
(argon2 once, not once per user), regular products topped up so buyers do not just meet "sold out", and a
fresh set of rush products with very little stock for this run. Stock is only ever added the conserved way
(stock_received and stock_on_hand together), so the audit's conservation check holds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BUYER_PREFIX = "load-buyer-"
CURIOUS_PREFIX = "load-curious-"
RUSH_SKU_PREFIX = "RUSH-"


def seed(
    *, buyers: int, curious: int, rush: int, rush_stock: int, volume_products: int, top_up: int
) -> dict[str, object]:
    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import F, Max

    from accounts.models import User
    from backoffice.management.commands.seed_demo import DEMO_PASSWORD
    from orders.models import Order
    from shop.models import Category, Product

    call_command("seed_demo", products=volume_products, verbosity=0)
    password_hash = make_password(DEMO_PASSWORD)  # one argon2 hash shared by every load account
    wanted = [f"{BUYER_PREFIX}{n:04d}" for n in range(buyers)] + [f"{CURIOUS_PREFIX}{n:04d}" for n in range(curious)]
    User.objects.bulk_create(
        [User(username=name, email=f"{name}@load.example", password=password_hash) for name in wanted],
        batch_size=1000,
        ignore_conflicts=True,
    )
    with transaction.atomic():
        # Regular products: top up to `top_up` units on hand (conserved: received grows by the same amount).
        regular = Product.objects.filter(is_active=True).exclude(sku__startswith=RUSH_SKU_PREFIX)
        regular.filter(stock_on_hand__lt=top_up).update(
            stock_received=F("stock_received") + (top_up - F("stock_on_hand")), stock_on_hand=top_up
        )
        # Rush products: last run's are retired (kept, for their orders' sake), this run gets new ones.
        Product.objects.filter(sku__startswith=RUSH_SKU_PREFIX).update(is_active=False)
        gifts = Category.objects.get(slug="gifts")
        stamp = time.strftime("%Y%m%d%H%M%S")
        rush_products = [
            Product.objects.create(
                category=gifts,
                sku=f"{RUSH_SKU_PREFIX}{stamp}-{n}",
                name=f"Limited Drop {stamp[-6:]} #{n + 1}",
                slug=f"limited-drop-{stamp}-{n + 1}",
                description="A handful of units, and the whole load test wants one.",
                price="19.00",
                stock_on_hand=rush_stock,
                stock_received=rush_stock,
            )
            for n in range(rush)
        ]
    # Returning customers: most people in a crowd are already signed in. Every load account gets a refresh token
    # (the app resumes with it: no password hash) and a web session (the browser's cookie). The suite signs in
    # with a password only for a share of users (LOAD_PASSWORD_SIGNIN_SHARE): argon2 costs ~0.2 s of CPU each.
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from rest_framework_simplejwt.tokens import RefreshToken

    app_sessions: dict[str, str] = {}
    web_sessions: dict[str, str] = {}
    for user in User.objects.filter(username__in=wanted).order_by("username"):
        app_sessions[user.username] = str(RefreshToken.for_user(user))
        if user.username.startswith(BUYER_PREFIX):
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            web_sessions[user.username] = str(session.session_key)
    demo = list(
        Product.objects.filter(is_active=True)
        .exclude(sku__startswith=RUSH_SKU_PREFIX)
        .exclude(sku__startswith="GEN-")
        .values_list("id", "slug")
    )
    generated = list(Product.objects.filter(is_active=True, sku__startswith="GEN-").values_list("id", "slug")[:200])
    buyable = demo + generated
    return {
        "password": DEMO_PASSWORD,
        "buyers": wanted[:buyers],
        "curious": wanted[buyers:],
        "app_sessions": app_sessions,
        "web_sessions": web_sessions,
        "product_ids": [pid for pid, _ in buyable],
        "product_slugs": {str(pid): slug for pid, slug in buyable},
        "rush_product_ids": [product.pk for product in rush_products],
        "category_slugs": list(Category.objects.values_list("slug", flat=True)),
        "max_order_id": Order.objects.aggregate(top=Max("id"))["top"] or 0,
        "seeded_at": time.time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--curious", type=int, default=30)
    parser.add_argument("--rush", type=int, default=3, help="how many rush products")
    parser.add_argument("--rush-stock", type=int, default=5)
    parser.add_argument("--volume-products", type=int, default=500, help="catalog size for paginated lists")
    parser.add_argument("--top-up", type=int, default=2000, help="units on hand per regular product")
    args = parser.parse_args()
    fixture = seed(
        buyers=args.buyers,
        curious=args.curious,
        rush=args.rush,
        rush_stock=args.rush_stock,
        volume_products=args.volume_products,
        top_up=args.top_up,
    )
    Path(args.out).write_text(json.dumps(fixture, indent=1))
    print(
        f"seeded: {len(fixture['product_ids'])} buyable products, rush {fixture['rush_product_ids']}, "  # type: ignore[arg-type]
        f"{len(fixture['buyers'])} buyers, {len(fixture['curious'])} curious"  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
