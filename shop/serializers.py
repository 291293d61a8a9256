from __future__ import annotations

from rest_framework import serializers

from shop.models import Category, Product


class CategoryOutputSerializer(serializers.ModelSerializer[Category]):
    class Meta:
        model = Category
        fields = ["id", "slug", "name"]


class ProductCategorySerializer(serializers.Serializer[Category]):
    slug = serializers.CharField()
    name = serializers.CharField()


class ProductOutputSerializer(serializers.ModelSerializer[Product]):
    stock_available = serializers.IntegerField(source="stock_on_hand")
    category = ProductCategorySerializer()

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "stock_available",
            "category",
        ]
        read_only_fields = fields
