from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictInputSerializer
from orders.models import Order, OrderLine
from orders.services import LineRequest, ShippingAddress

# The largest id PostgreSQL's bigint holds: a larger "product_id" is documented (and refused) as invalid.
MAX_ID = 2**63 - 1


class ShippingAddressSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    # Not trimmed: the pattern is checked on exactly what was sent, as the OpenAPI document states it.
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$", max_length=2, trim_whitespace=False, error_messages={"invalid": "Use a 2-letter ISO code."}
    )


class ShippingAddressOutputSerializer(serializers.Serializer[dict[str, str]]):
    name = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField(allow_blank=True)
    city = serializers.CharField()
    postal_code = serializers.CharField()
    country = serializers.CharField()


class OrderLineInputSerializer(StrictInputSerializer):
    product_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=settings.ORDER_MAX_QUANTITY_PER_LINE)


class OrderCreateInputSerializer(StrictInputSerializer):
    # Mass assignment: only these fields are read; status, total, customer, version in the body are ignored.
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=settings.ORDER_MAX_LINES)  # type: ignore[call-arg]
    shipping_address = ShippingAddressSerializer()
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def line_requests(self) -> list[LineRequest]:
        return [LineRequest(**line) for line in self.validated_data["lines"]]

    def shipping(self) -> ShippingAddress:
        return ShippingAddress(**self.validated_data["shipping_address"])


class OrderUpdateInputSerializer(StrictInputSerializer):
    # Mass assignment: shipping address and note are the only editable fields.
    at_least_one_of = ("shipping_address", "note")
    shipping_address = ShippingAddressSerializer(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Mass assignment: a body with only other fields (status, total, version...) is refused, not turned into
        # an empty edit that would still bump the version.
        if not attrs:
            raise serializers.ValidationError("Send shipping_address and/or note: no other field can be changed.")
        return attrs

    def shipping(self) -> ShippingAddress | None:
        data = self.validated_data.get("shipping_address")
        return ShippingAddress(**data) if data is not None else None


class OrderLineOutputSerializer(serializers.ModelSerializer[OrderLine]):
    product_id = serializers.IntegerField()

    class Meta:
        model = OrderLine
        fields = ["product_id", "sku", "name", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class OrderOutputSerializer(serializers.ModelSerializer[Order]):
    lines = OrderLineOutputSerializer(many=True)
    shipping_address = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "lines",
            "total",
            "currency",
            "shipping_address",
            "note",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ShippingAddressOutputSerializer)
    def get_shipping_address(self, order: Order) -> dict[str, str]:
        return order.shipping_address
