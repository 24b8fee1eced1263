"""The engine: the registry of operation types, the worker and the handler's Context."""
