"""What a log line may carry of personal data: phone numbers masked, ids shortened."""
from __future__ import annotations


def phone(number: str | None) -> str:
    """``16505551234`` → ``165******34``: enough to tell two users apart in a log, not to call one."""
    if not number:
        return "-"
    digits = str(number)
    if len(digits) <= 5:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def wamid(message_id: str | None) -> str:
    """wamids share a long common prefix; the tail is what tells them apart."""
    if not message_id:
        return "-"
    return f"…{message_id[-12:]}" if len(message_id) > 12 else message_id
