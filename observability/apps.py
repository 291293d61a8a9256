from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Logs, metrics, error tracking and the invariant checker"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        # Connects the Celery signals that carry the request id into tasks (web and worker processes alike).
        from observability import task_context  # noqa: F401
        from observability.metrics import count_order_placed_on_commit

        # Orders are placed by the API and by the web checkout: one signal counts both, once, after commit.
        post_save.connect(count_order_placed_on_commit, sender="orders.Order", dispatch_uid="metrics-orders-placed")
