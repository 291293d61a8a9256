"""The staff API, included under /api/v1/staff/ in the `api` namespace (names start with `staff-`)."""

from django.urls import path

from backoffice.apis import (
    StaffOrderDetailApi,
    StaffOrderFulfilApi,
    StaffOrderListApi,
    StaffProductDetailApi,
    StaffProductListApi,
)

urlpatterns = [
    path("orders/", StaffOrderListApi.as_view(), name="staff-orders"),
    path("orders/<int:order_id>/", StaffOrderDetailApi.as_view(), name="staff-order"),
    path("orders/<int:order_id>/fulfil/", StaffOrderFulfilApi.as_view(), name="staff-order-fulfil"),
    path("products/", StaffProductListApi.as_view(), name="staff-products"),
    path("products/<int:product_id>/", StaffProductDetailApi.as_view(), name="staff-product"),
]
