from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Logs, metrics, error tracking and the invariant checker"

    def ready(self) -> None:
        # Connects the Celery signals that carry the request id into tasks (web and worker processes alike).
        from observability import task_context  # noqa: F401
