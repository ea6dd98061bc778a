"""`casework audit export`: a case's or a person's audit trail, changes and reads merged, as CSV or JSON.

The trail is read and written a batch at a time, so a case with a hundred thousand rows is
never held whole. JSON is one array of objects with the CSV's columns, written as it is read.
The export is itself audited: each case it covers gets an `export` read by `cli:<OS user>`.
"""
from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import click

from workflows.audit import TrailEntry, export_trail
from workflows.errors import CaseworkError

from .cli import _app, _services, main
from .web.csv_export import csv_chunks, spreadsheet_safe

COLUMNS = ("at", "actor", "case_id", "action", "channel", "detail")
FORMATS = ("csv", "json")


@main.group()
def audit():
    """Audit trail commands."""


@audit.command("export")
@click.option("--case", "case_ref", metavar="ID", help="The case whose trail to export.")
@click.option("--user", "username", metavar="USERNAME", help="The person whose actions and reads to export.")
@click.option("--format", "output_format", default="csv", show_default=True, metavar="csv|json",
              help="CSV, or JSON (one array of objects with the CSV's columns).")
@click.option("--since", metavar="ISO", help="From this time on, e.g. 2026-03-01 or 2026-03-01T08:00+01:00 (UTC if no zone).")
@click.option("--until", metavar="ISO", help="Before this time (same forms as --since).")
@click.option("--output", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE (replaced only when the export is complete) instead of standard output.")
def export(case_ref: str | None, username: str | None, output_format: str, since: str | None, until: str | None,
           output: Path | None):
    """Export the changes and reads of a case (--case) or by a person (--user), oldest first.

    Columns: at (ISO 8601, UTC), actor, case_id, action ('read' or the kind of change),
    channel (page, api or export, for reads), detail (what was read, or the change as JSON).
    """
    if (case_ref is None) == (username is None):
        raise click.ClickException("Give either --case ID or --user USERNAME (one of them, not both).")
    output_format = output_format.strip().lower()
    if output_format not in FORMATS:
        raise click.ClickException(f"--format '{output_format}' is not offered: choose csv or json.")
    case_id = _case_number(case_ref) if case_ref is not None else None
    bounds = {"since": _moment("--since", since), "until": _moment("--until", until)}
    app = _app()
    try:
        entries = export_trail(_services(app), case_id=case_id, username=username, **bounds,
                               exported_by=_operator())
    except CaseworkError as err:
        raise click.ClickException(err.message) from err
    with closing(entries):
        count = _write(entries, output_format, output)
    whose = f"case {case_id}" if case_id is not None else f"user {username}"
    click.echo(f"Exported {count} audit entr{'y' if count == 1 else 'ies'} of {whose}"
               + (f" to {output}." if output else "."), err=True)


def _case_number(text: str) -> int:
    digits = text.strip().removeprefix("#")
    if not digits.isdigit() or len(digits) > 18:
        raise click.ClickException(f"--case '{text}' is not a case number: give digits, e.g. --case 1042.")
    return int(digits)


def _moment(option: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or time; one without a zone is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.ClickException(f"{option} '{text}' is not an ISO 8601 date or time: "
                                   "give e.g. 2026-03-01 or 2026-03-01T08:00:00+01:00.") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _operator() -> str:
    """Who runs the export, as the reads it records name them."""
    try:
        return f"cli:{getpass.getuser()}"[:150]
    except (OSError, KeyError):  # no login name in the environment and no password entry (some containers)
        return "cli"


def _write(entries: Iterable[TrailEntry], output_format: str, output: Path | None) -> int:
    """Write the export to the file (through a temporary file beside it) or to standard output; return its length."""
    counted = _Counted(entries)
    chunks = _csv(counted) if output_format == "csv" else _json(counted)
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return counted.count
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=output.parent,
                                         prefix=f".{output.name}.", suffix=".part", delete=False) as file:
            partial = Path(file.name)
            try:
                file.writelines(chunks)
            except BaseException:
                file.close()
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, output)
    except OSError as err:
        raise click.ClickException(f"Cannot write {output}: {err.strerror or err}.") from err
    return counted.count


class _Counted:
    def __init__(self, entries: Iterable[TrailEntry]):
        self._entries, self.count = entries, 0

    def __iter__(self) -> Iterator[TrailEntry]:
        for entry in self._entries:
            self.count += 1
            yield entry


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _csv(entries: Iterable[TrailEntry]) -> Iterator[str]:
    return csv_chunks(COLUMNS, (
        [_utc(entry.at), spreadsheet_safe(entry.actor), entry.case_id, spreadsheet_safe(entry.action),
         entry.channel or "", spreadsheet_safe(entry.detail)]
        for entry in entries
    ))


def _json(entries: Iterable[TrailEntry]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for entry in entries:
        yield separator + json.dumps({
            "at": _utc(entry.at), "actor": entry.actor, "case_id": entry.case_id, "action": entry.action,
            "channel": entry.channel, "detail": entry.detail,
        }, ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"
