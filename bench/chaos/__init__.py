"""Chaos and soak: real servers, workers and faults against longrun's promises."""
