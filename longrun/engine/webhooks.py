"""The webhook deliverer: POSTs each ended operation to its callback, signed, retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta

import httpx

from longrun.model import Clock, SystemClock, new_id
from longrun.store.base import Store
from longrun.store.webhooks import Callback, DeliveryAttempt

__all__ = ["SIGNATURE_HEADER", "WebhookDeliverer", "retry_delay", "sign"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Longrun-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Longrun-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): base, 2·base, 4·base… up to cap."""
    return float(min(cap, base * 2 ** (attempt - 1)))


class WebhookDeliverer:
    """Claims due callbacks from the store and delivers them on its own loop, never the worker's.

    At most ``concurrency`` POSTs are in flight, each bounded by ``timeout``; a callback is
    leased for longer than one attempt can take, so two processes never deliver it at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        secret: str | None = None,
        concurrency: int = 8,
        timeout: float = 10.0,
        max_attempts: int = 8,
        retry_base: float = 2.0,
        retry_cap: float = 600.0,
        poll_interval: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.secret = secret
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.poll_interval = poll_interval
        self.name = f"webhooks-{new_id()}"
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Start the claim loop."""
        if self._loop is not None:
            return
        self._stopping.clear()
        self._http = httpx.AsyncClient(
            transport=self._transport, timeout=self.timeout, follow_redirects=False
        )
        self._loop = asyncio.create_task(self._run(), name="longrun-webhooks")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; give deliveries in flight ``grace`` seconds (the rest are retried)."""
        if self._loop is None:
            return
        self._stopping.set()
        await asyncio.wait([self._loop], timeout=grace)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace)
        for task in (self._loop, *self._inflight):
            task.cancel()
        await asyncio.gather(self._loop, *self._inflight, return_exceptions=True)
        self._loop = None
        if self._http is not None:
            await self._http.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            claimed = 0
            free = self.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except Exception:
                    logger.exception("claiming webhook deliveries failed")
            if claimed < free or free <= 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval)

    async def _claim(self, limit: int) -> int:
        lease = self.timeout * 2 + 5.0  # longer than one attempt can take
        callbacks = await self.store.claim_callbacks(self.name, self.clock.now(), lease, limit)
        for callback in callbacks:
            task = asyncio.create_task(self._deliver(callback))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(callbacks)

    async def _deliver(self, callback: Callback) -> None:
        started = time.monotonic()
        status_code, error = await self._post(callback)
        duration_ms = int((time.monotonic() - started) * 1000)
        now = self.clock.now()
        delivered = status_code is not None and 200 <= status_code < 300
        last = callback.attempts >= self.max_attempts
        outcome = "DELIVERED" if delivered else "FAILED" if last else "RETRY"
        attempt = DeliveryAttempt(
            id=new_id(),
            operation_id=callback.operation_id,
            attempt=callback.attempts,
            time=now,
            url=callback.url,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            outcome=outcome,
        )
        state = "PENDING" if outcome == "RETRY" else outcome
        delay = retry_delay(callback.attempts, self.retry_base, self.retry_cap)
        await self.store.record_delivery(self.name, attempt, state, now + timedelta(seconds=delay))
        log = logger.info if delivered else logger.warning
        log(
            "webhook %s: attempt %d %s",
            callback.url,
            callback.attempts,
            outcome,
            extra={"operation_id": callback.operation_id},
        )

    async def _post(self, callback: Callback) -> tuple[int | None, str | None]:
        http = self._http
        if http is None:
            return None, "the deliverer is stopped"
        try:
            operation = await self.store.get(callback.operation_id)
            if operation is None:
                return None, "the operation no longer exists"
            body = operation.to_json().encode()
            headers = {"Content-Type": "application/json", "User-Agent": "longrun-webhooks/1"}
            secret = callback.secret or self.secret
            if secret:
                headers[SIGNATURE_HEADER] = sign(secret, body, int(self._unix(self.clock.now())))
            response = await asyncio.wait_for(
                http.post(callback.url, content=body, headers=headers), self.timeout
            )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return response.status_code, None if response.is_success else response.text[:500]

    @staticmethod
    def _unix(now: datetime) -> float:
        return now.timestamp()
