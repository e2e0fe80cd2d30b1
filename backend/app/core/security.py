"""Password hashing (argon2 via pwdlib) and access tokens (JWT via PyJWT)."""

from datetime import timedelta
from functools import cache

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.models import utcnow

ALGORITHM = "HS256"
_hasher = PasswordHash((Argon2Hasher(),))


class InvalidToken(Exception):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return _hasher.verify(password, hashed)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password: equalises login timing")


def verify_nobody(password: str) -> None:
    """Spend the time of one verification, for an e-mail address that has no account."""
    _hasher.verify(password, _dummy_hash())


def create_access_token(user_id: int, *, secret: str, expires: timedelta) -> str:
    now = utcnow()
    claims = {"sub": str(user_id), "iat": now, "exp": now + expires}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, *, secret: str) -> int:
    """The user id in a valid token; InvalidToken for anything else (expired, tampered, alg none...)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat"]})
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None
