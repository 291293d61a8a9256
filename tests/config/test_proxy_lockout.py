"""Behind a reverse proxy, one client's failed log-ins cannot lock a username out for everyone.

django-axes locks a username+address pair. Without the proxy's hop count every request comes from the proxy's
address, so a stranger who types alice's name five times wrong locks alice out for every customer. With
THROTTLE_TRUSTED_PROXIES set, axes reads the address through the throttles' own function (core.throttling
.client_ip, AXES_CLIENT_IP_CALLABLE): the stranger locks out only himself. The twin shows the failure with the
hop count at 0.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.factories import TEST_PASSWORD

LOGIN_URL = "/accounts/login/"
PROXY = "172.30.0.2"  # the reverse proxy's address: REMOTE_ADDR of every request
STRANGER = "203.0.113.66"
ALICE_AT_HOME = "198.51.100.7"


def _via_proxy(client_address: str) -> Client:
    # The proxy appends the address it saw to whatever the client sent (here: a spoofed entry first).
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"10.9.9.9, {client_address}")


def _stranger_guesses_alices_password() -> None:
    stranger = _via_proxy(STRANGER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        stranger.post(LOGIN_URL, {"username": "alice", "password": "guess"})
    locked = stranger.post(LOGIN_URL, {"username": "alice", "password": TEST_PASSWORD})
    assert locked.status_code == 429  # the stranger is locked out, even with the right password


def test_a_stranger_behind_the_proxy_locks_out_only_himself(alice: User, settings) -> None:
    settings.THROTTLE_TRUSTED_PROXIES = 1
    _stranger_guesses_alices_password()

    response = _via_proxy(ALICE_AT_HOME).post(LOGIN_URL, {"username": "alice", "password": TEST_PASSWORD})

    assert response.status_code == 302, "alice, from her own address, logs in"


def test_twin_without_the_hop_count_the_stranger_locks_out_everyone(alice: User, settings) -> None:
    settings.THROTTLE_TRUSTED_PROXIES = 0  # the protection off: every request is the proxy's address
    _stranger_guesses_alices_password()

    response = _via_proxy(ALICE_AT_HOME).post(LOGIN_URL, {"username": "alice", "password": TEST_PASSWORD})

    assert response.status_code == 429, "the failure this file prevents: alice is locked out by a stranger"


@pytest.mark.parametrize("hops", [1, 2])
def test_the_lockout_reads_the_hop_the_trusted_proxies_appended(alice: User, settings, hops: int) -> None:
    from axes.models import AccessAttempt

    settings.THROTTLE_TRUSTED_PROXIES = hops
    chain = ", ".join(["10.9.9.9", STRANGER, *["172.30.0.9"] * (hops - 1)])  # spoofed, client, inner proxies
    Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=chain).post(LOGIN_URL, {"username": "alice", "password": "guess"})
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [STRANGER]


def test_what_is_not_an_address_is_no_address(settings) -> None:
    """axes stores the address in an IP column: garbage or a missing REMOTE_ADDR is None, never a crash."""
    from django.test import RequestFactory

    from core.throttling import _identity, client_ip

    settings.THROTTLE_TRUSTED_PROXIES = 1
    factory = RequestFactory()
    assert client_ip(factory.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="not-an-ip")) is None
    assert client_ip(factory.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"x, {STRANGER}")) == STRANGER
    nowhere = factory.get("/")
    nowhere.META.pop("REMOTE_ADDR")
    assert client_ip(nowhere) is None
    assert _identity("login_ip", nowhere) == "unknown"  # the throttles still count such callers, together
