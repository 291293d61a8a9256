"""factory_boy factories for the shop's models."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from accounts.models import User
from orders.models import FulfilmentCentre
from shop.models import Category, Product

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")

    @factory.post_generation
    def password(user: User, create: bool, extracted: str | None, **kwargs: object) -> None:
        user.set_password(extracted or TEST_PASSWORD)
        if create:
            user.save(update_fields=["password"])


class CategoryFactory(DjangoModelFactory[Category]):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(DjangoModelFactory[Product]):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A product made for tests."
    price = Decimal("10.00")
    currency = "EUR"
    stock_on_hand = 100
    stock_received = factory.SelfAttribute("stock_on_hand")


class FulfilmentCentreFactory(DjangoModelFactory[FulfilmentCentre]):
    class Meta:
        model = FulfilmentCentre
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"centre-{n}")
    name = factory.Sequence(lambda n: f"Centre {n}")
    country_codes = "DE"
    is_default = False
