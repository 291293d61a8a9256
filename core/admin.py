"""The shop's admin site: Django's, with the bad input its views (and guardian's) turn into 500s refused first.

Installed as the default site (core.apps.ShopAdminConfig replaces django.contrib.admin in INSTALLED_APPS),
so every ModelAdmin - the shop's, guardian's object-permission pages, axes', simplejwt's - goes through it.
The hostile crawl (tests/fuzz/test_hostile_crawl.py) found each of these:
  - `?_to_field=` (empty) on a change or delete page: Django looks up a field named "" (FieldDoesNotExist);
  - a URL id that is not an id on guardian's pages (`/admin/shop/category/abc/permissions/`, `user-manage/x/`):
    get_object_or_404 passes it straight to the database (ValueError);
  - a 10,000-character username on the login form (AdminLoginForm, set as this site's login_form by
    accounts/admin.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse

# URL kwargs of admin views that name a row, and the model whose primary key they must be.
_ID_KWARGS: dict[str, Callable[[Any], type[Model] | None]] = {
    "object_pk": lambda model_admin: getattr(model_admin, "model", None),
    "user_id": lambda model_admin: get_user_model(),
    "group_id": lambda model_admin: Group,
}


def _check_ids(view: Callable[..., HttpResponse], kwargs: dict[str, Any]) -> None:
    model_admin = getattr(view, "__self__", None)
    for name, model_of in _ID_KWARGS.items():
        model = model_of(model_admin) if name in kwargs else None
        if model is None:
            continue
        try:
            model._meta.pk.to_python(kwargs[name])
        except ValidationError:
            raise Http404(f"No such {model._meta.verbose_name}.") from None


class ShopAdminSite(admin.AdminSite):
    site_header = "Hardened Shop administration"
    site_title = "Hardened Shop admin"

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        wrapped = super().admin_view(view, cacheable)

        @functools.wraps(wrapped)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Bad input: an empty _to_field would be looked up as a field called "" (a 500), not refused.
            if request.GET.get(TO_FIELD_VAR) == "" or request.POST.get(TO_FIELD_VAR) == "":
                raise SuspiciousOperation("An empty _to_field is not a field.")
            _check_ids(view, kwargs)
            return wrapped(request, *args, **kwargs)

        return guarded
