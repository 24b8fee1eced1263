"""longrun: run long-running operations and tell everyone, at every moment, where each one stands."""
