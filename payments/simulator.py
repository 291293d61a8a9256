"""A payment provider that can misbehave: its own HTTP service, with provider-side idempotency keys.

Run: `python -m payments.simulator --port 8100`. Controls (POST /_control, JSON):
    {"latency_ms": 0, "error_rate": 0.0, "outage": false, "decline_rate": 0.0}
    latency_ms    every API call sleeps this long first (provoke client timeouts)
    error_rate    this fraction of calls answer 500 *before* doing anything
    outage        every call answers 503 (the provider is down)
    decline_rate  this fraction of new charges are declined (402), a final answer
GET /_stats shows how many charges each idempotency key produced, so tests can prove "charged exactly once".
GET /v1/charges?idempotency_key=K answers the charge that key produced, or 404 when it never charged.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class ProviderState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_ms = 0
        self.error_rate = 0.0
        self.decline_rate = 0.0
        self.outage = False
        self.charges_by_key: dict[str, dict[str, Any]] = {}
        self.charges_by_id: dict[str, dict[str, Any]] = {}
        self.refunds_by_key: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def control(self, settings: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.latency_ms = int(settings.get("latency_ms", self.latency_ms))
            self.error_rate = float(settings.get("error_rate", self.error_rate))
            self.decline_rate = float(settings.get("decline_rate", self.decline_rate))
            self.outage = bool(settings.get("outage", self.outage))
            if settings.get("reset"):
                self.charges_by_key.clear()
                self.charges_by_id.clear()
                self.refunds_by_key.clear()
                self.requests = 0
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "decline_rate": self.decline_rate,
            "outage": self.outage,
            "charges": len(self.charges_by_id),
            "refunds": len(self.refunds_by_key),
            "requests": self.requests,
        }


STATE = ProviderState()


class ProviderHandler(BaseHTTPRequestHandler):
    server_version = "FakePay/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return data

    def _misbehave(self) -> bool:
        """Apply the configured latency, outage and error rate. True when the call was already answered."""
        with STATE.lock:
            STATE.requests += 1
            latency_ms, error_rate, outage = STATE.latency_ms, STATE.error_rate, STATE.outage
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if outage:
            self._send(503, {"error": "provider unavailable"})
            return True
        if error_rate and random.random() < error_rate:
            self._send(500, {"error": "internal provider error"})
            return True
        return False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif url.path == "/_stats":
            with STATE.lock:
                per_key = {key: charge["times_charged"] for key, charge in STATE.charges_by_key.items()}
                self._send(200, {**STATE.snapshot(), "charges_per_key": per_key})
        elif self._misbehave():
            return
        elif url.path == "/v1/charges":
            # Lookup by the shop's idempotency key: "did this key ever charge?" (the reconciliation job asks).
            key = parse_qs(url.query).get("idempotency_key", [""])[0]
            with STATE.lock:
                found = STATE.charges_by_key.get(key)
            self._send(200, found) if found else self._send(404, {"error": "no charge for this key"})
        elif url.path.startswith("/v1/charges/"):
            charge = STATE.charges_by_id.get(url.path.rsplit("/", 1)[-1])
            self._send(200, charge) if charge else self._send(404, {"error": "no such charge"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path == "/_control":
            self._send(200, STATE.control(self._json()))
            return
        # Read the body first: an unread body would corrupt the next request on this keep-alive connection.
        body = self._json()
        if self._misbehave():
            return
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._send(400, {"error": "Idempotency-Key header required"})
            return
        if self.path == "/v1/charges":
            self._charge(key, body)
        elif self.path == "/v1/refunds":
            self._refund(key, body)
        else:
            self._send(404, {"error": "not found"})

    def _charge(self, key: str, body: dict[str, Any]) -> None:
        with STATE.lock:
            existing = STATE.charges_by_key.get(key)
            if existing is not None:
                # Provider-side idempotency: the same key never charges twice; it returns the first result.
                self._send(200, existing)
                return
            declined = STATE.decline_rate and random.random() < STATE.decline_rate
            charge_id = f"ch_{uuid.uuid4().hex[:16]}"
            charge: dict[str, Any] = {
                "id": charge_id,
                "status": "declined" if declined else "succeeded",
                "amount": body.get("amount"),
                "currency": body.get("currency"),
                "reference": body.get("reference"),
                "idempotency_key": key,
                "times_charged": 0 if declined else 1,
            }
            STATE.charges_by_key[key] = charge
            STATE.charges_by_id[charge_id] = charge
        self._send(402 if declined else 201, charge)

    def _refund(self, key: str, body: dict[str, Any]) -> None:
        charge_id = str(body.get("charge_id"))
        with STATE.lock:
            existing = STATE.refunds_by_key.get(key)
            if existing is None:
                charge = STATE.charges_by_id.get(charge_id)
                if charge is None:
                    self._send(404, {"error": "no such charge"})
                    return
                existing = {
                    "id": f"re_{uuid.uuid4().hex[:16]}",
                    "charge_id": charge["id"],
                    "status": "succeeded",
                }
                STATE.refunds_by_key[key] = existing
        self._send(201, existing)


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), ProviderHandler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    server = serve(args.host, args.port)
    print(f"payment provider simulator on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
