"""Rate limits counted atomically in Redis, for the API (DRF throttle classes) and the web (`@throttle`).

The counter is a fixed window: the first hit creates the key with a TTL of one window, every hit increments
it, and a hit over the limit is refused until the key expires. INCR and PEXPIRE run in ONE Lua script, so
two workers can never both read "29 of 30" and both let a request through (the read-then-write race that
`tests/capacity/test_throttling.py` shows with a naive counter).

Scopes (rates in settings.THROTTLE_RATES, `<count>/<sec|min|hour|day>`):

    scope            counted per               applies to                                    Redis down
    login_ip         client IP                 POST api/v1/auth/token/, web login            fail CLOSED (503)
    login_username   submitted username        POST api/v1/auth/token/, web login            fail CLOSED (503)
    register_ip      client IP                 POST api/v1/auth/register/, web signup        fail CLOSED (503)
    write_user       signed-in user            POST/PATCH orders, cancel, web checkout       fail OPEN
    write_ip         client IP                 the same writes                               fail OPEN
    password_reset_ip     client IP            password reset request and confirm (API, web)   fail CLOSED (503)
    password_reset_email  submitted address    password reset request (API, web)               fail CLOSED (503)
    account_user     signed-in user            password change, address change, resend         fail CLOSED (503)

Why: a login or signup throttle is a security control (credential stuffing, account spam). Without its
counter it cannot tell an attacker from a customer, so it refuses with 503 + Retry-After for the minutes Redis
is down; existing sessions (PostgreSQL-backed) and access tokens keep working. A write throttle protects
capacity and fairness; the order path has hard limits of its own in the database (stock CHECK, lines and
quantity caps, idempotency keys), so refusing every checkout during a cache outage would cost more than it
saves. It lets the write through and logs.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import redis
import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from core.errors import ServiceUnavailable
from core.metrics import record_throttled
from core.problems import STATUS_CODES, refusal_response
from core.redis_pool import redis_connection

logger = structlog.get_logger(__name__)

Identity = Literal["ip", "user", "username", "email"]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Scope:
    identity: Identity
    fail_closed: bool


SCOPES: dict[str, Scope] = {
    "login_ip": Scope(identity="ip", fail_closed=True),
    "login_username": Scope(identity="username", fail_closed=True),
    "register_ip": Scope(identity="ip", fail_closed=True),
    "write_user": Scope(identity="user", fail_closed=False),
    "write_ip": Scope(identity="ip", fail_closed=False),
    # Account recovery is a security control like login: mail-bombing an address, guessing a current password.
    "password_reset_ip": Scope(identity="ip", fail_closed=True),
    "password_reset_email": Scope(identity="email", fail_closed=True),
    "account_user": Scope(identity="user", fail_closed=True),
}

_PERIODS = {"sec": 1, "s": 1, "min": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'30/min' -> Rate(30, 60). Raises ValueError on anything else, so a typo stops start-up."""
        count, _, period = text.partition("/")
        if not count.strip().isdigit() or period.strip() not in _PERIODS or int(count) < 1:
            raise ValueError(f"{text!r} is not a rate like '30/min' (periods: sec, min, hour, day)")
        return cls(limit=int(count), window_s=_PERIODS[period.strip()])


# KEYS[1] = counter key, ARGV[1] = window in ms. Returns {count, ms until the window ends}.
# Racy counters: the increment and the expiry are one atomic step (never GET, compare, then SET).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class ThrottleResult:
    allowed: bool
    count: int
    limit: int
    retry_after_s: int


class ThrottleUnavailable(ServiceUnavailable):
    code = "throttle_unavailable"
    title = "Sign-in is briefly unavailable."


def throttle_rate(scope: str) -> Rate:
    return Rate.parse(settings.THROTTLE_RATES[scope])


def _counter_key(scope: str, identity: str) -> str:
    # Identities (usernames, IPs) are hashed: no personal data in Redis keys, and no key-injection tricks.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"throttle:{scope}:{digest}"


