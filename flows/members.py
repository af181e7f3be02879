"""The member store behind the member_check flow.

A small static directory, seeded with the IDs the README documents. A lookup against the
business's own member API replaces it without touching the flow (the flow asks ``deps["members"]``).
"""
from __future__ import annotations

SEED = {
    "MEM123": {"name": "Ana Silva", "tier": "Gold"},
    "VIP999": {"name": "Victor Ito", "tier": "VIP"},
}


class StaticMembers:
    def __init__(self, members: dict | None = None):
        self._members = dict(SEED if members is None else members)

    def find(self, member_id: str) -> dict | None:
        return self._members.get(member_id)
