"""What a log line may carry of an id: shortened. Phone numbers are masked by
``flows.identity.mask_phone``, the one way to mask one."""
from __future__ import annotations


def wamid(message_id: str | None) -> str:
    """wamids share a long common prefix; the tail is what tells them apart."""
    if not message_id:
        return "-"
    return f"…{message_id[-12:]}" if len(message_id) > 12 else message_id
