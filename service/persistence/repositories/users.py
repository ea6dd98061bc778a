"""People and API clients, with their roles."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import Select, case, delete, insert, literal, null, or_, select, update

from workflows.model import User

from .. import tables as t
from .base import _from_row, _Repository, _update, _values


_LISTS = ("id", "roles", "settings")  # kept in tables of their own
# Changed only by the atomic statements below, never written back from a record read earlier.
_LOCK = ("failed_signins", "locked_until")


class SqlUserRepository(_Repository):
    """People and API clients, with their roles (returned sorted by name)."""

    def add(self, user: User) -> User:
        user.id = self._insert(t.app_user, _values(user, without=_LISTS + _LOCK))
        self._write_roles_and_settings(user)
        return user

    def get_by_username(self, username: str) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.username == username))
        return found[0] if found else None

    def get(self, user_id: int) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.id == user_id))
        return found[0] if found else None

    def update(self, user: User) -> None:
        """Write a user's name, activity, password, roles and settings (not the sign-in lock-out)."""
        _update(self._connection, t.app_user, user, "User", without=_LISTS + _LOCK)
        self._connection.execute(delete(t.user_role).where(t.user_role.c.user_id == user.id))
        self._connection.execute(delete(t.user_setting).where(t.user_setting.c.user_id == user.id))
        self._write_roles_and_settings(user)

    def list(self) -> list[User]:
        return self._load(select(t.app_user).order_by(t.app_user.c.username))

    def record_failed_signin(self, user_id: int, *, now: datetime, attempts: int,
                             lock_until: datetime) -> tuple[int, datetime | None] | None:
        """Count a wrong password in one statement (safe when attempts race); the `attempts`-th locks the account.

        Return the wrong passwords now in a row and the lock's end, or None when the account was locked already.
        Locking starts the count again, so the account gets its attempts back when the lock ends.
        """
        user = t.app_user.c
        reached = user.failed_signins + 1 >= attempts
        row = self._connection.execute(
            update(t.app_user)
            .where(user.id == user_id, or_(user.locked_until.is_(None), user.locked_until <= now))
            .values(failed_signins=case((reached, 0), else_=user.failed_signins + 1),
                    locked_until=case((reached, literal(lock_until, user.locked_until.type)), else_=null()))
            .returning(user.failed_signins, user.locked_until)
        ).first()
        return (row.failed_signins, row.locked_until) if row is not None else None

    def record_good_signin(self, user_id: int, *, now: datetime, checked_hash: str, new_hash: str | None) -> bool:
        """Clear the wrong-password count, storing `new_hash` if given; False if the account locked or the
        password changed since `checked_hash` was read."""
        user = t.app_user.c
        values = {"failed_signins": 0, "locked_until": None} | ({"password_hash": new_hash} if new_hash else {})
        return self._connection.execute(
            update(t.app_user)
            .where(user.id == user_id, user.password_hash == checked_hash,
                   or_(user.locked_until.is_(None), user.locked_until <= now))
            .values(**values)
        ).rowcount == 1

    def unlock(self, user_id: int) -> None:
        """Lift a lock-out and forget the wrong passwords counted."""
        self._connection.execute(update(t.app_user).where(t.app_user.c.id == user_id)
                                 .values(failed_signins=0, locked_until=None))

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
