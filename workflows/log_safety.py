"""What the logs may say about a failure: its kind and where it happened, never its message.

An exception's message can carry case data: SpiffWorkflow quotes task data in its errors, a
database error quotes the statement's parameters, a KeyError names the missing value. The
incident kept in the database holds the message for the people allowed to read the case.
"""
from __future__ import annotations

import traceback


def failure_outline(error: BaseException) -> str:
    """Describe an exception for a log: each chained exception's type and stack frames, with no message."""
    lines, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        lines.append(f"{kind.__module__}.{kind.__qualname__} (message withheld: it may hold case data)\n")
        lines.extend(traceback.format_tb(current.__traceback__))
        if current.__cause__ is not None:
            lines.append("caused by:\n")
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            lines.append("raised while handling:\n")
            current = current.__context__
        else:
            current = None
    return "".join(lines).rstrip("\n")
