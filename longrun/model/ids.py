"""Time-ordered operation ids (UUIDv7): listing by id is listing by time of acceptance."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from datetime import datetime

__all__ = ["id_floor", "is_operation_id", "new_id"]

_lock = threading.Lock()
_last_ms = 0
_seq = 0
# Seeded from the OS once per process (and again in a forked child, which would otherwise share
# the parent's sequence): no syscall, and no GIL release, per id.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id() -> str:
    """A new UUIDv7 string; strictly increasing within one process, even within a millisecond."""
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                ms += 1
                _seq = 0
        else:
            _seq = 0
        _last_ms = ms
        seq = _seq
        rand = _random.getrandbits(62)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    text = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, without the object
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def id_floor(moment: datetime) -> str:
    """A string that sorts after every id made before ``moment``'s millisecond and before every
    id made in it or later: ``id < id_floor(t)`` selects by time through the id's own index."""
    text = f"{int(moment.timestamp() * 1000) & 0xFFFF_FFFF_FFFF:012x}"
    return f"{text[:8]}-{text[8:]}-"


def is_operation_id(text: str) -> bool:
    """True when ``text`` is a well-formed operation id (any UUID in canonical lower-case form)."""
    if len(text) != 36:
        return False
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
