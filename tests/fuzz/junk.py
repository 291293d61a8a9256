"""Junk a stranger sends, by class: the hostile crawl (HTML) and test_hostile_input.py (API) both use it."""

from __future__ import annotations

# Raw (already percent-encoded) values, so the crawl can send what no well-behaved client would.
JUNK: dict[str, list[str]] = {
    "nul": ["%00", "a%00b", "%00" * 20],
    "huge number": ["9" * 400, "99999999999999999999", "1e309", "2147483648", "9223372036854775808"],
    "negative number": ["-1", "-99999999999999999999", "-0", "-9223372036854775809"],
    "10,000 characters": ["a" * 10_000, "%41" * 3_400],
    "bad percent-encoding": ["%E0%A4%A", "%", "%zz", "%ff%fe", "%C0%AF", "%ED%A0%80", "%%%", "%u0041"],
    "unicode": ["%F0%9F%98%80", "%E2%80%AE%E2%80%8Bx", "a" + "%CC%81" * 60, "%EF%BB%BF", "%C3%BC"],
    "markup and injection": [
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "%27%20OR%201%3D1--",
        "..%2F..%2Fetc%2Fpasswd",
        "%0D%0ASet-Cookie%3A%20x%3Dy",
        "%7B%7B7*7%7D%7D",
    ],
    "wrong types": ["", "[]", "%7B%7D", "true", "null", "NaN", "0x10", "1.5", "1,2", "%20%20"],
}
