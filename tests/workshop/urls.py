"""The shop's URLconf with the workshop mounted, as WORKSHOP_ENABLED=true mounts it (the suite runs without it)."""

from django.urls import include, path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as shop_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [path("workshop/", include("workshop.urls")), *shop_urlpatterns]
