"""API tokens for systems: several per user, named, scoped to some of the user's roles, expiring, revocable."""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime

from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .model import ApiToken, User
from .ports import UnitOfWork
from .services import Services

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cw_"  # recognisable in a leaked file or a secret scanner's report
MAX_NAME_LENGTH = 100
_MAX_SECRET_LENGTH = 512
ADMIN_ROLE = "admin"


def hash_token(secret: str) -> str:
    """Return the stored form of a token: its sha256 (tokens are long random secrets, so a fast hash suffices)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def actor_name(actor: User | str) -> str:
    """Name who acts on accounts; a person must be an administrator (the command line is trusted)."""
    if isinstance(actor, User):
        if not actor.has_role(ADMIN_ROLE):
            raise Forbidden("Only an administrator can manage users and their API tokens.")
        return actor.username
    if not actor or not actor.strip():
        raise InvalidInput("Say who is making the change.", {"actor": ["Give a name."]})
    return actor.strip()


def user_named(uow: UnitOfWork, username: str) -> User:
    """Return the user of this name, or raise NotFound naming it."""
    user = uow.users.get_by_username((username or "").strip().lower())
    if user is None:
        raise NotFound(f"There is no user named '{username}'.")
    return user


def issue_token(services: Services, *, username: str, name: str, roles: list[str] | None = None,
                expires_at: datetime | None = None, actor: User | str) -> tuple[ApiToken, str]:
    """Give a user a new API token and return it with its secret (shown once, stored hashed)."""
    by = actor_name(actor)
    with services.uow() as uow:
        token, secret = add_token(uow, user_named(uow, username), name=name, roles=roles, expires_at=expires_at,
                                  now=services.clock.now(), actor=by)
        uow.commit()
    log.info("API token %d (%r) issued to %s by %s", token.id, token.name, username, by)
    return token, secret


def add_token(uow: UnitOfWork, user: User, *, name: str, roles: list[str] | None, expires_at: datetime | None,
              now: datetime, actor: str, secret: str | None = None) -> tuple[ApiToken, str]:
    """Store a new token of `user` inside the caller's unit of work; refuse a bad name, scope or expiry."""
    name = (name or "").strip()
    problems: dict[str, list[str]] = {}
    if not name or len(name) > MAX_NAME_LENGTH:
        problems["name"] = [f"Give the token a name of 1-{MAX_NAME_LENGTH} characters (e.g. the system that uses it)."]
    elif any(token.name == name and token.usable_at(now) for token in uow.tokens.for_user(user.id)):
        problems["name"] = [f"{user.username} already has a token named '{name}'; revoke it or choose another name."]
    if roles is not None:
        outside = sorted(set(roles) - set(user.roles))
        if not roles:
            problems["roles"] = ["Choose at least one role, or none at all for all of the user's roles."]
        elif outside:
            problems["roles"] = [f"{user.username} does not hold {', '.join(outside)}; "
                                 f"choose from {', '.join(user.roles) or 'no roles'}."]
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        problems["expires_at"] = ["Give an expiry time in the future, with a time zone."]
    if not user.active:
        problems["username"] = [f"{user.username} is deactivated; activate the account first."]
    if problems:
        raise InvalidInput("The API token cannot be issued.", problems)
    secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = uow.tokens.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(secret), created_at=now,
                                    created_by=actor, roles=sorted(set(roles)) if roles is not None else None,
                                    expires_at=expires_at))
    return token, secret


def revoke_token(services: Services, *, token_id: int, actor: User | str) -> ApiToken:
    """Revoke an API token: the next request that sends it is refused."""
    by = actor_name(actor)
    with services.uow() as uow:
        token = uow.tokens.get(token_id)
        if token is None:
            raise NotFound(f"There is no API token {token_id}.")
        if token.revoked:
            raise Conflict(f"API token {token_id} ('{token.name}') was already revoked by {token.revoked_by}.")
        token.revoked, token.revoked_at, token.revoked_by = True, services.clock.now(), by
        uow.tokens.update(token)
        uow.commit()
    log.info("API token %d (%r) revoked by %s", token.id, token.name, by)
    return token


def tokens_of(services: Services, *, username: str) -> list[ApiToken]:
    """Return a user's API tokens, revoked and expired ones too, oldest first."""
    with services.uow(read_only=True) as uow:
        return uow.tokens.for_user(user_named(uow, username).id)


def user_for_token(services: Services, secret: str) -> User | None:
    """Return the active user a usable token belongs to, holding only the roles the token grants; else None."""
    if not secret or len(secret) > _MAX_SECRET_LENGTH:
        return None
    with services.uow(read_only=True, snapshot=False) as uow:  # one statement: no transaction needed
        found = uow.tokens.with_holder(hash_token(secret))
    token, user = found if found is not None else (None, None)
    if user is None or not user.active or not token.usable_at(services.clock.now()):
        return None
    if token.roles is not None:
        # A role the user has lost since the token was issued no longer applies through it.
        user.roles = [role for role in user.roles if role in token.roles]
    return user


def new_token(services: Services, *, username: str) -> str:
    """Replace a user's 'default' API token with a new one and return its secret."""
    now = services.clock.now()
    with services.uow() as uow:
        user = user_named(uow, username)
        for token in uow.tokens.for_user(user.id):
            if token.name == "default" and not token.revoked:
                token.revoked, token.revoked_at, token.revoked_by = True, now, username
                uow.tokens.update(token)
        _, secret = add_token(uow, user, name="default", roles=None, expires_at=None, now=now, actor=username)
        uow.commit()
    return secret
