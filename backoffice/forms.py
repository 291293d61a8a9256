from __future__ import annotations

from decimal import Decimal

from django import forms

from shop.models import Product
from shop.services import ProductChanges


class ProductEditForm(forms.Form):
    # Mass assignment: these fields are the allow-list; a posted stock_on_hand, sku or category is ignored.
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea({"rows": 4}))
    price = forms.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"))
    is_active = forms.BooleanField(required=False, label="Listed in the shop")
    # Lost update: the version this form was rendered from; a save from an older version is refused.
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    @classmethod
    def for_product(cls, product: Product) -> ProductEditForm:
        return cls(
            initial={
                "name": product.name,
                "description": product.description,
                "price": product.price,
                "is_active": product.is_active,
                "version": product.version,
            }
        )

    def changes(self) -> ProductChanges:
        data = self.cleaned_data
        return ProductChanges(
            name=data["name"], description=data["description"], price=data["price"], is_active=data["is_active"]
        )
