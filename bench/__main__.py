"""`make bench`: every benchmark of the product, at 0 ms and at the latencies the world has.

Each figure runs twice where a remote party is involved: with the stand-in answering at once
(0 ms: what the code costs) and at a realistic latency (a business API at 200 ms, Meta's Graph
API at 300 ms: what the defaults do when the world is slow). Every section header and every
output line says which.

Shorter than the modules' own defaults so the whole run stays near 10 minutes on 2 cores; for
steadier figures, ``BENCH_ROUNDS`` (interleaved rounds, default 2) and ``BENCH_DURATION``
(measured seconds per run, default 4) apply to the endpoint benchmarks, and each module run
alone (``python -m bench.endpoint --help``) takes its own options.
"""
from __future__ import annotations

import importlib
import os
import sys
import time

ROUNDS = os.environ.get("BENCH_ROUNDS", "2")
DURATION = os.environ.get("BENCH_DURATION", "4")
TIMED = ["--rounds", ROUNDS, "--duration", DURATION]

# (module, argv or None for main(), the latency it runs at, environment for that run: the latency
# settings always, the durations unless the user set them).
PLAN = (
    ("bench.endpoint", TIMED, "business API 0 ms (in-process), vs pywa and the floor", {}),
    ("bench.breakdown", None, "business API 0 ms, in-process WSGI calls", {}),
    ("bench.latency", [*TIMED, "--api-ms", "0", "--warmup", "1"], "business API 0 ms, over loopback HTTP",
     {}),
    ("bench.latency", [*TIMED, "--api-ms", "200"], "business API 200 ms", {}),
    ("bench.lookups", [], "business API 0 ms, and one that hangs past the deadline", {}),
    ("bench.webhooks", None, "Graph API 0 ms",
     {"BENCH_GRAPH_LATENCY_MS": "0", "BENCH_SECONDS": "4", "BENCH_STEADY_SECONDS": "8"}),
    # At 300 ms a worker process sends ~3 confirmations a second: fewer completions, and the steady
    # phase at Meta's default 80/s, so a dyno short of concurrency shows it without taking 10 minutes.
    ("bench.webhooks", None, "Graph API 300 ms",
     {"BENCH_GRAPH_LATENCY_MS": "300", "BENCH_SECONDS": "2", "BENCH_STEADY_RATE": "80",
      "BENCH_STEADY_SECONDS": "5"}),
    # The same drain with and without the SQL writes (issue 20), against the commit before them.
    # Its baseline (the commit before the records store) predates the threaded worker, so both
    # trees run the same process model, one job at a time in 4 processes: the ratio is then the SQL
    # writes' own CPU cost, the worst case (at Graph's 300 ms a thread waits, the CPU does not).
    ("bench.records", None, "Graph API 0 ms, records in SQLite, 4 processes x 1 thread in both trees",
     {"BENCH_GRAPH_LATENCY_MS": "0", "BENCH_SECONDS": "2", "BENCH_ROUNDS": "1", "WORKER_PROCESSES": "4",
      "WORKER_THREADS": "1"}),
    ("bench.recovery", None, "stand-ins answer at once (0 ms)", {}),
    ("bench.dashboard", None, "no remote party (Redis only)", {}),
)


def main() -> int:
    started, failed = time.monotonic(), []
    for name, argv, latency, env in PLAN:
        module = importlib.import_module(name)
        print(f"\n== {name} — {latency} (load average {os.getloadavg()[0]:.2f})", flush=True)
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update({key: value for key, value in env.items()
                           if key.endswith("LATENCY_MS") or key not in os.environ})
        try:
            module.main() if argv is None else module.main(argv)
        except Exception as exc:  # one benchmark that fails must not hide the others' figures
            failed.append(f"{name} ({latency})")
            print(f"\n== {name} — {latency}: FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    print(f"\nmake bench: done in {time.monotonic() - started:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
