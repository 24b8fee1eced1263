"""Client processes: submit with idempotency keys and retries, cancel, hold, release and poll."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from longrun.client import Client, Unreachable
from longrun.model import LongrunError, Operation, utcnow

__all__ = ["MIX", "client_main"]

# operation type -> weight of a submit
MIX = {
    "chaos.ok": 40,
    "chaos.slow": 20,
    "chaos.fail": 10,
    "chaos.retry": 10,
    "chaos.hang": 5,
    "chaos.exit": 2,
}
_TERMINAL = {"SUCCEEDED", "SUCCEEDED_WITH_WARNINGS", "FAILED", "CANCELED", "MISSED"}
_TRIES = 8


class Load:
    """One client process's traffic, written to ``out`` as JSON lines."""

    def __init__(self, index: int, urls: list[str], out: Path, rate: float, seed: int) -> None:
        self.index = index
        self.urls = urls
        self.out = out.open("a", encoding="utf-8")
        self.rate = rate
        self.random = random.Random(seed)
        self.clients = [Client(url, timeout=3.0, poll_interval=0.1) for url in urls]
        self.counts: Counter[str] = Counter()
        self.mine: list[str] = []
        self.held: set[str] = set()
        self.seen_terminal: dict[str, str] = {}
        self.serial = 0

    def write(self, **fields: Any) -> None:
        self.out.write(json.dumps(fields) + "\n")
        self.out.flush()

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        """One request with client-side retries across the servers on a transport error or 5xx."""
        error: Exception | None = None
        for attempt in range(_TRIES):
            client = self.clients[
                (attempt + self.random.randrange(len(self.clients))) % len(self.clients)
            ]
            try:
                return getattr(client, verb)(*args, **kwargs)
            except Unreachable as exc:
                error = exc
            except LongrunError as exc:
                if exc.http_status < 500:
                    raise
                error = exc
            self.counts[f"{verb}_retried"] += 1
            time.sleep(min(2.0, 0.1 * 2**attempt))
        raise error or RuntimeError("no tries")

    def submit(self) -> None:
        self.serial += 1
        key = f"c{self.index}-{self.serial}-{self.random.getrandbits(32):08x}"
        first_round = self.index == 0 and self.serial <= len(MIX)
        if first_round:  # every type at least once, at once and never held
            op_type = list(MIX)[self.serial - 1]
        else:
            op_type = self.random.choices(list(MIX), weights=list(MIX.values()))[0]
        # scheduled a little later: something to hold
        later = not first_round and self.random.random() < 0.15
        kwargs: dict[str, Any] = {"idempotency_key": key}
        if later:
            kwargs["not_before"] = utcnow() + timedelta(seconds=self.random.uniform(1, 4))
        try:
            op = self._call("submit", op_type, {"n": self.serial}, **kwargs)
        except Exception as exc:
            self.counts["submit_failed"] += 1
            self.write(ev="submit_failed", key=key, error=repr(exc)[:200])
            return
        self.counts["submitted"] += 1
        self.mine.append(op.id)
        self.write(ev="accepted", key=key, op=op.id, type=op_type)
        if self.random.random() < 0.1:  # the same request again: the same operation back
            self._replay(key, op, op_type, kwargs)
        if later and self.random.random() < 0.6:
            self._act("hold", op.id)

    def _replay(self, key: str, first: Operation, op_type: str, kwargs: dict[str, Any]) -> None:
        try:
            again = self._call("submit", op_type, {"n": self.serial}, **kwargs)
        except Exception:
            return
        self.counts["replayed"] += 1
        self.write(ev="accepted", key=key, op=again.id, type=op_type)

    def _act(self, verb: str, op_id: str) -> None:
        try:
            op = self._call(verb, op_id)
        except LongrunError as exc:  # 409 on a state that moved on is expected
            self.counts[f"{verb}_refused_{exc.http_status}"] += 1
            return
        except Exception:
            self.counts[f"{verb}_failed"] += 1
            return
        self.counts[verb] += 1
        if verb == "hold":
            self.held.add(op_id)
        elif verb == "release":
            self.held.discard(op_id)
        self._observe(op)

    def _observe(self, op: Operation) -> None:
        """A status once seen terminal never changes."""
        status = op.status.value
        seen = self.seen_terminal.get(op.id)
        if seen is not None and seen != status:
            self.write(ev="violation", kind="terminal_changed", op=op.id, was=seen, now=status)
        if status in _TERMINAL:
            self.seen_terminal[op.id] = status

    def poll(self) -> None:
        try:
            op = self._call("get", self.random.choice(self.mine))
        except LongrunError as exc:
            self.counts[f"get_refused_{exc.http_status}"] += 1
            return
        except Exception:
            self.counts["get_failed"] += 1
            return
        self.counts["get"] += 1
        self._observe(op)

    def step(self) -> None:
        roll = self.random.random()
        if not self.mine or roll < 0.45:
            self.submit()
        elif roll < 0.55:
            self._act("cancel", self.random.choice(self.mine[-20:]))
        elif roll < 0.6 and self.held:
            self._act("release", self.random.choice(sorted(self.held)))
        else:
            self.poll()

    def run(self, until: float) -> None:
        pause = 0.45 / self.rate  # about ``rate`` submits a second
        while time.time() < until:
            self.step()
            time.sleep(self.random.uniform(0.5, 1.5) * pause)
        for op_id in sorted(self.held):  # most holds are released at the end; some stay held
            if self.random.random() < 0.5:
                self._act("release", op_id)
        self.write(ev="summary", counts=dict(self.counts), held=sorted(self.held))
        self.out.close()
        for client in self.clients:
            client.close()


def client_main(
    index: int, urls: list[str], out: str, rate: float, until: float, seed: int
) -> None:
    """The entry point of one client process."""
    Load(index, urls, Path(out), rate, seed).run(until)
