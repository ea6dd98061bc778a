"""API tokens: stored by the hash of their secret, never the secret itself."""
from __future__ import annotations

from sqlalchemy import select

from workflows.model import ApiToken

from .. import tables as t
from .base import _from_row, _Repository, _update, _values


class SqlApiTokenRepository(_Repository):
    """API tokens, found by id, by the hash of their secret, or by user (oldest first)."""

    def add(self, token: ApiToken) -> ApiToken:
        token.id = self._insert(t.api_token, _values(token))
        return token

    def get(self, token_id: int) -> ApiToken | None:
        return self._get(t.api_token, token_id, lambda row: _from_row(ApiToken, row))

    def get_by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._connection.execute(select(t.api_token).where(t.api_token.c.token_hash == token_hash)).first()
        return _from_row(ApiToken, row) if row is not None else None

    def for_user(self, user_id: int) -> list[ApiToken]:
        rows = self._connection.execute(
            select(t.api_token).where(t.api_token.c.user_id == user_id).order_by(t.api_token.c.id))
        return [_from_row(ApiToken, row) for row in rows]

    def update(self, token: ApiToken) -> None:
        _update(self._connection, t.api_token, token, "API token")
