from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Imported here, not at the top: models can be imported only once the app registry is ready.
        from accounts.mail_links import password_reset_context, verify_email_context
        from mail.messages import register_delivery_context
        from mail.models import MailEvent

        # Account mail links carry tokens, made at delivery time by the app that owns them (accounts/mail_links.py).
        register_delivery_context(MailEvent.PASSWORD_RESET, password_reset_context)
        register_delivery_context(MailEvent.VERIFY_EMAIL, verify_email_context)
