"""Money is integer minor units (cents) everywhere; text only at the edge, for a screen."""


def money(minor: int, symbol: str = "$") -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{symbol}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"
