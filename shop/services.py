"""Catalog write use cases. Each public function owns one durable transaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from core.errors import ApplicationError, NotFound, PreconditionFailed
from core.permissions import MANAGE_CATEGORY_PRODUCTS
from shop.models import Product


class InvalidProductChange(ApplicationError):
    code = "invalid"
    status = 400
    title = "Invalid product change."


@dataclass(frozen=True)
class ProductChanges:
    """The fields a catalog manager may change. Stock, SKU, category and version are not among them:
    stock moves only through receiving and sales (conservation), and the version is the server's."""

    name: str | None = None
    description: str | None = None
    price: Decimal | None = None
    is_active: bool | None = None

    def as_update(self) -> dict[str, object]:
        return {field: value for field, value in self.__dict__.items() if value is not None}


def can_manage_product(*, user: User, product: Product) -> bool:
    """The object check: is `user` granted the product's category (directly, through a group, or superuser)?"""
    return user.is_active and user.is_staff and user.has_perm(MANAGE_CATEGORY_PRODUCTS, product.category)


def product_update(*, editor: User, product_id: int, expected_version: int, changes: ProductChanges) -> Product:
    """Edit a product, only from the version the editor read (optimistic locking), only in a granted category.

    Raises NotFound when the product is outside the editor's grants (as if it did not exist), and
    PreconditionFailed (412) when someone else saved the product since the editor read it.
    """
    if changes.price is not None and changes.price < 0:
        raise InvalidProductChange("A price cannot be negative.", extra={"errors": {"price": ["Must be >= 0."]}})
    fields = changes.as_update()
    with transaction.atomic(durable=True):
        product = Product.objects.select_related("category").select_for_update(of=("self",)).filter(pk=product_id)
        locked = product.first()
        # Broken object-level authorization: the grant is checked on the row we are about to write, inside the
        # transaction, so a grant revoked a moment ago (or a product moved to another category) is honoured.
        if locked is None or not can_manage_product(user=editor, product=locked):
            raise NotFound("No such product.")
        if locked.version != expected_version:
            # Lost update: two managers editing the same product; the second one must re-read first.
            raise PreconditionFailed(
                f"{locked.name} changed since you read it (you had version {expected_version}, "
                f"it is now version {locked.version}).",
                extra={"current_version": locked.version},
            )
        if fields:
            Product.objects.filter(pk=locked.pk).update(**fields, version=F("version") + 1, updated_at=timezone.now())
    return Product.objects.select_related("category").get(pk=product_id)
