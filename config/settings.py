"""One settings module, configured by environment variables.

Local development works with no variables at all. `DJANGO_ENV=production` switches on the production
mode, which refuses to start without a real SECRET_KEY and ALLOWED_HOSTS and turns on every `check --deploy` setting.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str
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

if PRODUCTION:
    # Unsafe configuration: production never starts with a guessable key, debug pages or an open host list.
    if len(SECRET_KEY) < 50 or SECRET_KEY == _INSECURE_KEY or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("DJANGO_ENV=production needs SECRET_KEY: 50+ random characters")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS")
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_ENV=production refuses DEBUG=true")

INSTALLED_APPS = [
    "django.contrib.admin",
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
    "core",
    "accounts",
    "shop",
    "cart",
    "orders",
    "payments",
    "idempotency",
    "observability",
    "backoffice",
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
    "core.middleware.ServerTimingMiddleware",
    # No observability: one JSON access line and the request metrics per request (sees the query counter).
    "observability.middleware.AccessLogMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
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
        "BACKEND": "core.infrastructure.ResilientRedisCache",
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
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if env_bool("FAST_PASSWORD_HASHER", TESTING):
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

# --- DRF, JWT, OpenAPI --------------------------------------------------------------------------------------
API_MAX_PAGE_SIZE = 100
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    # Deny by default: a new API view is private until it opts into AllowAny.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
}

# --- Shop rules ---------------------------------------------------------------------------------------------
SHOP_CURRENCY = "EUR"
ORDER_MAX_LINES = env_int("ORDER_MAX_LINES", 50, minimum=1)
ORDER_MAX_QUANTITY_PER_LINE = env_int("ORDER_MAX_QUANTITY_PER_LINE", 100, minimum=1)
# Stuck orders: pending_payment longer than this is re-driven by the reconciliation job.
PAYMENT_REDRIVE_AFTER_S = env_int("PAYMENT_REDRIVE_AFTER_S", 60, minimum=5)
# ... and cancelled (stock released) when still unpaid after this long.
PAYMENT_ABANDON_AFTER_S = env_int("PAYMENT_ABANDON_AFTER_S", 24 * 3600, minimum=60)

PAYMENT_PROVIDER_URL = env_str("PAYMENT_PROVIDER_URL", "http://127.0.0.1:8100")
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
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
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
METRICS_PGBOUNCER_URL = env_str(
    "METRICS_PGBOUNCER_URL", f"postgres://{_pooler['USER']}@{_pooler['HOST']}:{_pooler['PORT']}/pgbouncer"
)

# Invariant checker: how long an order may wait in pending_payment before the audit calls it stuck (the
# reconciliation job should have cancelled it at PAYMENT_ABANDON_AFTER_S), and how long a cancelled paid order
# may stay captured before its refund must have happened.
INVARIANT_PENDING_PAYMENT_MAX_AGE_S = env_int(
    "INVARIANT_PENDING_PAYMENT_MAX_AGE_S", PAYMENT_ABANDON_AFTER_S + 3600, minimum=60
)
INVARIANT_REFUND_GRACE_S = env_int("INVARIANT_REFUND_GRACE_S", 3600, minimum=60)
INVARIANT_TIMEOUT_S = env_int("INVARIANT_TIMEOUT_S", 60, minimum=1)
INVARIANT_CHECK_INTERVAL_S = env_int("INVARIANT_CHECK_INTERVAL_S", 300, minimum=10)

# Sentry: off unless SENTRY_DSN is set. Scrubbing (no passwords, tokens, cards, addresses, cookies) is in
# observability/sentry.py.
SENTRY_ENABLED = sentry_init(
    dsn=env_str("SENTRY_DSN", ""),
    environment=env_str("SENTRY_ENVIRONMENT", DJANGO_ENV),
    release=env_str("SENTRY_RELEASE", ""),
    sample_rate=env_float("SENTRY_SAMPLE_RATE", 1.0, minimum=0.0),
    traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0),
)
