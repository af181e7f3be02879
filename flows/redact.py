"""What a log line may carry of an id: shortened. Phone numbers are masked by
``flows.identity.mask_phone``, the one way to mask one."""
from __future__ import annotations

import logging


def redis_unavailable(logger, what: str, exc: BaseException, then: str = "", *,
                      level: int = logging.WARNING, **ids) -> None:
    """The one wording for "Redis did not answer": ``[ids] <what>: Redis unavailable (<class>)[;
    <then>]``. The exception's class only: its text can carry a host name or a key."""
    where = "".join(f"{k}={v} " for k, v in ids.items())
    logger.log(level, "%s%s: Redis unavailable (%s)%s", where, what, type(exc).__name__,
               f"; {then}" if then else "")


def wamid(message_id: str | None) -> str:
    """wamids share a long common prefix; the tail is what tells them apart."""
    if not message_id:
        return "-"
    return f"…{message_id[-12:]}" if len(message_id) > 12 else message_id
