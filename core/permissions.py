"""The permission codenames the shop checks, in one module: staff are granted them per object (django-guardian).

Each is declared on its model's Meta (`Category` in shop/models.py, `FulfilmentCentre` in orders/models.py); the
rest of the code, the demo data and the tests name them only through these constants, so a typo is an
ImportError, not a grant that silently never matches.
"""

from __future__ import annotations

# Broken object-level authorization: a catalog manager edits only the products of the categories granted.
MANAGE_CATEGORY_PRODUCTS = "shop.manage_category_products"
# Broken object-level authorization: fulfilment staff see and ship only the orders of the centres granted.
FULFIL_CENTRE_ORDERS = "orders.fulfil_centre_orders"
