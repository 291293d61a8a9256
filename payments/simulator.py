"""A payment provider that can misbehave: its own HTTP service, with provider-side idempotency keys.

Run: `python -m payments.simulator --port 8100 [--control-token T]` (or env PAYMENT_SIMULATOR_CONTROL_TOKEN=T).
With a token, `/_control` and `/_stats` answer only `Authorization: Bearer T` (403 otherwise); without one they
are open (local development and tests).

Standing controls (POST /_control, JSON):
    {"latency_ms": 0, "error_rate": 0.0, "outage": false, "decline_rate": 0.0}
    latency_ms    every API call sleeps this long first (provoke client timeouts)
    error_rate    this fraction of calls answer 500 *before* doing anything
    outage        every call answers 503 (the provider is down)
    decline_rate  this fraction of new charges are declined (402), a final answer
    reset         forget every charge, refund, queued fault and counter

Faults on request, deterministic (POST /_control {"faults": [{"kind": K, "calls": N, "on": E}, ...]}): each is
queued and applies to the next N API calls to endpoint E ("charge", "refund", "lookup" or "any", the default).
A call takes at most one fault of each phase: an outcome fault (what the charge becomes) and a delivery fault
(what happens to the call and its answer).
    decline        outcome: a new charge is declined (402)
    odd_status     outcome: nothing is charged (a lookup: nothing is read); the answer is 200 with a status
                   that is neither success nor decline ("processing")
    error          delivery: 500 before any work
    unavailable    delivery: 503 before any work (a one-call outage)
    timeout        delivery: hold the call `delay_ms` (default 1000), then drop the connection; no work done
    lose_answer    delivery: do the work, then drop the connection without answering
    late_answer    delivery: do the work, then wait `delay_ms` before answering (past the client's timeout)
    ok_status      delivery: answer HTTP 200 whatever happened; only the body says what (some providers do)

A repeated Idempotency-Key never charges again: it gets the ORIGINAL status code and body back (201 for a
success, 402 for a decline), as real providers replay.
GET /_stats shows how many charges each key produced, its status, the refunds per charged key and the faults
applied, so tests can prove "charged exactly once, refunded at most once".
GET /v1/charges?idempotency_key=K answers the charge that key produced (200, its status in the body), or 404
when it never charged.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONTROL_TOKEN_ENV = "PAYMENT_SIMULATOR_CONTROL_TOKEN"
ENDPOINTS = ("charge", "refund", "lookup")
OUTCOME_FAULTS = frozenset({"decline", "odd_status"})
DELIVERY_FAULTS = frozenset({"error", "unavailable", "timeout", "lose_answer", "late_answer", "ok_status"})
FAULT_KINDS = OUTCOME_FAULTS | DELIVERY_FAULTS
DEFAULT_FAULT_DELAY_MS = 1000


@dataclass
class Fault:
    kind: str
    calls: int = 1
    on: str = "any"
    delay_ms: int = DEFAULT_FAULT_DELAY_MS

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Fault:
        if not isinstance(raw, dict):
            raise ValueError(f"a fault is an object with a kind, not {raw!r}")
        fault = cls(
            kind=str(raw.get("kind")),
            calls=int(raw.get("calls", 1)),
            on=str(raw.get("on", "any")),
            delay_ms=int(raw.get("delay_ms", DEFAULT_FAULT_DELAY_MS)),
        )
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {sorted(FAULT_KINDS)}")
        if fault.on not in (*ENDPOINTS, "any"):
            raise ValueError(f"unknown endpoint {fault.on!r}; one of {[*ENDPOINTS, 'any']}")
        if fault.calls < 1 or fault.delay_ms < 0:
            raise ValueError("calls must be >= 1 and delay_ms >= 0")
        return fault

    def matches(self, endpoint: str) -> bool:
        # Only a new charge can be declined; a charge or a lookup can be left undecided; a refund neither.
        if self.kind == "decline" and endpoint != "charge":
            return False
        if self.kind == "odd_status" and endpoint not in ("charge", "lookup"):
            return False
        return self.on in ("any", endpoint)


@dataclass(frozen=True)
class CallFaults:
    """The faults one API call took from the queue: at most one outcome and one delivery fault."""

    outcome: Fault | None = None
    delivery: Fault | None = None

    def delivery_is(self, kind: str) -> bool:
        return self.delivery is not None and self.delivery.kind == kind


class ProviderState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_ms = 0
        self.error_rate = 0.0
        self.decline_rate = 0.0
        self.outage = False
        self.charges_by_key: dict[str, dict[str, Any]] = {}
        self.charges_by_id: dict[str, dict[str, Any]] = {}
        # The status code each key's first answer carried, replayed for every repeat of that key.
        self.status_code_by_key: dict[str, int] = {}
        self.refunds_by_key: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.faults_applied: Counter[str] = Counter()
        self.requests = 0

    def control(self, settings: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(settings, dict) or not isinstance(settings.get("faults", []), list):
            raise ValueError('controls are a JSON object; "faults" a list of objects')
        faults = [Fault.parse(raw) for raw in settings["faults"]] if "faults" in settings else []
        # Everything is parsed before anything changes: a ValueError here is a 400 with nothing changed.
        latency_ms = int(settings.get("latency_ms", self.latency_ms))
        error_rate = float(settings.get("error_rate", self.error_rate))
        decline_rate = float(settings.get("decline_rate", self.decline_rate))
        with self.lock:
            if settings.get("reset"):
                self.charges_by_key.clear()
                self.charges_by_id.clear()
                self.status_code_by_key.clear()
                self.refunds_by_key.clear()
                self.faults.clear()
                self.faults_applied.clear()
                self.requests = 0
            self.latency_ms, self.error_rate, self.decline_rate = latency_ms, error_rate, decline_rate
            self.outage = bool(settings.get("outage", self.outage))
            if settings.get("clear_faults"):
                self.faults.clear()
            self.faults.extend(faults)
            return self.snapshot()

    def take_faults(self, endpoint: str) -> CallFaults:
        """Take the first queued fault of each phase that applies to this call (deterministic, in queue order)."""
        with self.lock:
            taken: dict[str, Fault] = {}
            for fault in list(self.faults):
                phase = "outcome" if fault.kind in OUTCOME_FAULTS else "delivery"
                if phase in taken or not fault.matches(endpoint):
                    continue
                taken[phase] = fault
                self.faults_applied[fault.kind] += 1
                fault.calls -= 1
                if fault.calls == 0:
                    self.faults.remove(fault)
            return CallFaults(outcome=taken.get("outcome"), delivery=taken.get("delivery"))

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "decline_rate": self.decline_rate,
            "outage": self.outage,
            "charges": len(self.charges_by_id),
            "refunds": len(self.refunds_by_key),
            "requests": self.requests,
            "pending_faults": [f"{fault.kind} x{fault.calls} on {fault.on}" for fault in self.faults],
            "faults_applied": dict(self.faults_applied),
        }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            refunds_per_key: Counter[str] = Counter()
            for refund in self.refunds_by_key.values():
                refunds_per_key[self.charges_by_id[refund["charge_id"]]["idempotency_key"]] += 1
            return {
                **self.snapshot(),
                "charges_per_key": {key: charge["times_charged"] for key, charge in self.charges_by_key.items()},
                "charge_status_per_key": {key: charge["status"] for key, charge in self.charges_by_key.items()},
                "refunds_per_key": dict(refunds_per_key),
            }


STATE = ProviderState()


def replay_status_code(state: ProviderState, key: str) -> int:
    """The status code a repeat of `key` gets: the one its first answer carried.

    Declined card ends up paid: replaying a stored decline as 200 made a client that trusts the HTTP code
    settle it as a success. A repeat is answered exactly as the first call was (402 stays 402).
    """
    return state.status_code_by_key[key]


class ProviderHandler(BaseHTTPRequestHandler):
    server_version = "FakePay/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, a kept-alive client waits for the
    # delayed ACK (~40 ms) before the body arrives, on every call.
    disable_nagle_algorithm = True
    server: ProviderServer

    @property
    def state(self) -> ProviderState:
        return self.server.state

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (a late answer): nobody is listening any more

    def _drop(self) -> None:
        """Close the connection without an answer: to the client, the call's outcome is unknown."""
        self.close_connection = True

    def _json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return data

    def _authorised_for_control(self) -> bool:
        """Open without a token (local dev, tests); with one, only `Authorization: Bearer <token>`."""
        token = self.server.control_token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        # Test double on the production path: anyone who can reach the simulator could otherwise switch
        # declines on, reset the ledger or read every key. Constant-time compare: the token is a secret.
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _misbehave(self, faults: CallFaults) -> bool:
        """Apply latency, outage, error rate and before-work faults. True when the call was already answered."""
        with self.state.lock:
            self.state.requests += 1
            latency_ms, error_rate, outage = self.state.latency_ms, self.state.error_rate, self.state.outage
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if outage or faults.delivery_is("unavailable"):
            self._send(503, {"error": "provider unavailable"})
            return True
        if faults.delivery_is("error") or (error_rate and random.random() < error_rate):
            self._send(500, {"error": "internal provider error"})
            return True
        if faults.delivery is not None and faults.delivery.kind == "timeout":
            time.sleep(faults.delivery.delay_ms / 1000)
            self._drop()
            return True
        return False

    def _answer(self, status: int, body: dict[str, Any], faults: CallFaults) -> None:
        """Deliver the answer to work that was done, unless a delivery fault loses or delays it."""
        if faults.delivery_is("lose_answer"):
            self._drop()
            return
        if faults.delivery is not None and faults.delivery.kind == "late_answer":
            time.sleep(faults.delivery.delay_ms / 1000)
        self._send(200 if faults.delivery_is("ok_status") else status, body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
            return
        if url.path == "/_stats":
            if not self._authorised_for_control():
                self._send(403, {"error": "control token required"})
                return
            self._send(200, self.state.stats())
            return
        faults = self.state.take_faults("lookup") if url.path == "/v1/charges" else CallFaults()
        if self._misbehave(faults):
            return
        if url.path == "/v1/charges":
            # Lookup by the shop's idempotency key: "did this key ever charge?" (the reconciliation job asks).
            # The charge is a resource here: 200 whatever its outcome, which its `status` field carries.
            key = parse_qs(url.query).get("idempotency_key", [""])[0]
            with self.state.lock:
                found = self.state.charges_by_key.get(key)
            if faults.outcome is not None:
                self._answer(200, {"id": "", "status": "processing", "idempotency_key": key}, faults)
            elif found:
                self._answer(200, found, faults)
            else:
                self._answer(404, {"error": "no charge for this key"}, faults)
        elif url.path.startswith("/v1/charges/"):
            charge = self.state.charges_by_id.get(url.path.rsplit("/", 1)[-1])
            self._send(200, charge) if charge else self._send(404, {"error": "no such charge"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        # Read the body first: an unread body would corrupt the next request on this keep-alive connection.
        try:
            body = self._json()
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        if self.path == "/_control":
            if not self._authorised_for_control():
                self._send(403, {"error": "control token required"})
                return
            try:
                self._send(200, self.state.control(body))
            except (TypeError, ValueError) as error:
                self._send(400, {"error": str(error)})
            return
        endpoint = {"/v1/charges": "charge", "/v1/refunds": "refund"}.get(self.path)
        faults = self.state.take_faults(endpoint) if endpoint else CallFaults()
        if self._misbehave(faults):
            return
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._send(400, {"error": "Idempotency-Key header required"})
            return
        if endpoint == "charge":
            self._charge(key, body, faults)
        elif endpoint == "refund":
            self._refund(key, body, faults)
        else:
            self._send(404, {"error": "not found"})

    def _charge(self, key: str, body: dict[str, Any], faults: CallFaults) -> None:
        with self.state.lock:
            existing = self.state.charges_by_key.get(key)
            if existing is not None:
                # Provider-side idempotency: the same key never charges twice; it gets the first answer again,
                # status code and body.
                status, answer = replay_status_code(self.state, key), existing
            elif faults.outcome is not None and faults.outcome.kind == "odd_status":
                # Nothing charged, nothing stored: an answer that is neither yes nor no.
                status, answer = 200, {"id": "", "status": "processing", "idempotency_key": key}
            else:
                declined = (faults.outcome is not None and faults.outcome.kind == "decline") or bool(
                    self.state.decline_rate and random.random() < self.state.decline_rate
                )
                charge_id = f"ch_{uuid.uuid4().hex[:16]}"
                answer = {
                    "id": charge_id,
                    "status": "declined" if declined else "succeeded",
                    "amount": body.get("amount"),
                    "currency": body.get("currency"),
                    "reference": body.get("reference"),
                    "idempotency_key": key,
                    "times_charged": 0 if declined else 1,
                }
                status = 402 if declined else 201
                self.state.charges_by_key[key] = answer
                self.state.charges_by_id[charge_id] = answer
                self.state.status_code_by_key[key] = status
        self._answer(status, answer, faults)

    def _refund(self, key: str, body: dict[str, Any], faults: CallFaults) -> None:
        charge_id = str(body.get("charge_id"))
        with self.state.lock:
            existing = self.state.refunds_by_key.get(key)
            if existing is None:
                charge = self.state.charges_by_id.get(charge_id)
                if charge is None or charge["status"] != "succeeded":
                    self._send(404, {"error": "no such successful charge"})
                    return
                existing = {
                    "id": f"re_{uuid.uuid4().hex[:16]}",
                    "charge_id": charge["id"],
                    "status": "succeeded",
                }
                self.state.refunds_by_key[key] = existing
        self._answer(201, existing, faults)


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], *, control_token: str | None = None, state: ProviderState | None = None
    ) -> None:
        super().__init__(address, ProviderHandler)
        self.control_token = control_token or None
        # One ledger per process unless a caller brings its own (tests that run two simulators side by side).
        self.state = state if state is not None else STATE


def serve(
    host: str, port: int, *, control_token: str | None = None, state: ProviderState | None = None
) -> ProviderServer:
    return ProviderServer((host, port), control_token=control_token, state=state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--control-token",
        default=os.environ.get(CONTROL_TOKEN_ENV) or None,
        help=f"require 'Authorization: Bearer <token>' on /_control and /_stats (default: ${CONTROL_TOKEN_ENV})",
    )
    args = parser.parse_args()
    server = serve(args.host, args.port, control_token=args.control_token)
    guarded = "token required" if args.control_token else "open"
    print(f"payment provider simulator on http://{args.host}:{args.port} (controls {guarded})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
