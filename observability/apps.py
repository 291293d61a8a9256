import structlog
from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Logs, metrics, error tracking and the invariant checker"

    def ready(self) -> None:
        if settings.DEMO_MODE:
            # Demo on the production path is allowed by one switch only, and every process start says so.
            allowed = ["the payment simulator", "the demo accounts (published password)"]
            if settings.DEMO_MAIL_ALLOWANCE:  # mail/configuration.py: the demo stack's own sink, in clear text
                allowed.append(settings.DEMO_MAIL_ALLOWANCE)
            structlog.get_logger("config.demo").warning(
                "DEMO_MODE=true: the demo parts are allowed. Never run a real shop like this.", allowed=allowed
            )
        # Connects the Celery signals: the request id carried into tasks (web and worker processes alike), and
        # the worker's own metrics port (off unless CELERY_METRICS_PORT is set).
        from core.metrics import count_order_placed_on_commit
        from observability import task_context, worker_metrics  # noqa: F401

        # Orders are placed by the API and by the web checkout: one signal counts both, once, after commit.
        post_save.connect(count_order_placed_on_commit, sender="orders.Order", dispatch_uid="metrics-orders-placed")
