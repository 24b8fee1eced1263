"""``python -m bench.chaos --engine sqlite|postgres --duration 120 [--soak]``: run and report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.chaos.runner import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults")
    parser.add_argument("--soak", action="store_true", help="also sample RSS, fds, DB size")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.0, help="submits a second per client")
    parser.add_argument("--settle", type=float, default=90.0)
    parser.add_argument("--sample-interval", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--retention", type=float, default=None, help="seconds (soak: 60)")
    parser.add_argument(
        "--tombstone-retention", type=float, default=None, help="seconds (soak: 300)"
    )
    parser.add_argument("--home", type=Path, default=None, help="keep logs and records here")
    args = parser.parse_args(argv)
    if args.engine == "postgres" and not os.environ.get("LONGRUN_TEST_POSTGRES"):
        script = Path(__file__).resolve().parents[2] / "scripts" / "with-postgres"
        os.execv(str(script), [str(script), sys.executable, "-m", "bench.chaos", *sys.argv[1:]])
    options = Options(
        engine=args.engine,
        duration=args.duration,
        soak=args.soak,
        servers=args.servers,
        workers=args.workers,
        clients=args.clients,
        rate=args.rate,
        settle=args.settle,
        sample_interval=args.sample_interval,
        seed=args.seed,
        home=args.home,
        retention_seconds=args.retention,
        tombstone_retention_seconds=args.tombstone_retention,
    )
    result = run(options)
    print(json.dumps(result.summary(), indent=2, default=str))
    print(f"chaos: {result.violations} invariant violations; records in {result.home}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
