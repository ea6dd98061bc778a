"""CSV downloads: rows streamed in chunks, every free-text cell defused for spreadsheets."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

CHUNK_ROWS = 200


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """Yield a CSV document a few hundred rows at a time, so a long export starts at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """Text as a spreadsheet will not run it: a leading =, +, - or @ makes a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
