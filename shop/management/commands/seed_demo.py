"""Demo data. Idempotent: running it again changes nothing. Options generate large volumes quickly.

python manage.py seed_demo                         # the demo shop: categories, products, customers
python manage.py seed_demo --products 10000 --customers 1000 --orders 100000   # volume for benchmarks
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Max

from accounts.models import User
from orders.models import FulfilmentCentre, Order, OrderLine, OrderStatus
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


def _sku(category_slug: str, number: int) -> str:
    return f"{category_slug[:3].upper()}-{number:04d}"


class Command(BaseCommand):
    help = "Create demo categories, products, fulfilment centres and customers (idempotent); optionally volume."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=0, help="make sure at least N products exist")
        parser.add_argument("--customers", type=int, default=0, help="make sure at least N customers exist")
        parser.add_argument("--orders", type=int, default=0, help="make sure at least N orders exist")
        parser.add_argument("--stock", type=int, default=100, help="stock for generated products")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        random.seed(options["seed"])
        with transaction.atomic():
            self._demo_catalog()
            self._demo_customers()
        if options["products"]:
            self._volume_products(options["products"], options["stock"])
        if options["customers"]:
            self._volume_customers(options["customers"])
        if options["orders"]:
            self._volume_orders(options["orders"])
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
            User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com", "password": password}
            )
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)

    def _volume_products(self, target: int, stock: int) -> None:
        existing = Product.objects.count()
        missing = target - existing
        if missing <= 0:
            return
        categories = list(Category.objects.all())
        start = (Product.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        batch: list[Product] = []
        for offset in range(missing):
            number = start + offset
            batch.append(
                Product(
                    category=categories[number % len(categories)],
                    sku=f"GEN-{number:07d}",
                    name=f"Generated product {number}",
                    slug=f"generated-product-{number}",
                    description="Generated for volume tests.",
                    price=Decimal(random.randint(100, 10000)) / 100,
                    currency="EUR",
                    stock_on_hand=stock,
                    stock_received=stock,
                )
            )
        Product.objects.bulk_create(batch, batch_size=2000)
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

    def _volume_orders(self, target: int) -> None:
        """Historic, settled orders for volume tests. Stock bookkeeping stays conserved: each sold unit is
        added to stock_received as it is recorded sold, so received = on hand + sold still holds."""
        missing = target - Order.objects.count()
        if missing <= 0:
            return
        customers = list(User.objects.filter(is_staff=False).values_list("id", flat=True))
        products = list(Product.objects.values_list("id", "sku", "name", "price")[:5000])
        centres = list(FulfilmentCentre.objects.values_list("id", flat=True))
        sold: dict[int, int] = {}
        batch_size = 2000
        created = 0
        while created < missing:
            size = min(batch_size, missing - created)
            with transaction.atomic():
                orders = []
                order_lines: list[list[OrderLine]] = []
                for _ in range(size):
                    picked = random.sample(products, k=random.randint(1, 3))
                    lines = [
                        OrderLine(
                            product_id=pid,
                            sku=sku,
                            name=name,
                            unit_price=price,
                            quantity=(qty := random.randint(1, 3)),
                            line_total=price * qty,
                        )
                        for pid, sku, name, price in picked
                    ]
                    for line in lines:
                        sold[line.product_id] = sold.get(line.product_id, 0) + line.quantity
                    orders.append(
                        Order(
                            customer_id=random.choice(customers),
                            fulfilment_centre_id=random.choice(centres),
                            status=random.choice([OrderStatus.PAID, OrderStatus.FULFILLED]),
                            currency="EUR",
                            total=sum((line.line_total for line in lines), Decimal("0.00")),
                            idempotency_key=f"seed-{random.getrandbits(64):016x}",
                            shipping_name="Volume Buyer",
                            shipping_line1="1 Load St",
                            shipping_city="Berlin",
                            shipping_postal_code="10115",
                            shipping_country="DE",
                        )
                    )
                    order_lines.append(lines)
                Order.objects.bulk_create(orders)
                for order, lines in zip(orders, order_lines, strict=True):
                    order.number = f"SO-{order.pk:06d}"
                    for line in lines:
                        line.order = order
                Order.objects.bulk_update(orders, ["number"], batch_size=batch_size)
                OrderLine.objects.bulk_create([line for lines in order_lines for line in lines], batch_size=5000)
            created += size
        from django.db.models import F

        with transaction.atomic():
            for product_id, quantity in sold.items():
                Product.objects.filter(pk=product_id).update(stock_received=F("stock_received") + quantity)
        self.stdout.write(f"created {missing} orders")
