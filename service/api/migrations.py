"""API routes: what a new process version changes, and moving running cases onto it (supervisors)."""
from __future__ import annotations

from flask import g, request
from marshmallow import Schema, fields, validate

from workflows.handlers import migration

from . import bp
from .docs import documented
from .schemas import ID, one
from .views import _body, _services

_VERSION = validate.Range(min=1, max=1_000_000)


class VersionDiffQuery(Schema):
    from_version = fields.Int(data_key="from", validate=_VERSION,
                              metadata={"description": "Version to compare from; the one before `to` if left out"})
    to_version = fields.Int(data_key="to", validate=_VERSION,
                            metadata={"description": "Version to compare to; the latest if left out"})


class ElementChangeOut(Schema):
    process_id = fields.Str(metadata={"description": "The (called or sub-) process the element belongs to"})
    element_id = fields.Str()
    name = fields.Str()
    kind = fields.Str(metadata={"description": "In words, e.g. user task, timer event"})
    file = fields.Str(allow_none=True)
    changes = fields.List(fields.Str(), metadata={"description": "What changed, in words: due rule, form, timer ..."})


class VersionLabelOut(Schema):
    version = fields.Int()
    deployed_by = fields.Str()
    deployed_at = fields.DateTime()


class VersionDiffOut(Schema):
    process_id = fields.Str()
    old = fields.Nested(VersionLabelOut, data_key="from")
    new = fields.Nested(VersionLabelOut, data_key="to")
    summary = fields.Str(metadata={"description": 'e.g. "2 changed, 1 added"'})
    changed = fields.List(fields.Nested(ElementChangeOut))
    added = fields.List(fields.Nested(ElementChangeOut))
    removed = fields.List(fields.Nested(ElementChangeOut))


class MigrationPreviewQuery(Schema):
    to_version = fields.Int(data_key="to", validate=_VERSION,
                            metadata={"description": "Version to move to; the latest if left out"})


class MigrationCandidateOut(Schema):
    case_id = fields.Int()
    subject_name = fields.Str()
    subject_ref = fields.Str()
    status = fields.Function(lambda candidate: candidate.status.value)
    from_version = fields.Int()
    case_version = fields.Int(metadata={"description": "Send it back in expected_versions to refuse a case "
                                                       "that changed since this preview"})
    can_migrate = fields.Bool()
    reason = fields.Str(allow_none=True, metadata={"description": "Why the case cannot move, when it cannot"})
    changed_steps = fields.List(fields.Nested(ElementChangeOut),
                                metadata={"description": "What the new version changes at the steps the case is at"})


class MigrationPreviewOut(Schema):
    to_version = fields.Int()
    items = fields.List(fields.Nested(MigrationCandidateOut))


class MigrateCasesRequest(Schema):
    case_ids = fields.List(fields.Int(strict=True, validate=ID), required=True,
                           validate=validate.Length(min=1, max=migration.PREVIEW_LIMIT))
    to_version = fields.Int(strict=True, required=True, validate=_VERSION)
    expected_versions = fields.Dict(keys=fields.Int(), values=fields.Int(strict=True), load_default=None, metadata={
        "description": "Case id -> its version as previewed (case_version); a case changed since is refused"})


class MigrationResultOut(Schema):
    case_id = fields.Int()
    migrated = fields.Bool()
    from_version = fields.Int(allow_none=True)
    to_version = fields.Int()
    reason = fields.Str(allow_none=True, metadata={"description": "Why the case was refused; nothing in it changed"})


class MigrationResultList(Schema):
    items = fields.List(fields.Nested(MigrationResultOut))


@documented(bp, "/processes/<process_id>/diff", "GET",
            "What one version of a process changes against another, element by element (designers, supervisors)",
            query=VersionDiffQuery, response=VersionDiffOut, errors=(400, 403, 404))
def version_diff(process_id: str):
    diff = migration.version_diff(_services(), actor=g.user, process_id=process_id,
                                  **one(VersionDiffQuery).load(request.args.to_dict()))
    return one(VersionDiffOut).dump(diff)


@documented(bp, "/processes/<process_id>/migrations", "GET",
            "Which running cases of older versions can move to a version, and why not (a dry run; supervisors)",
            query=MigrationPreviewQuery, response=MigrationPreviewOut, errors=(400, 403, 404))
def migration_preview(process_id: str):
    chosen = one(MigrationPreviewQuery).load(request.args.to_dict()).get("to_version")
    target = migration.migration_target(_services(), actor=g.user, process_id=process_id, to_version=chosen)
    candidates = migration.migration_preview(_services(), actor=g.user, process_id=process_id,
                                             to_version=target.version)
    return one(MigrationPreviewOut).dump({"to_version": target.version, "items": candidates})


@documented(bp, "/processes/<process_id>/migrations", "POST",
            "Move running cases to a newer version, each on its own: migrated, or refused with why (supervisors)",
            body=MigrateCasesRequest, response=MigrationResultList, errors=(400, 403, 404))
def migrate_cases(process_id: str):
    results = migration.migrate_cases(_services(), actor=g.user, process_id=process_id, **_body(MigrateCasesRequest))
    return one(MigrationResultList).dump({"items": results})
