"""The mail settings' refusals, read by config/settings.py at start-up (plain Python: settings import it early).

Every refusal names its variable. Some hold in every mode (they would make delivery unsafe anywhere), the rest
only in production, where mail leaves the machine and its configuration has no safe default.

The demo stack (DEMO_MODE=true: the compose `demo` profile, the k8s `demo` overlay) runs production mode with a
mail sink of its own in the next container, reached in clear text. DEMO_MODE is the one switch that allows that,
never with a login (a password never travels in clear text, demo or not), and every start names the host in
its warning (demo_mail_allowance). A real shop (DEMO_MODE=false) keeps the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

SMTP_BACKENDS = frozenset({"mail.transport.SMTPBackend", "django.core.mail.backends.smtp.EmailBackend"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class MailSettings:
    backend_override: str  # EMAIL_BACKEND from the environment ("" when unset)
    host: str
    port: int
    user: str
    password: str
    use_tls: bool
    use_ssl: bool
    from_address: str
    base_url: str
    connect_timeout_s: float
    send_timeout_s: float
    claim_lease_s: int
    task_soft_time_limit_s: int
    task_time_limit_s: int


def _clear_text(config: MailSettings) -> bool:
    return not (config.use_tls or config.use_ssl)


def demo_mail_allowance(config: MailSettings, *, production: bool, demo_mode: bool) -> str | None:
    """What DEMO_MODE lets production do with mail that it refuses otherwise, for the start-up warning (or None)."""
    if production and demo_mode and config.host and _clear_text(config) and config.host not in LOOPBACK_HOSTS:
        return (
            f"plain-text SMTP to EMAIL_HOST={config.host!r} port {config.port} "
            "(for the demo stack's own mail sink, never a real relay)"
        )
    return None


def mail_refusals(config: MailSettings, *, production: bool, demo_mode: bool = False) -> list[str]:
    refusals: list[str] = []
    # Mail that never leaves the process: console, locmem, file and dummy backends lose every message.
    if config.backend_override and config.backend_override not in SMTP_BACKENDS:
        refusals.append(
            f"EMAIL_BACKEND={config.backend_override!r} is refused: the shop sends mail over SMTP in every mode "
            "(under `make run`, to the local sink); unset EMAIL_BACKEND"
        )
    if config.use_tls and config.use_ssl:
        refusals.append("EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose one (STARTTLS on 587, or TLS on 465)")
    # Killed task: connecting plus one send must end before the soft time limit, so a slow server defers the
    # message cleanly instead of the task being killed mid-send.
    if config.connect_timeout_s + config.send_timeout_s >= config.task_soft_time_limit_s:
        refusals.append(
            f"EMAIL_CONNECT_TIMEOUT_S ({config.connect_timeout_s}) + EMAIL_SEND_TIMEOUT_S ({config.send_timeout_s}) "
            f"must be below CELERY_TASK_SOFT_TIME_LIMIT_S ({config.task_soft_time_limit_s})"
        )
    # Sent twice: a claim must outlive the task that holds it (the hard time limit kills the task first), or a
    # second worker could take the row while the first is still sending.
    if config.claim_lease_s <= config.task_time_limit_s:
        refusals.append(
            f"MAIL_CLAIM_LEASE_S ({config.claim_lease_s}) must be longer than CELERY_TASK_TIME_LIMIT_S "
            f"({config.task_time_limit_s})"
        )
    if not production:
        return refusals
    if not config.host:
        refusals.append("DJANGO_ENV=production needs EMAIL_HOST: your SMTP relay (with EMAIL_PORT, EMAIL_USE_TLS)")
    elif _clear_text(config) and config.host not in LOOPBACK_HOSTS and not demo_mode:
        # Clear text across a network: anyone on the path reads every reset link and receipt.
        refusals.append(
            f"DJANGO_ENV=production refuses plain-text SMTP to EMAIL_HOST={config.host!r}: set EMAIL_USE_TLS=true "
            "(STARTTLS) or EMAIL_USE_SSL=true (only a relay on the same machine may be reached in clear text; "
            "DEMO_MODE=true allows the demo stack's own mail sink)"
        )
    if bool(config.user) != bool(config.password):
        refusals.append("EMAIL_HOST_USER and EMAIL_HOST_PASSWORD go together: set both, or neither")
    if config.password and _clear_text(config):
        # Demo or not: the relay's password never crosses a network in clear text.
        refusals.append("DJANGO_ENV=production refuses EMAIL_HOST_PASSWORD without EMAIL_USE_TLS or EMAIL_USE_SSL")
    _, address = parseaddr(config.from_address)
    if "@" not in address or address.endswith("@localhost"):
        refusals.append(
            f"DJANGO_ENV=production needs EMAIL_FROM: the shop's sender address, e.g. 'Shop <orders@shop.example>' "
            f"(got {config.from_address!r})"
        )
    if not config.base_url.startswith("https://"):
        refusals.append(
            f"DJANGO_ENV=production needs SHOP_BASE_URL: the https address links in mail point to "
            f"(got {config.base_url!r})"
        )
    return refusals
