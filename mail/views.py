"""The development mail page: what the local sink received (mail/sink.py). 404 in production, and for anyone
not on this machine, so a development server bound to a network address does not hand out reset links."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from mail.mailbox import stored_message, stored_messages


def _development_only(request: HttpRequest) -> None:
    # Leaked mail: production never shows it (the messages hold reset links and addresses) ...
    if not settings.MAIL_SINK_PAGE_ENABLED:
        raise Http404("No such page.")
    # ... and in development only a browser on this machine sees it.
    try:
        local = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback
    except ValueError:
        local = False
    if not local:
        raise Http404("No such page.")


@login_not_required  # a development tool for whoever runs `make run`; closed by _development_only instead
@require_GET
def sink_message_list(request: HttpRequest) -> HttpResponse:
    _development_only(request)
    directory = settings.MAIL_SINK_DIR
    return render(
        request, "mail/sink_list.html", {"messages_stored": stored_messages(directory), "directory": directory}
    )


@login_not_required
@require_GET
def sink_message_detail(request: HttpRequest, name: str) -> HttpResponse:
    _development_only(request)
    message = stored_message(settings.MAIL_SINK_DIR, name)
    if message is None:
        raise Http404("No such message.")
    return render(request, "mail/sink_detail.html", {"message": message})
