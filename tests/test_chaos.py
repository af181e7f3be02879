"""Fault injection on real processes (tests/chaos.py): nothing lost, nothing twice.

``make test`` runs the short form (8 completed, 6 abandoned, one SIGKILL, one SIGTERM, one Redis
restart, a random-failing Graph API); CI runs ``make chaos-ci`` (CHAOS_SCALE=ci: 30 / 20, RQ's own
60 s heartbeat grace, any worker SIGKILLed); ``make chaos`` runs the long one (CHAOS_SCALE=long:
the same timings, 60 / 40 and more faults). All print the counts table.
"""
from __future__ import annotations

import os

import pytest

from chaos import Plan, Scenario

FORMS = {"short": Plan.short, "ci": Plan.ci, "long": Plan.long}
SCALE = os.environ.get("CHAOS_SCALE", "short")
if SCALE not in FORMS:
    raise ValueError(f"CHAOS_SCALE={SCALE!r}: expected one of {', '.join(FORMS)}")
PLAN = FORMS[SCALE]()


@pytest.mark.timeout(PLAN.time_limit)
def test_nothing_lost_nothing_twice_under_faults(tmp_path, keypair, capsys):
    plan = PLAN
    with Scenario(plan, tmp_path, keypair) as scenario:
        outcome = scenario.run()
    with capsys.disabled():
        print(f"\nchaos run (seed {plan.seed}):\n{outcome.table()}")
    assert outcome.violations() == [], f"{outcome.table()}\n{outcome.details()}"
    # The faults really happened and the run really exercised both kinds of Graph failure.
    assert outcome.faults["SIGKILL worker"] + outcome.faults["SIGTERM worker"] >= 1
    assert outcome.faults["Redis restart"] == plan.redis_restarts
    assert {"200", "400"} <= set(outcome.graph_answers) and ({"429", "500"} & set(outcome.graph_answers))
    assert len(outcome.completions) == plan.completed and len(outcome.abandoned) == plan.abandoned
