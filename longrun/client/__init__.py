"""The HTTP client of longrun, sync (``Client``) and async (``AsyncClient``), with a bounded poller."""

from __future__ import annotations

from longrun.client._async import AsyncClient
from longrun.client._sync import DEFAULT_URL, Client
from longrun.client._wire import OperationTypeInfo, Page, Unreachable

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "OperationTypeInfo", "Page", "Unreachable"]
