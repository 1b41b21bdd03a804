"""API tokens: created once (the token is shown to its owner and never stored), checked by
their SHA-256, revoked by name. Nothing here logs a token."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from terrapipe.api.models import TokenRecord
from terrapipe.errors import InvalidInput, NotFound
from terrapipe.store.db import Database

PREFIX = "tp_"
tokens_t = TokenRecord.__table__


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create_token(db: Database, name: str) -> str:
    """A new token called ``name``; returns the token itself (shown once)."""
    name = (name or "").strip()
    if not name or len(name) > 200 or any(c in name for c in "\x00\r\n"):
        raise InvalidInput(f"invalid token name {name!r}: 1-200 printable characters")
    token = PREFIX + secrets.token_urlsafe(32)
    with db.begin() as conn:
        taken = conn.execute(sa.select(tokens_t.c.id).where(tokens_t.c.name == name)).first()
        if taken is not None:
            raise InvalidInput(f"a token called {name!r} exists; revoke it or pick another name")
        conn.execute(
            tokens_t.insert().values(
                name=name, token_hash=token_hash(token), created_at=dt.datetime.now(dt.UTC)
            )
        )
    return token


def list_tokens(db: Database) -> list[TokenInfo]:
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(tokens_t.c.name, tokens_t.c.created_at, tokens_t.c.revoked_at).order_by(
                tokens_t.c.created_at
            )
        ).all()
    return [TokenInfo(r.name, r.created_at, r.revoked_at) for r in rows]


def revoke_token(db: Database, name: str) -> None:
    with db.begin() as conn:
        done = conn.execute(
            tokens_t.update()
            .where(tokens_t.c.name == name, tokens_t.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
    if done.rowcount != 1:
        raise NotFound(f"no active token called {name!r} (see `terrapipe tokens list`)")


def verify_token(db: Database, token: str) -> str | None:
    """The name of the active token ``token``, or None."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    wanted = token_hash(token)
    with db.begin() as conn:
        row = conn.execute(
            sa.select(tokens_t.c.name, tokens_t.c.token_hash).where(
                tokens_t.c.token_hash == wanted, tokens_t.c.revoked_at.is_(None)
            )
        ).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    return row.name
