"""Catalog API answers, kept for a moment (CATALOG_CACHE_S, 1 s) in each web process, with request coalescing.

The product list and product detail are the same for every visitor and asked for far more often than they
change: at 100 requests a second, a 1 s cache turns 100 identical queries and serializations into one. When
an answer is missing, the first request computes it and the others asking for the same one at that moment
wait for it instead of computing it too (a cache stampede would put the load right back on the database).

What may be stale, and for how long: `stock_available` and the price for at most CATALOG_CACHE_S. The stock
shown is availability, never a promise: order placement re-reads each product under its row lock
(shop/stock.py, under orders/placement.py) and answers 409 `insufficient_stock` whatever the catalog said.
Errors (404, a bad cursor) are never cached. Memory is bounded: at most CATALOG_CACHE_MAX_ENTRIES answers per process.

The cache is per process (cachetools, in memory), not in Redis: a hit costs no network round trip, and with a
handful of workers the database sees a handful of queries per second per distinct page, not one per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache, cached
from django.conf import settings

Answer = Callable[[Hashable, Callable[[], Any]], Any]
_caches: dict[tuple[float, int], Answer] = {}
_caches_lock = threading.Lock()


def _coalescing_cache(ttl_s: float, max_entries: int) -> Answer:
    """One cache per (ttl, size) setting, so a test that changes the setting gets a fresh, empty one."""
    cache = _caches.get((ttl_s, max_entries))
    if cache is not None:
        return cache  # every request after the first: no lock on the hot path
    with _caches_lock:  # Stampede: two first requests at once must share one cache, not build one each.
        if (ttl_s, max_entries) not in _caches:
            _caches[(ttl_s, max_entries)] = _new_cache(ttl_s, max_entries)
        return _caches[(ttl_s, max_entries)]


def _new_cache(ttl_s: float, max_entries: int) -> Answer:
    # Stampede: the condition makes every caller of a key being computed wait for that one computation.
    @cached(
        cache=TTLCache(maxsize=max_entries, ttl=ttl_s),
        key=lambda key, compute: key,
        condition=threading.Condition(),
    )
    def answer(key: Hashable, compute: Callable[[], Any]) -> Any:
        return compute()

    return answer


def catalog_cached(key: Hashable, compute: Callable[[], Any]) -> Any:
    """`compute()`'s answer for `key`, from at most CATALOG_CACHE_S ago; 0 switches the cache off."""
    if settings.CATALOG_CACHE_S <= 0:
        return compute()
    return _coalescing_cache(settings.CATALOG_CACHE_S, settings.CATALOG_CACHE_MAX_ENTRIES)(key, compute)


def catalog_cache_clear() -> None:
    with _caches_lock:
        _caches.clear()