def throttle_hit(scope: str, identity: str) -> ThrottleResult:
    """Count one request for `identity` in `scope` and say whether it is within the limit."""
    rate = throttle_rate(scope)
    try:
        count, ttl_ms = redis_connection().eval(_HIT, 1, _counter_key(scope, identity), rate.window_s * 1000)
    except redis.RedisError as error:
        if SCOPES[scope].fail_closed:
            logger.error("throttle unavailable, refusing (fail closed)", scope=scope, error=type(error).__name__)
            raise ThrottleUnavailable(
                "We cannot check sign-in attempts right now. Try again in a minute.", retry_after=30
            ) from error
        logger.warning("throttle unavailable, allowing (fail open)", scope=scope, error=type(error).__name__)
        return ThrottleResult(allowed=True, count=0, limit=rate.limit, retry_after_s=0)
    count = int(count)
    retry_after = max(1, math.ceil(int(ttl_ms) / 1000))
    if count > rate.limit:
        record_throttled(scope)
    return ThrottleResult(allowed=count <= rate.limit, count=count, limit=rate.limit, retry_after_s=retry_after)


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, or None when there is none (a test request, a unix socket). Behind
    THROTTLE_TRUSTED_PROXIES proxies, read it from X-Forwarded-For. django-axes uses this same function
    (AXES_CLIENT_IP_CALLABLE), so the lockout and the throttles always count the same client.

    Spoofed addresses: only the hops our own proxies appended are trusted; the leftmost entries are whatever
    the client wrote. What is not an IP address is no address (axes stores it in an IP column).
    """
    trusted = settings.THROTTLE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    candidate = str(request.META.get("REMOTE_ADDR") or "")
    if trusted and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted:
            candidate = hops[-trusted]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _identity(scope: str, request: HttpRequest | Request) -> str | None:
    kind = SCOPES[scope].identity
    if kind == "ip":
        return client_ip(request) or "unknown"  # callers without an address share one counter
    if kind == "user":
        user = getattr(request, "user", None)
        return f"user:{user.pk}" if user is not None and user.is_authenticated else None
    data: Any = request.data if isinstance(request, Request) else request.POST
    field = "email" if kind == "email" else "username"
    submitted = data.get(field) if hasattr(data, "get") else None
    return str(submitted).strip().lower()[: 254 if kind == "email" else 150] if submitted else None


# --- API: DRF throttle classes ---------------------------------------------------------------------------------


class RedisScopeThrottle(BaseThrottle):
    """A DRF throttle backed by `throttle_hit`. Over the limit: 429 problem+json with Retry-After."""

    scope = ""
    methods: frozenset[str] = UNSAFE_METHODS

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method not in self.methods:
            return True
        identity = _identity(self.scope, request)
        if identity is None:
            return True  # e.g. no username in the body: the serializer answers 400
        result = throttle_hit(self.scope, identity)
        if not result.allowed:
            self._wait = result.retry_after_s
            logger.info("throttled", scope=self.scope, count=result.count, limit=result.limit)
        return result.allowed

    def wait(self) -> float | None:
        return self._wait


class LoginIpThrottle(RedisScopeThrottle):
    scope = "login_ip"


class LoginUsernameThrottle(RedisScopeThrottle):
    scope = "login_username"


class RegisterIpThrottle(RedisScopeThrottle):
    scope = "register_ip"


class WriteUserThrottle(RedisScopeThrottle):
    scope = "write_user"


class WriteIpThrottle(RedisScopeThrottle):
    scope = "write_ip"


LOGIN_THROTTLES: list[type[BaseThrottle]] = [LoginIpThrottle, LoginUsernameThrottle]
REGISTER_THROTTLES: list[type[BaseThrottle]] = [RegisterIpThrottle]
WRITE_THROTTLES: list[type[BaseThrottle]] = [WriteUserThrottle, WriteIpThrottle]


class PasswordResetIpThrottle(RedisScopeThrottle):
    scope = "password_reset_ip"


class PasswordResetEmailThrottle(RedisScopeThrottle):
    scope = "password_reset_email"


class AccountUserThrottle(RedisScopeThrottle):
    scope = "account_user"


PASSWORD_RESET_THROTTLES: list[type[BaseThrottle]] = [PasswordResetIpThrottle, PasswordResetEmailThrottle]
ACCOUNT_THROTTLES: list[type[BaseThrottle]] = [AccountUserThrottle]


# --- Web: a decorator for Django views -----------------------------------------------------------------------

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def throttled_response(request: HttpRequest, *, retry_after_s: int) -> HttpResponse:
    return refusal_response(
        request,
        status=429,
        code=STATUS_CODES[429],
        title="Request was throttled.",
        detail=f"Too many requests. Try again in {retry_after_s} seconds.",
        retry_after=retry_after_s,
        template="errors/429.html",
    )


def _unavailable_response(request: HttpRequest, refusal: ThrottleUnavailable) -> HttpResponse:
    return refusal_response(
        request,
        status=503,
        code=refusal.code,
        title=refusal.title,
        detail=refusal.detail,
        retry_after=refusal.retry_after or 30,
        template="errors/503.html",
    )


def throttle(*scopes: str, methods: frozenset[str] = UNSAFE_METHODS) -> Callable[[ViewFunc], ViewFunc]:
    """Throttle a Django view: `@throttle("login_ip", "login_username")`. Safe methods pass untouched.

    Over the limit: a 429 page (or problem+json) with Retry-After. A fail-closed scope with Redis down: a 503
    page (or problem+json) with Retry-After.
    """
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown throttle scopes {unknown}; known: {sorted(SCOPES)}")

    def decorate(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method in methods:
                waits = []
                try:
                    for scope in scopes:
                        identity = _identity(scope, request)
                        if identity is not None:
                            result = throttle_hit(scope, identity)
                            waits += [] if result.allowed else [result.retry_after_s]
                except ThrottleUnavailable as refusal:
                    return _unavailable_response(request, refusal)
                if waits:
                    return throttled_response(request, retry_after_s=max(waits))
            return view(request, *args, **kwargs)

        return cast(ViewFunc, wrapper)

    return decorate
