"""Demo data. Idempotent: running it again changes nothing. Options generate large volumes quickly.

python manage.py seed_demo                         # the demo shop: categories, products, customers
python manage.py seed_demo --products 10000 --customers 1000 --orders 100000   # volume for benchmarks

Demo accounts (password demo-password-123): customers alice, bob, charlie; superuser admin; staff
fulfil_berlin (group "Fulfilment Berlin", granted the Berlin centre: sees and ships only its orders) and
catalog_tea (granted the Tea category: edits only its products). See docs/patterns/04-authorization.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max
from guardian.shortcuts import assign_perm

from accounts.models import User
from core.permissions import FULFIL_CENTRE_ORDERS, MANAGE_CATEGORY_PRODUCTS
from orders.models import FulfilmentCentre, Order
from shop.models import Category, Product

DEMO_PASSWORD = "demo-password-123"

CATALOG: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("tea", "Tea"): [
        ("Sencha", "12.50", "A grassy Japanese green tea, steamed within hours of picking."),
        (
            "Darjeeling First Flush",
            "18.00",
            "Light, floral and bright: the spring harvest from the Himalayas.",
        ),
        ("Earl Grey", "9.90", "Black tea scented with bergamot oil. A classic for a reason."),
        ("Genmaicha", "8.40", "Green tea with toasted rice. Nutty, comforting, low in caffeine."),
        ("Assam Breakfast", "7.80", "Malty and strong; stands up to milk."),
        ("Jasmine Pearls", "21.00", "Hand-rolled green tea pearls layered with jasmine blossoms."),
    ],
    ("coffee", "Coffee"): [
        ("Ethiopia Yirgacheffe", "14.00", "Washed, light roast. Lemon, bergamot and black tea."),
        ("Colombia Huila", "12.00", "Medium roast with caramel sweetness and red apple."),
        ("Espresso Blend", "11.50", "Chocolate and hazelnut; built for milk drinks."),
        ("Decaf Mexico", "10.50", "Swiss-water decaffeinated. All of the taste, none of the jitters."),
        ("Kenya AA", "16.50", "Blackcurrant, grapefruit and a syrupy body."),
    ],
    ("teaware", "Teaware"): [
        ("Glass Teapot 600 ml", "29.00", "Borosilicate glass with a removable steel infuser."),
        ("Cast Iron Kettle", "64.00", "Keeps heat for an hour. Enamel-lined, rust-free."),
        ("Matcha Whisk", "15.00", "Bamboo chasen with 100 prongs."),
        ("Travel Tumbler", "24.00", "Double-walled steel with a tea strainer in the lid."),
    ],
    ("gifts", "Gifts"): [
        ("Tasting Set: Green Teas", "32.00", "Five green teas in 25 g tins, with brewing notes."),
        ("Coffee Lover's Box", "45.00", "Three single origins and a hand grinder."),
        ("Gift Card 25", "25.00", "Spend it on anything in the shop."),
        ("Last Units Special", "5.00", "Only a few left: the product the rush in the load test fights over."),
    ],
}

FULFILMENT_CENTRES = [
    ("berlin", "Berlin", "DE AT CH PL CZ", True),
    ("rotterdam", "Rotterdam", "NL BE LU FR GB IE", False),
    ("milan", "Milan", "IT ES PT GR", False),
]

DEMO_CUSTOMERS = ["alice", "bob", "charlie"]

# Generated product names ("Smoky Yunnan Oolong 1234"): varied enough that search has something to find.
GENERATED_ADJECTIVES = ["Smoky", "Bright", "Mellow", "Floral", "Roasted", "Spiced", "Velvet", "Wild", "Golden", "Misty"]
GENERATED_ORIGINS = ["Assam", "Yunnan", "Kenya", "Ceylon", "Uji", "Nilgiri", "Huila", "Sidamo", "Java", "Fujian"]
GENERATED_KINDS = [
    "Black Tea",
    "Green Tea",
    "Oolong",
    "White Tea",
    "Espresso",
    "Filter Coffee",
    "Cold Brew",
    "Teapot",
    "Mug",
    "Gift Box",
]

# One statement: pick a customer, centre, status and 1-3 distinct products per order (random() is evaluated
# once per generated order), insert the orders with their final number and total, their lines, and book the
# sold units into stock_received. Foreign keys are DEFERRABLE INITIALLY DEFERRED, checked at commit.
VOLUME_ORDERS_SQL = """
WITH generated AS MATERIALIZED (
    SELECT g,
           nextval(pg_get_serial_sequence('orders_order', 'id')) AS id,
           CASE WHEN random() < %(heavy_share)s THEN %(heavy_customer)s::bigint
                ELSE (%(customers)s::bigint[])[1 + floor(random() * cardinality(%(customers)s::bigint[]))::int]
           END AS customer_id,
           (%(centres)s::bigint[])[1 + floor(random() * cardinality(%(centres)s::bigint[]))::int] AS centre_id,
           -- History is shipped; only the newest orders wait in the fulfilment queue, as in a shop that works.
           CASE WHEN g > %(count)s - 200 THEN 'paid' ELSE 'fulfilled' END AS status,
           1 + floor(random() * 3)::int AS line_count,
           floor(random() * cardinality(%(products)s::bigint[]))::int AS first_product,
           floor(random() * 1000000)::bigint AS dice,
           now() - make_interval(mins => %(count)s - g) AS created_at
    FROM generate_series(1, %(count)s) AS g
),
lines AS MATERIALIZED (
    SELECT o.id AS order_id, p.id AS product_id, p.sku, p.name, p.price AS unit_price,
           1 + mod(o.dice / (k + 1), 3)::int AS quantity
    FROM generated AS o
    CROSS JOIN LATERAL generate_series(0, o.line_count - 1) AS k
    JOIN shop_product AS p
      ON p.id = (%(products)s::bigint[])[1 + mod(o.first_product + k, cardinality(%(products)s::bigint[]))]
),
new_orders AS (
    INSERT INTO orders_order (id, number, customer_id, fulfilment_centre_id, status, version, currency, total,
                              idempotency_key, shipping_name, shipping_line1, shipping_line2, shipping_city,
                              shipping_postal_code, shipping_country, note, created_at, updated_at, paid_at)
    SELECT o.id, 'SO-' || CASE WHEN o.id < 1000000 THEN lpad(o.id::text, 6, '0') ELSE o.id::text END,
           o.customer_id, o.centre_id, o.status, 1, 'EUR', totals.total,
           'seed-' || o.id, 'Volume Buyer', '1 Load St', '', 'Berlin', '10115', 'DE', '',
           o.created_at, o.created_at, o.created_at + interval '1 minute'
    FROM generated AS o
    JOIN (SELECT order_id, sum(unit_price * quantity) AS total FROM lines GROUP BY order_id) AS totals
      ON totals.order_id = o.id
),
new_lines AS (
    INSERT INTO orders_orderline (order_id, product_id, sku, name, unit_price, quantity, line_total)
    SELECT order_id, product_id, sku, name, unit_price, quantity, unit_price * quantity FROM lines
),
-- A paid or shipped order has a captured payment behind it, or the invariant checker would rightly object.
new_payments AS (
    INSERT INTO payments_payment (order_id, idempotency_key, status, amount, currency, provider_reference,
                                  attempts, last_error, created_at, updated_at)
    SELECT o.id, 'shop-order-' || o.id, 'captured', totals.total, 'EUR', 'ch_seed_' || o.id, 1, '',
           o.created_at, o.created_at + interval '1 minute'
    FROM generated AS o
    JOIN (SELECT order_id, sum(unit_price * quantity) AS total FROM lines GROUP BY order_id) AS totals
      ON totals.order_id = o.id
),
-- Mail never sent: every state a generated order reached was mailed to its customer back then, so each has its
-- sent outbox row (mail/services.py writes the same rows live); without them check_invariants' mail_sent_once
-- would report every generated order placed after the shop's first real one.
new_mail AS (
    INSERT INTO mail_outboxmessage (event, event_key, message_uuid, order_id, user_id, recipient, context, status,
                                    attempts, next_attempt_at, last_error, created_at, updated_at, sent_at)
    SELECT sent.event, 'order:' || o.id, gen_random_uuid(), o.id, o.customer_id, u.email, '{}'::jsonb, 'sent',
           1, sent.at, '', sent.at, sent.at, sent.at
    FROM generated AS o
    JOIN accounts_user AS u ON u.id = o.customer_id AND u.email <> ''
    CROSS JOIN LATERAL (VALUES
        ('order_placed', o.created_at, true),
        ('order_paid', o.created_at + interval '1 minute', true),
        ('order_fulfilled', o.created_at + interval '2 minutes', o.status = 'fulfilled')
    ) AS sent (event, at, happened)
    WHERE sent.happened
)
UPDATE shop_product AS p
SET stock_received = p.stock_received + sold.quantity
FROM (SELECT product_id, sum(quantity) AS quantity FROM lines GROUP BY product_id) AS sold
WHERE p.id = sold.product_id
"""


def _vacuum_analyze(*tables: str) -> None:
    """After a bulk load: fresh planner statistics (or the planner still sees empty tables) and a visibility map
    (index-only scans), as autovacuum would provide a while later. VACUUM cannot run inside a transaction."""
    # Called inside a transaction (a test), ANALYZE alone still gives the planner the new row counts.
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{command} {table}")


def _sku(category_slug: str, number: int) -> str:
    return f"{category_slug[:3].upper()}-{number:04d}"


class Command(BaseCommand):
    help = "Create demo categories, products, fulfilment centres and customers (idempotent); optionally volume."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=0, help="make sure at least N products exist")
        parser.add_argument("--customers", type=int, default=0, help="make sure at least N customers exist")
        parser.add_argument("--orders", type=int, default=0, help="make sure at least N orders exist")
        parser.add_argument("--stock", type=int, default=100, help="stock for generated products")
        parser.add_argument(
            "--heavy-customer", help="give this user a share of the generated orders (a long order history)"
        )
        parser.add_argument("--heavy-share", type=float, default=0.3, help="share of orders for --heavy-customer")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        # Demo data on the production path: these accounts' password is printed in the README, so a production
        # stack gets them only through the one demo switch (config/settings.py, DEMO_MODE).
        if settings.PRODUCTION and not settings.DEMO_MODE:
            raise CommandError(
                "seed_demo refuses to run with DJANGO_ENV=production: it creates accounts with a published "
                "password. Only a demo stack may have them: set DEMO_MODE=true (never for a real shop)."
            )
        self.seed = options["seed"]
        with transaction.atomic():
            self._demo_catalog()
            self._demo_customers()
            self._demo_staff()
        if options["products"]:
            self._volume_products(options["products"], options["stock"])
        if options["customers"]:
            self._volume_customers(options["customers"])
        if options["orders"]:
            self._volume_orders(options["orders"], options["heavy_customer"], options["heavy_share"])
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_demo: {Category.objects.count()} categories, {Product.objects.count()} products, "
                f"{User.objects.count()} users, {Order.objects.count()} orders"
            )
        )

    def _demo_catalog(self) -> None:
        for code, name, countries, is_default in FULFILMENT_CENTRES:
            FulfilmentCentre.objects.get_or_create(
                code=code, defaults={"name": name, "country_codes": countries, "is_default": is_default}
            )
        number = 0
        for (slug, name), products in CATALOG.items():
            category, _ = Category.objects.get_or_create(slug=slug, defaults={"name": name})
            for product_name, price, description in products:
                number += 1
                stock = 3 if product_name == "Last Units Special" else 50 + (number * 7) % 150
                Product.objects.get_or_create(
                    sku=_sku(slug, number),
                    defaults={
                        "category": category,
                        "name": product_name,
                        "slug": product_name.lower().replace(" ", "-").replace("'", "").replace(":", ""),
                        "description": description,
                        "price": Decimal(price),
                        "currency": "EUR",
                        "stock_on_hand": stock,
                        "stock_received": stock,
                    },
                )

    def _demo_customers(self) -> None:
        password = make_password(DEMO_PASSWORD)
        for username in DEMO_CUSTOMERS:
            email = f"{username}@example.com"
            # Demo accounts have confirmed addresses, so "Forgot your password?" works for them out of the box.
            User.objects.get_or_create(
                username=username, defaults={"email": email, "verified_email": email, "password": password}
            )
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)

    def _demo_staff(self) -> None:
        """Two staff roles with object grants (django-guardian), managed in the admin afterwards."""
        password = make_password(DEMO_PASSWORD)
        packer, _ = User.objects.get_or_create(
            username="fulfil_berlin",
            defaults={"email": "fulfil_berlin@example.com", "password": password, "is_staff": True},
        )
        berlin_team, _ = Group.objects.get_or_create(name="Fulfilment Berlin")
        # Grant to the group, on one centre: everyone in the group ships Berlin's orders, and only those.
        assign_perm(FULFIL_CENTRE_ORDERS, berlin_team, FulfilmentCentre.objects.get(code="berlin"))
        packer.groups.add(berlin_team)
        tea_manager, _ = User.objects.get_or_create(
            username="catalog_tea",
            defaults={"email": "catalog_tea@example.com", "password": password, "is_staff": True},
        )
        assign_perm(MANAGE_CATEGORY_PRODUCTS, tea_manager, Category.objects.get(slug="tea"))

    def _volume_products(self, target: int, stock: int) -> None:
        """Generated products in one INSERT .. SELECT generate_series: 10,000 rows in well under a second."""
        missing = target - Product.objects.count()
        if missing <= 0:
            return
        start = (Product.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")  # bulk load: the role's 5 s request cap does not apply
            cursor.execute(
                """
                INSERT INTO shop_product (category_id, sku, name, slug, description, price, currency, is_active,
                                          stock_on_hand, stock_received, version, created_at, updated_at)
                SELECT (%(categories)s::bigint[])[1 + mod(n, cardinality(%(categories)s::bigint[]))],
                       'GEN-' || lpad(n::text, 7, '0'),
                       (%(adjectives)s::text[])[1 + mod(n / 100, 10)]
                         || ' ' || (%(origins)s::text[])[1 + mod(n / 10, 10)]
                         || ' ' || (%(kinds)s::text[])[1 + mod(n, 10)] || ' ' || n,
                       'generated-product-' || n,
                       'Generated for volume tests.',
                       round((1 + random() * 99)::numeric, 2),
                       'EUR', true, %(stock)s, %(stock)s, 1, now(), now()
                FROM generate_series(%(start)s, %(stop)s) AS n
                ON CONFLICT DO NOTHING
                """,
                {
                    "categories": list(Category.objects.order_by("id").values_list("id", flat=True)),
                    "adjectives": GENERATED_ADJECTIVES,
                    "origins": GENERATED_ORIGINS,
                    "kinds": GENERATED_KINDS,
                    "stock": stock,
                    "start": start,
                    "stop": start + missing - 1,
                },
            )
        _vacuum_analyze("shop_product")
        self.stdout.write(f"created {missing} products")

    def _volume_customers(self, target: int) -> None:
        missing = target - User.objects.filter(username__startswith="customer").count()
        if missing <= 0:
            return
        password = make_password(DEMO_PASSWORD)
        start = User.objects.count()
        User.objects.bulk_create(
            [
                User(
                    username=f"customer{start + n}",
                    email=f"customer{start + n}@example.com",
                    password=password,
                )
                for n in range(missing)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        self.stdout.write(f"created {missing} customers")

    def _volume_orders(self, target: int, heavy_customer: str | None, heavy_share: float) -> None:
        """Historic, settled orders with 1-3 lines each, generated in one set-based statement (100,000 orders in
        seconds). Stock bookkeeping stays conserved: each unit recorded as sold is added to stock_received in the
        same statement, so received = on hand + sold still holds."""
        missing = target - Order.objects.count()
        if missing <= 0:
            return
        customers = list(User.objects.filter(is_staff=False).order_by("id").values_list("id", flat=True))
        heavy_id = User.objects.filter(username=heavy_customer).values_list("id", flat=True).first()
        if heavy_customer and heavy_id is None:
            raise CommandError(f"--heavy-customer {heavy_customer}: no such user")
        products = list(Product.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))
        centres = list(FulfilmentCentre.objects.order_by("id").values_list("id", flat=True))
        if len(products) < 3 or not customers or not centres:
            raise CommandError("--orders needs at least 3 products, 1 customer and 1 fulfilment centre")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")  # bulk load: the role's 5 s request cap does not apply
            cursor.execute("SELECT setseed(%s)", [(self.seed % 1000) / 1000])
            cursor.execute(
                VOLUME_ORDERS_SQL,
                {
                    "count": missing,
                    "customers": customers,
                    "heavy_customer": heavy_id or customers[0],
                    "heavy_share": heavy_share if heavy_id else 0.0,
                    "products": products,
                    "centres": centres,
                },
            )
        _vacuum_analyze("orders_order", "orders_orderline", "payments_payment", "mail_outboxmessage", "shop_product")
        self.stdout.write(f"created {missing} orders")
