"""`make bench`: the endpoint benchmark, then the others that exist on this branch."""
from __future__ import annotations

import importlib
import sys
import time

# (module, required): every benchmark of the product, in the order the README reports them.
MODULES = (("bench.endpoint", True), ("bench.breakdown", True), ("bench.lookups", True),
           ("bench.webhooks", True), ("bench.records", True), ("bench.recovery", True),
           ("bench.dashboard", True))


def main() -> int:
    started = time.monotonic()
    for name, required in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if required or exc.name != name:  # a missing dependency inside it is a real failure
                raise
            print(f"\n== {name}: not on this branch, skipped")
            continue
        print(f"\n== {name}")
        module.main()
    print(f"\nmake bench: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
