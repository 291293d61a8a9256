from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """Staff pages and the staff API. No models: it reads and writes the orders and shop apps' models,
    scoped by the object permissions (django-guardian) each staff member was granted."""

    name = "backoffice"
    verbose_name = "Back office"
