"""One settings module, configured by environment variables.

Local development works with no variables at all. `DJANGO_ENV=production` switches on the production
mode, which refuses to start without a real SECRET_KEY and ALLOWED_HOSTS and turns on every `check --deploy` setting.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from accounts.password_cost import argon2_refusal
from config.env import env_bool, env_float, env_int, env_list, env_str
from mail.configuration import MailSettings, demo_mail_allowance, mail_refusals
from observability.logs import configure_structlog, logging_config
from observability.sentry import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

# Under pytest the default is the test mode; anything else defaults to local development.
DJANGO_ENV = env_str("DJANGO_ENV", "test" if "pytest" in sys.modules else "development")
TESTING = DJANGO_ENV == "test"
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV={DJANGO_ENV!r} must be development, test or production")
PRODUCTION = DJANGO_ENV == "production"

_INSECURE_KEY = "django-insecure-local-development-only-never-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _INSECURE_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION and DJANGO_ENV != "test")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Demo stack (the compose `demo` profile, the k8s `demo` overlay): the ONE switch that lets production mode run
# with the payment simulator and the demo data (accounts whose password the README prints). Never for a real shop.
DEMO_MODE = env_bool("DEMO_MODE", False)

INSTALLED_APPS = [
    # Django's admin with the shop's site (core/admin.py): bad ids and an empty _to_field are refused, not 500s.
    "core.apps.ShopAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Expression indexes with an operator class (the trigram search index on products) need its hooks.
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "guardian",
    "axes",
    "csp",
    "core",
    "accounts",
    "shop",
    "cart",
    "orders",
    "payments",
    "idempotency",
    "observability",
    "backoffice",
    "mail",
]

# --- Workshop (workshop/, docs/workshop/) -------------------------------------------------------------------
# Teaching only: each failure mode's deliberately broken twin beside its fix. WORKSHOP_ENABLED=true (`make
# workshop`) installs the app and mounts /workshop/; production refuses it. Under test the app is installed (its
# models and pages are tested) but not mounted: its tests use their own URLconf.
WORKSHOP_ENABLED = env_bool("WORKSHOP_ENABLED", False)
if WORKSHOP_ENABLED and PRODUCTION:
    raise ImproperlyConfigured(
        "DJANGO_ENV=production refuses WORKSHOP_ENABLED=true: the workshop serves deliberately broken code "
        "(unset WORKSHOP_ENABLED)"
    )
if WORKSHOP_ENABLED or TESTING:
    INSTALLED_APPS.append("workshop")
# Races every time: the twin's stock read and its write are this far apart (its "carrier rate" call).
WORKSHOP_RACE_WINDOW_MS = env_int("WORKSHOP_RACE_WINDOW_MS", 300, minimum=0)
# The capacity twin connects straight to PostgreSQL as this role; the role's CONNECTION LIMIT stands in for a
# small server's max_connections, so the twin runs out without taking connections the real shop needs.
WORKSHOP_TWIN_DB_USER = env_str("WORKSHOP_TWIN_DB_USER", "shop_workshop_twin")
WORKSHOP_TWIN_DB_CONNECTIONS = env_int("WORKSHOP_TWIN_DB_CONNECTIONS", 5, minimum=1)
# Where a background run sends its load: the shop, and the twins' own server (a bulkhead: a hung twin cannot
# take the shop's request threads).
WORKSHOP_SHOP_URL = env_str("WORKSHOP_SHOP_URL", "http://127.0.0.1:8000")
WORKSHOP_TWIN_URL = env_str("WORKSHOP_TWIN_URL", "http://127.0.0.1:8001")
# A room on one machine: runs started from /workshop/ use this preset (standard, or small for a room of 20), and
# at most this many go at once (each is a few hundred simulated users on the same CPUs as the shop).
WORKSHOP_RUN_SIZE = env_str("WORKSHOP_RUN_SIZE", "standard")
if WORKSHOP_RUN_SIZE not in {"standard", "small"}:
    raise ImproperlyConfigured(f"WORKSHOP_RUN_SIZE={WORKSHOP_RUN_SIZE!r} must be standard or small")
WORKSHOP_MAX_ACTIVE_RUNS = env_int("WORKSHOP_MAX_ACTIVE_RUNS", 4, minimum=1)

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Strangers: every error answer is the shop's own - problem+json on the API (DEBUG pages and unmatched URLs
    # included), the shop's page for HTML where Django's would be empty (405).
    "core.middleware.ErrorAnswersMiddleware",
    "core.middleware.ServerTimingMiddleware",
    # No observability: one JSON access line and the request metrics per request (sees the query counter).
    "observability.middleware.AccessLogMiddleware",
    # Overload: a request that waited too long for a thread is refused 503 + Retry-After before any other work.
    "core.shedding.LoadSheddingMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    # Bad input: NUL in a path, query, form field or header is a 400 here, never a psycopg error in a view.
    "core.middleware.UnstorableInputMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Deny by default: every web page requires a signed-in user unless its view is marked @login_not_required
    # (catalog, login, sign-up, health). DRF views opt out here and enforce their own permission classes.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Injected script (XSS): the browser runs only scripts and styles served by the shop itself.
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Infrastructure failure: a database or cache outage becomes a 503 page or problem, never a traceback.
    "core.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cart.context_processors.cart_summary",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------------
# The app reaches PostgreSQL only through PgBouncer (transaction pooling on 6432). Migrations and the test
# database set-up use DIRECT_DATABASE_URL, because DDL and CREATE/DROP DATABASE do not belong in a pooler.
DATABASE_URL = env_str("DATABASE_URL", "postgres://shop@127.0.0.1:6432/shop")
DIRECT_DATABASE_URL = env_str("DIRECT_DATABASE_URL", "postgres://shop@127.0.0.1:5432/shop")
DB_CONNECT_TIMEOUT_S = env_int("DB_CONNECT_TIMEOUT_S", 3, minimum=1)

DATABASES = {
    "default": {
        **dj_database_url.parse(DATABASE_URL),
        # Connection storm: a worker keeps its connection to PgBouncer and checks it before reuse.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE_S", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        # Transaction pooling: a server-side cursor would outlive its transaction on another client's session.
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "OPTIONS": {
            # Database down: fail within seconds (503), instead of hanging a worker on the TCP connect.
            "connect_timeout": DB_CONNECT_TIMEOUT_S,
            "application_name": env_str("DB_APPLICATION_NAME", "hardened-shop"),
        },
        "TEST": {"NAME": env_str("TEST_DATABASE_NAME", "test_shop")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Lock contention: order placement waits at most this long for a product row lock, then answers 409 busy.
ORDER_LOCK_TIMEOUT_MS = env_int("ORDER_LOCK_TIMEOUT_MS", 2000, minimum=1)

# --- Redis, cache, Celery -----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TIMEOUT_S = env_float("REDIS_TIMEOUT_S", 0.5, minimum=0.05)
# Connections per process for throttles and the breaker (gunicorn threads are far fewer; bursts queue briefly).
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 50, minimum=1)
CACHES = {
    "default": {
        # Redis down: a cache outage is a cache miss (the catalog still serves), never an exception.
        "BACKEND": "core.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "shop"),
        # Redis down: a cache call gives up in half a second instead of hanging the request.
        "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S},
    }
}
# Redis down: sessions live in PostgreSQL, so signed-in customers stay signed in when Redis is not there.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Lost work: a task is acknowledged only after it ran, and goes back to the queue if its worker died.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT_S", 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT_S", 45, minimum=1)
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Connection churn: Celery's Django fixup closes every database connection before and after each task (it cannot
# tell a connection a time limit broke mid-query from a good one, celery#9824), so each task connected to PgBouncer
# anew: 8 % of the worker's samples under load (py-spy). It now closes them only every this many tasks, and
# config/celery.py closes them after any task that did not succeed. 0: Celery's default, a connection per task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2, minimum=1)
CELERY_TIMEZONE = "UTC"

# --- Auth ---------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2PasswordHasher",  # argon2id at the cost below; reads every "argon2$" hash
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# A login storm takes the CPU: Django's own argon2 cost (100 MiB, 2 passes, 8 lanes) is 206 ms of CPU per sign-in
# on this machine, OWASP's second argon2id row 21 ms (accounts/hashers.py). Production refuses less than OWASP's
# table asks for; a changed cost re-hashes each password at its next sign-in, nobody is locked out.
ARGON2_MEMORY_KIB = env_int("ARGON2_MEMORY_KIB", 19_456, minimum=8)
ARGON2_TIME_COST = env_int("ARGON2_TIME_COST", 2, minimum=1)
ARGON2_PARALLELISM = env_int("ARGON2_PARALLELISM", 1, minimum=1)
if ARGON2_MEMORY_KIB < 8 * ARGON2_PARALLELISM:
    # Every sign-in a 500: argon2 needs 8 KiB per lane and would refuse each hash ("Memory cost is too small").
    raise ImproperlyConfigured(
        f"ARGON2_MEMORY_KIB={ARGON2_MEMORY_KIB} is below 8 KiB per lane (ARGON2_PARALLELISM={ARGON2_PARALLELISM})"
    )
FAST_PASSWORD_HASHER = env_bool("FAST_PASSWORD_HASHER", TESTING)
if FAST_PASSWORD_HASHER:
    # Tests and load seeding only: argon2 is deliberately slow and this machine has two cores.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "shop:home"
LOGOUT_REDIRECT_URL = "shop:home"
ANONYMOUS_USER_NAME = None  # guardian: anonymous users get no object permissions at all

# Brute force: a username+IP pair is locked out after this many failures for AXES_COOLOFF_TIME.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# The web page gets that template, the API a 429 problem+json; both with Retry-After (accounts/lockout.py).
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Behind a proxy: the lockout counts the client the throttles count (X-Forwarded-For, THROTTLE_TRUSTED_PROXIES
# hops), not the proxy's address, so one client's failures cannot lock a username out for everyone.
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_ip"

# --- DRF, JWT, OpenAPI --------------------------------------------------------------------------------------
API_MAX_PAGE_SIZE = 100
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    # Deny by default: a new API view is private until it opts into AllowAny.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Stack exhaustion / unstorable text: nesting depth and NUL/surrogates are bounded before a serializer runs.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    # The OpenAPI document states every answer an operation can give, derived from the view (core/openapi.py).
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ShopAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ]

SIMPLE_JWT = {
    # Stolen token: an access token is useful for minutes; refresh tokens rotate and the old one is blacklisted.
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 5, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Password changed or reset: every token issued before carries the old password's hash and stops working at
    # once, access tokens included (the refresh tokens are blacklisted as well, accounts/passwords.py).
    "CHECK_REVOKE_TOKEN": True,
}

IDEMPOTENCY_KEY_RETENTION_HOURS = env_int("IDEMPOTENCY_KEY_RETENTION_HOURS", 24, minimum=24)
# A claimed key whose request died (worker killed) can be claimed again after this lease.
IDEMPOTENCY_IN_FLIGHT_LEASE_S = env_int("IDEMPOTENCY_IN_FLIGHT_LEASE_S", 60, minimum=5)

SPECTACULAR_SETTINGS = {
    # No CDN: the Swagger UI's JavaScript and CSS are served from our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Hardened Shop API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "The order-taking API of Hardened Shop.\n\n"
        "**Errors** are `application/problem+json` (RFC 9457) with a stable `code`.\n\n"
        "**Idempotency**: `POST /api/v1/orders/` requires an `Idempotency-Key` header (1-255 characters). "
        f"Keys are scoped per user and kept for {IDEMPOTENCY_KEY_RETENTION_HOURS} hours. A finished request "
        "with the same key and payload is replayed with `Idempotent-Replayed: true`; a different payload gets "
        "422 `idempotency_key_reused`; a request still running gets 409 `request_in_flight` with `Retry-After`. "
        "Only successful outcomes (201) are stored and replayed; a refused request writes nothing and releases "
        "its key, so the same key may be retried once the cause is fixed."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.postprocess_links"],
}

# --- Shop rules ---------------------------------------------------------------------------------------------
SHOP_CURRENCY = "EUR"
ORDER_MAX_LINES = env_int("ORDER_MAX_LINES", 50, minimum=1)
ORDER_MAX_QUANTITY_PER_LINE = env_int("ORDER_MAX_QUANTITY_PER_LINE", 100, minimum=1)
# Stuck orders: pending_payment longer than this is re-driven by the reconciliation job.
PAYMENT_REDRIVE_AFTER_S = env_int("PAYMENT_REDRIVE_AFTER_S", 60, minimum=5)
# ... and cancelled (stock released) when still unpaid after this long.
PAYMENT_ABANDON_AFTER_S = env_int("PAYMENT_ABANDON_AFTER_S", 24 * 3600, minimum=60)

# The local simulator (payments/simulator.py) is the default for development, tests and a demo stack only;
# production needs the real provider's URL (checked with the other refusals below).
PAYMENT_SIMULATOR_URL = "http://127.0.0.1:8100"
PAYMENT_PROVIDER_URL = env_str("PAYMENT_PROVIDER_URL", "" if PRODUCTION and not DEMO_MODE else PAYMENT_SIMULATOR_URL)
PAYMENT_PROVIDER_TIMEOUT_S = env_float("PAYMENT_PROVIDER_TIMEOUT_S", 3.0, minimum=0.1)
PAYMENT_PROVIDER_CONNECT_TIMEOUT_S = env_float("PAYMENT_PROVIDER_CONNECT_TIMEOUT_S", 1.0, minimum=0.1)
# Transient errors: idempotent provider calls are tried this often, with full-jitter exponential backoff.
PAYMENT_PROVIDER_MAX_ATTEMPTS = env_int("PAYMENT_PROVIDER_MAX_ATTEMPTS", 3, minimum=1)
PAYMENT_PROVIDER_RETRY_BASE_S = env_float("PAYMENT_PROVIDER_RETRY_BASE_S", 0.2, minimum=0.0)
PAYMENT_PROVIDER_RETRY_CAP_S = env_float("PAYMENT_PROVIDER_RETRY_CAP_S", 2.0, minimum=0.0)
# Provider down: after this many failed calls in a row the breaker opens for the cool-down (payments/breaker.py).
PAYMENT_BREAKER_NAME = env_str("PAYMENT_BREAKER_NAME", "payment-provider")
PAYMENT_BREAKER_THRESHOLD = env_int("PAYMENT_BREAKER_THRESHOLD", 5, minimum=1)
PAYMENT_BREAKER_COOLDOWN_S = env_float("PAYMENT_BREAKER_COOLDOWN_S", 30.0, minimum=0.1)
PAYMENT_BREAKER_PROBE_LEASE_S = env_float("PAYMENT_BREAKER_PROBE_LEASE_S", 15.0, minimum=0.1)
# The reconciliation job (payments_reconcile_task) runs this often under Celery beat.
PAYMENT_RECONCILE_EVERY_S = env_int("PAYMENT_RECONCILE_EVERY_S", 30, minimum=1)

# --- Rate limits (core/throttling.py; docs/patterns/03-capacity.md has the table) ----------------------------
# Abuse: counted per IP and per user/username in Redis. Under test the limits are out of the way (every test
# client is 127.0.0.1); the throttling tests set their own small rates.
_UNLIMITED = "1000000/min"
THROTTLE_RATES = {
    "login_ip": env_str("THROTTLE_LOGIN_RATE", _UNLIMITED if TESTING else "20/min"),
    "login_username": env_str("THROTTLE_LOGIN_USERNAME_RATE", _UNLIMITED if TESTING else "10/min"),
    "register_ip": env_str("THROTTLE_REGISTER_RATE", _UNLIMITED if TESTING else "10/hour"),
    "write_user": env_str("THROTTLE_USER_RATE", _UNLIMITED if TESTING else "30/min"),
    "write_ip": env_str("THROTTLE_IP_RATE", _UNLIMITED if TESTING else "300/min"),
    "password_reset_ip": env_str("THROTTLE_PASSWORD_RESET_RATE", _UNLIMITED if TESTING else "10/hour"),
    "password_reset_email": env_str("THROTTLE_PASSWORD_RESET_EMAIL_RATE", _UNLIMITED if TESTING else "3/hour"),
    "account_user": env_str("THROTTLE_ACCOUNT_RATE", _UNLIMITED if TESTING else "10/hour"),
}
for _scope, _rate in THROTTLE_RATES.items():
    if not re.fullmatch(r"[1-9]\d*/(sec|s|min|m|hour|h|day|d)", _rate):
        raise ImproperlyConfigured(f"throttle rate {_scope}={_rate!r} is not like '30/min'")
# Behind N reverse proxies the client address is the N-th entry from the right of X-Forwarded-For.
THROTTLE_TRUSTED_PROXIES = env_int("THROTTLE_TRUSTED_PROXIES", 0, minimum=0)

# --- Request limits -----------------------------------------------------------------------------------------
# Resource exhaustion: a 10 MB body is refused before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Catalog cache (shop/catalog_cache.py) ---------------------------------------------------------------------
# The product list and detail answers, kept this long per web process with request coalescing; the stock they
# show is availability, never trusted for ordering. Off under test, where every read must see the last write.
CATALOG_CACHE_S = env_float("CATALOG_CACHE_S", 0.0 if TESTING else 1.0, minimum=0.0)
CATALOG_CACHE_MAX_ENTRIES = env_int("CATALOG_CACHE_MAX_ENTRIES", 1024, minimum=1)

# --- Load shedding (core/shedding.py; docs/patterns/03-capacity.md) ------------------------------------------
# Overload: a request that waited longer than this for a worker thread is refused 503 + Retry-After at once, so
# the queue stays short and the admitted requests keep their latency budget. 0 switches shedding off. 250 ms is
# over any wait below the knee (at 100 users none waits 170 ms), and past it the refusals the reaper makes wait
# out this limit (loadtests/README.md, "Fifth pass": 500 -> 250 took their wait from p50 61 / p95 464 ms to
# 36 / 249). Off under test: a live stack answering a burst on a loaded CI machine is not overload;
# tests/capacity/test_shedding.py sets its own limit, and tests/conftest.py passes "off" on to the servers tests start.
SHEDDING_MAX_QUEUE_MS = env_int("SHEDDING_MAX_QUEUE_MS", 0 if TESTING else 250, minimum=0)
# CoDel's rule: once the queue has not been empty for SHEDDING_MAX_QUEUE_MS (overload, not a burst), a request
# may wait only this long; the rest are refused at once instead of after the whole limit. 0 switches it off.
SHEDDING_STANDING_QUEUE_MS = env_int("SHEDDING_STANDING_QUEUE_MS", 50, minimum=0)
# How long the queue must stay non-empty to count as standing (CoDel's interval); 0: SHEDDING_MAX_QUEUE_MS.
SHEDDING_STANDING_AFTER_MS = env_int("SHEDDING_STANDING_AFTER_MS", 0, minimum=0)
# A request that has waited its limit is refused at once by a refusal thread, instead of when a request thread
# finally takes it (with every thread busy, that can be seconds later). false: refused only when taken.
SHEDDING_REAP_QUEUE = env_bool("SHEDDING_REAP_QUEUE", True)
SHEDDING_RETRY_AFTER_S = env_int("SHEDDING_RETRY_AFTER_S", 1, minimum=1)
# Threads per web worker that answer refusals (at the door and after the reaper), beside the request threads.
SHEDDING_REFUSAL_THREADS = env_int("SHEDDING_REFUSAL_THREADS", 6, minimum=1)
# Refuse an arrival at once when the queue ahead of it would take longer than the limit to clear (its length,
# times how long a request has recently held a thread, over the threads). false: only a standing queue refuses
# at the door, and the rest are refused after waiting out the limit.
SHEDDING_PREDICT_WAIT = env_bool("SHEDDING_PREDICT_WAIT", True)
# ... once the worker has served this many requests: the pace of a new worker's first (cold) ones misleads.
SHEDDING_PREDICT_AFTER = env_int("SHEDDING_PREDICT_AFTER", 32, minimum=0)
# Behind a proxy that overwrites X-Request-Start (nginx: `proxy_set_header X-Request-Start "t=${msec}";`), the
# wait counts from the proxy's stamp. Never trust it without such a proxy: a client could send its own.
SHEDDING_TRUST_REQUEST_START = env_bool("SHEDDING_TRUST_REQUEST_START", False)
# Probes are never shed: a liveness probe refused under load gets a busy instance restarted.
SHEDDING_EXEMPT_PATHS = ["/healthz", "/readyz", "/metrics"]

# Server-Timing: on in development, off by default in production.
SERVER_TIMING_ENABLED = env_bool("SERVER_TIMING_ENABLED", not PRODUCTION)

# N+1: under test, django-zeal (a dev dependency) fails any request or test body that lazy-loads the same
# relation, or runs the same .get(), twice; tests/conftest.py switches it on around every test as well.
ZEAL_ENABLED = env_bool("ZEAL_ENABLED", TESTING)
if ZEAL_ENABLED:
    INSTALLED_APPS.append("zeal")
    # Outermost, so each request is one zeal context, session and user lookups in other middleware included.
    MIDDLEWARE.insert(0, "zeal.middleware.zeal_middleware")
    ZEAL_RAISE = env_bool("ZEAL_RAISE", True)
    ZEAL_NPLUSONE_THRESHOLD = 2
    # Not an N+1: logout loads the session, then SessionStore.delete() fetches the row again to delete it.
    ZEAL_ALLOWLIST = [{"model": "sessions.Session", "field": "get()"}]

# --- Static files, i18n -------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Development and tests serve static files straight from the apps; production serves the collected,
# compressed and hashed copies (collectstatic).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security -----------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# A stale form (the session rotated, the cookie expired) gets the shop's 403 page, not Django's debug-ish one.
CSRF_FAILURE_VIEW = "core.views.csrf_failure"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# Injected script (XSS): no inline scripts or styles anywhere (templates/, the admin, the Swagger UI page with
# its self-hosted assets and separate init script), so the policy can forbid them outright. `data:` images are
# the favicon placeholder and Swagger UI's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Prometheus scrapes each instance over the private network, where TLS already ended at the proxy: a
    # redirect to https there would only break the scrape (/metrics keeps its own token, observability/views.py).
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging, metrics, error tracking (observability/, docs/patterns/06-observability.md) -----------------
# JSON lines on stdout in production (and whenever LOG_FORMAT=json); readable lines for local development.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "console")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
configure_structlog()
# Celery keeps the LOGGING above instead of installing its own plain-text handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /metrics: open in development; in production it needs METRICS_TOKEN (Bearer) or METRICS_ALLOWED_IPS, or is 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
# PgBouncer's admin console (SHOW POOLS) for the pool gauges; empty disables them.
_pooler = dj_database_url.parse(DATABASE_URL)
_pooler_login = quote(str(_pooler["USER"]), safe="") + (
    ":" + quote(str(_pooler["PASSWORD"]), safe="") if _pooler.get("PASSWORD") else ""
)
METRICS_PGBOUNCER_URL = env_str(
    "METRICS_PGBOUNCER_URL", f"postgres://{_pooler_login}@{_pooler['HOST']}:{_pooler['PORT']}/pgbouncer"
)
# A Celery worker is its own process tree (its own container or pod): it serves its own /metrics on this port
# (0 = off; `make run` shares one PROMETHEUS_MULTIPROC_DIR with gunicorn instead). observability/worker_metrics.py
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0, minimum=0)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104 (inside a container or pod)

# Invariant checker: how long an order may wait in pending_payment before the audit calls it stuck (the
# reconciliation job should have cancelled it at PAYMENT_ABANDON_AFTER_S), and how long a cancelled paid order
# may stay captured before its refund must have happened.
INVARIANT_PENDING_PAYMENT_MAX_AGE_S = env_int(
    "INVARIANT_PENDING_PAYMENT_MAX_AGE_S", PAYMENT_ABANDON_AFTER_S + 3600, minimum=60
)
INVARIANT_REFUND_GRACE_S = env_int("INVARIANT_REFUND_GRACE_S", 3600, minimum=60)
INVARIANT_TIMEOUT_S = env_int("INVARIANT_TIMEOUT_S", 60, minimum=1)
INVARIANT_CHECK_INTERVAL_S = env_int("INVARIANT_CHECK_INTERVAL_S", 300, minimum=10)

# --- Mail (mail/; docs/patterns/01-race-conditions.md, "Side effects exactly once") ------------------------
# SMTP in every mode: under `make run` to the local sink (mail/sink.py, the Procfile's `mail`), in production to
# your relay. There is no console or in-memory backend to choose: a message either reaches an SMTP server or
# waits in the outbox. Tests start a sink on a free port and point EMAIL_PORT at it; by default a test process
# writes to port 9, where nothing listens, so a stray delivery is deferred, never sent to a developer's sink.
EMAIL_BACKEND = "mail.transport.SMTPBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "" if PRODUCTION else "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 587 if PRODUCTION else (9 if TESTING else 1025), minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", PRODUCTION)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Mail server down: connecting gives up after EMAIL_CONNECT_TIMEOUT_S, each command after EMAIL_SEND_TIMEOUT_S.
EMAIL_CONNECT_TIMEOUT_S = env_float("EMAIL_CONNECT_TIMEOUT_S", 5.0, minimum=0.1)
EMAIL_SEND_TIMEOUT_S = env_float("EMAIL_SEND_TIMEOUT_S", 15.0, minimum=0.1)
EMAIL_TIMEOUT = EMAIL_SEND_TIMEOUT_S
DEFAULT_FROM_EMAIL = env_str("EMAIL_FROM", "" if PRODUCTION else "Hardened Shop <shop@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in mail: the address customers reach the shop at.
SHOP_BASE_URL = env_str("SHOP_BASE_URL", "" if PRODUCTION else "http://127.0.0.1:8000")
MAIL_MESSAGE_ID_DOMAIN = env_str(
    "MAIL_MESSAGE_ID_DOMAIN", DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "hardened-shop.local"
)
# The outbox (mail/services.py): a claim's lease, the re-drive, the backoff, and when to give up.
MAIL_CLAIM_LEASE_S = env_int("MAIL_CLAIM_LEASE_S", 300, minimum=2)
MAIL_REDRIVE_AFTER_S = env_int("MAIL_REDRIVE_AFTER_S", 60, minimum=1)
MAIL_REDRIVE_EVERY_S = env_int("MAIL_REDRIVE_EVERY_S", 30, minimum=1)
MAIL_RETRY_BASE_S = env_float("MAIL_RETRY_BASE_S", 30.0, minimum=0.1)
MAIL_RETRY_CAP_S = env_float("MAIL_RETRY_CAP_S", 3600.0, minimum=0.1)
MAIL_MAX_ATTEMPTS = env_int("MAIL_MAX_ATTEMPTS", 30, minimum=1)
# The sink's directory, and the development page that lists it (/dev/mail/; 404 in production).
MAIL_SINK_DIR = Path(env_str("MAIL_SINK_DIR", str(Path(env_str("RUN_DIR", str(BASE_DIR / ".run"))) / "mail")))
MAIL_SINK_PAGE_ENABLED = not PRODUCTION
# Invariant checker: how long a message may stay unsent before the audit calls it stuck.
INVARIANT_MAIL_GRACE_S = env_int("INVARIANT_MAIL_GRACE_S", 3600, minimum=60)

_mail_settings = MailSettings(
    backend_override=env_str("EMAIL_BACKEND", ""),
    host=EMAIL_HOST,
    port=EMAIL_PORT,
    user=EMAIL_HOST_USER,
    password=EMAIL_HOST_PASSWORD,
    use_tls=EMAIL_USE_TLS,
    use_ssl=EMAIL_USE_SSL,
    from_address=DEFAULT_FROM_EMAIL,
    base_url=SHOP_BASE_URL,
    connect_timeout_s=EMAIL_CONNECT_TIMEOUT_S,
    send_timeout_s=EMAIL_SEND_TIMEOUT_S,
    claim_lease_s=MAIL_CLAIM_LEASE_S,
    task_soft_time_limit_s=CELERY_TASK_SOFT_TIME_LIMIT,
    task_time_limit_s=CELERY_TASK_TIME_LIMIT,
)
_mail_refusals = mail_refusals(_mail_settings, production=PRODUCTION, demo_mode=DEMO_MODE)
# The demo stack's sink in the next container, reached in clear text: allowed by DEMO_MODE alone, and named in
# every start's demo warning (observability/apps.py).
DEMO_MAIL_ALLOWANCE = demo_mail_allowance(_mail_settings, production=PRODUCTION, demo_mode=DEMO_MODE)
if _mail_refusals and not PRODUCTION:
    # Unsafe configuration: lost or clear-text mail is refused at start-up, every problem named at once
    # (production reports these together with its own refusals, below).
    raise ImproperlyConfigured("; ".join(_mail_refusals))

# Account mail: password reset links expire (Django's token generator), verification links too.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_S", 3600, minimum=60)
EMAIL_VERIFY_TIMEOUT_S = env_int("EMAIL_VERIFY_TIMEOUT_S", 3 * 24 * 3600, minimum=60)
# One reset (or verification) mail per account and address per window; a repeat inside it is the same event.
ACCOUNT_MAIL_WINDOW_S = env_int("ACCOUNT_MAIL_WINDOW_S", 600, minimum=1)

# --- Production refuses an unsafe configuration at start-up ------------------------------------------------
# Every refusal names its variable, and all of them are reported at once (a deployer fixes them in one go).
if PRODUCTION:
    _refusals = list(_mail_refusals)
    # Unsafe configuration: production never starts with a guessable key, debug pages or an open host list.
    if len(SECRET_KEY) < 50 or SECRET_KEY == _INSECURE_KEY or SECRET_KEY.startswith("django-insecure"):
        _refusals.append("DJANGO_ENV=production needs SECRET_KEY: 50+ random characters")
    if not ALLOWED_HOSTS:
        _refusals.append("DJANGO_ENV=production needs ALLOWED_HOSTS")
    if DEBUG:
        _refusals.append("DJANGO_ENV=production refuses DEBUG=true")
    # Test doubles on the production path: the simulator takes no money and speaks plain HTTP only. A real
    # provider is reached over https; anything else needs the demo switch.
    if not PAYMENT_PROVIDER_URL:
        _refusals.append(
            "DJANGO_ENV=production needs PAYMENT_PROVIDER_URL: your payment provider's https URL "
            "(the payment simulator is allowed only with DEMO_MODE=true)"
        )
    elif not PAYMENT_PROVIDER_URL.lower().startswith("https://") and not DEMO_MODE:
        _refusals.append(
            f"DJANGO_ENV=production refuses PAYMENT_PROVIDER_URL={PAYMENT_PROVIDER_URL!r}: not https, so the "
            "payment simulator or a provider reached in clear text (allowed only with DEMO_MODE=true)"
        )
    if FAST_PASSWORD_HASHER:
        _refusals.append("DJANGO_ENV=production refuses FAST_PASSWORD_HASHER=true (unsalted MD5 password hashes)")
    _weak_hashes = argon2_refusal(memory_kib=ARGON2_MEMORY_KIB, time_cost=ARGON2_TIME_COST)
    if _weak_hashes:
        _refusals.append(f"DJANGO_ENV=production refuses {_weak_hashes}")
    if not AXES_ENABLED:
        _refusals.append("DJANGO_ENV=production refuses AXES_ENABLED=false (no login lockout)")
    # Behind a proxy, a default of 0 hops makes every client the proxy's address: per-IP throttles and the
    # lockout would then hit everyone at once. The deployer states the hop count (0 when nothing is in front).
    if not env_str("THROTTLE_TRUSTED_PROXIES", "").strip():
        _refusals.append(
            "DJANGO_ENV=production needs THROTTLE_TRUSTED_PROXIES: how many reverse proxies append to "
            "X-Forwarded-For in front of the app (compose: 1, its TLS proxy; 0 when clients connect directly)"
        )
    if _refusals:
        raise ImproperlyConfigured("; ".join(_refusals))

# Sentry: off unless SENTRY_DSN is set. Scrubbing (no passwords, tokens, cards, addresses, cookies) is in
# observability/sentry.py.
SENTRY_ENABLED = sentry_init(
    dsn=env_str("SENTRY_DSN", ""),
    environment=env_str("SENTRY_ENVIRONMENT", DJANGO_ENV),
    release=env_str("SENTRY_RELEASE", ""),
    sample_rate=env_float("SENTRY_SAMPLE_RATE", 1.0, minimum=0.0),
    traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0),
)
