"""Who may use Casework, and who read which case: users, their roles and settings, API tokens, case reads.

Part of the schema of `tables` (same metadata); kept apart so that each module stays readable.
`case_read`, like `case_event`, is append-only: the database refuses UPDATE and DELETE on both
(triggers made by migration 0006).
"""
from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, false, text

from .tables import Id, JsonDocument, UtcDateTime, _case_id, metadata

app_user = Table(
    "app_user",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("password_hash", String(255)),
    # Wrong passwords in a row since the last good sign-in; at the limit the account locks.
    Column("failed_signins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", UtcDateTime()),
)

user_role = Table(
    "user_role",
    metadata,
    Column("user_id", Id, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(100), primary_key=True),
)

user_setting = Table(
    "user_setting",
    metadata,
    Column("user_id", Id, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("setting", String(100), primary_key=True),
)

# API tokens for systems: stored as a hash, each scoped to some of its user's roles, revoked by
# setting revoked_at (kept, so the audit trail can still name the token).
api_token = Table(
    "api_token",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("app_user.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    # The roles the token acts with (a subset of its user's); NULL: all of the user's roles.
    Column("roles", JsonDocument),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(150), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
    Column("revoked_by", String(150)),
    Column("revoked", Boolean, nullable=False, server_default=false()),
    Index(None, "user_id"),
)

# Who read a case, when, and through what (a page, the API, an export): the other half of the audit trail.
case_read = Table(
    "case_read",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(150), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("what", String(255), nullable=False),
    Index(None, "case_id", "id"),
    Index(None, "actor", "id"),
)
