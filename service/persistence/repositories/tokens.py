"""API tokens: stored by the hash of their secret, never the secret itself."""
from __future__ import annotations

from sqlalchemy import bindparam, select

from workflows.model import ApiToken, User

from .. import tables as t
from .base import _from_labelled, _from_row, _labelled, _Repository, _update, _values


_token, _user, _role, _setting = t.api_token, t.app_user, t.user_role, t.user_setting
# A request's token, its user, and the user's roles and settings in one round trip (rows: roles x settings).
_HOLDER = (
    select(*_labelled(_token, "t_"), *_labelled(_user, "u_"), _role.c.role, _setting.c.setting)
    .join(_user, _user.c.id == _token.c.user_id)
    .outerjoin(_role, _role.c.user_id == _user.c.id)
    .outerjoin(_setting, _setting.c.user_id == _user.c.id)
    .where(_token.c.token_hash == bindparam("token_hash"))
)


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

    def with_holder(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The token with this hash and the user it belongs to (with roles and settings), or None."""
        rows = self._connection.execute(_HOLDER, {"token_hash": token_hash}).all()
        if not rows:
            return None
        first = rows[0]._asdict()
        token = _from_labelled(ApiToken, first, _token, "t_")
        user = _from_labelled(User, first, _user, "u_",
                              roles=sorted({row.role for row in rows if row.role is not None}),
                              settings=sorted({row.setting for row in rows if row.setting is not None}))
        return token, user

    def for_user(self, user_id: int) -> list[ApiToken]:
        rows = self._connection.execute(
            select(t.api_token).where(t.api_token.c.user_id == user_id).order_by(t.api_token.c.id))
        return [_from_row(ApiToken, row) for row in rows]

    def update(self, token: ApiToken) -> None:
        _update(self._connection, t.api_token, token, "API token")
