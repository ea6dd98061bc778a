"""People and API clients, with their roles."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Select, delete, insert, select

from workflows.model import User

from .. import tables as t
from .base import _from_row, _Repository, _update, _values


_LISTS = ("id", "roles", "settings")  # kept in tables of their own


class SqlUserRepository(_Repository):
    """People and API clients, with their roles (returned sorted by name)."""

    def add(self, user: User) -> User:
        user.id = self._insert(t.app_user, _values(user, without=_LISTS))
        self._write_roles_and_settings(user)
        return user

    def get_by_username(self, username: str) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.username == username))
        return found[0] if found else None

    def get_by_token_hash(self, token_hash: str) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.token_hash == token_hash))
        return found[0] if found else None

    def update(self, user: User) -> None:
        _update(self._connection, t.app_user, user, "User", without=_LISTS)
        self._connection.execute(delete(t.user_role).where(t.user_role.c.user_id == user.id))
        self._connection.execute(delete(t.user_setting).where(t.user_setting.c.user_id == user.id))
        self._write_roles_and_settings(user)

    def list(self) -> list[User]:
        return self._load(select(t.app_user).order_by(t.app_user.c.username))

    def _write_roles_and_settings(self, user: User) -> None:
        user.roles = sorted(set(user.roles))
        user.settings = sorted(set(user.settings))
        if user.roles:
            self._connection.execute(insert(t.user_role), [{"user_id": user.id, "role": role} for role in user.roles])
        if user.settings:
            self._connection.execute(insert(t.user_setting),
                                     [{"user_id": user.id, "setting": setting} for setting in user.settings])

    def _load(self, statement: Select) -> list[User]:
        rows = self._connection.execute(statement).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        roles = self._values_by_user(t.user_role.c.role, ids)
        settings = self._values_by_user(t.user_setting.c.setting, ids)
        return [_from_row(User, row, roles=roles[row.id], settings=settings[row.id]) for row in rows]

    def _values_by_user(self, column, user_ids: list[int]) -> dict[int, list[str]]:
        """A user's rows of a one-column side table (roles, settings), sorted, by user id."""
        owner = column.table.c.user_id
        values: dict[int, list[str]] = defaultdict(list)
        for user_id, value in self._connection.execute(
                select(owner, column).where(owner.in_(user_ids)).order_by(owner, column)):
            values[user_id].append(value)
        return values
