"""Drive a server with wrk (a C load generator), so the client does not eat the server's CPU."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "has_wrk", "wrk_get_ids", "wrk_post_json"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _run(url: str, script: str, connections: int, seconds: float) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", f.name, url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout
    Path(f.name).unlink()
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)[1])  # type: ignore[index]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(requests, seconds, _ms(p50[1]), _ms(p99[1]), int(non_2xx[1]) if non_2xx else 0)  # type: ignore[index]


def wrk_post_json(url: str, body: str, connections: int, seconds: float) -> WrkResult:
    """POST ``body`` as fast as ``connections`` connections allow, for ``seconds``."""
    script = f"wrk.method = 'POST'\nwrk.body = [[{body}]]\nwrk.headers['Content-Type'] = 'application/json'\n"
    return _run(url, script, connections, seconds)


def wrk_get_ids(url: str, path_prefix: str, ids: list[str], connections: int, seconds: float) -> WrkResult:
    """GET ``path_prefix + id`` for random ids from ``ids``."""
    listed = ",".join(f'"{i}"' for i in ids)
    script = (
        f"local ids = {{{listed}}}\n"
        "request = function()\n"
        f"  return wrk.format('GET', '{path_prefix}' .. ids[math.random(#ids)])\n"
        "end\n"
    )
    return _run(url, script, connections, seconds)
