from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which exist only once the registry is
        # ready. Payments depends on orders, never the reverse: orders calls its port, payments plugs in.
        from orders.ports import plug_payments
        from payments.order_port import PaymentsForOrders

        plug_payments(PaymentsForOrders())
