"""Password hashing (argon2 via pwdlib) and access tokens (JWT via PyJWT)."""

from datetime import timedelta
from functools import cache, lru_cache

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


# Verifying a token's signature and claims is pure work on the token's text, and a client sends the
# same token with every request until it expires: each token is verified once per process. The
# expiry, the one claim that turns a valid token invalid, is still checked on every request.
VERIFIED_TOKENS_CACHED = 4096


@lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(token: str, secret: str) -> tuple[int, float]:
    """(user id, expiry as a timestamp) of a token whose signature and claims are valid, expiry aside."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp", "iat"], "verify_exp": False},
    )
    return int(claims["sub"]), float(claims["exp"])


def read_access_token(token: str, *, secret: str) -> int:
    """The user id in a valid token; InvalidToken for anything else (expired, tampered, alg none...)."""
    try:
        user_id, expires = _verified(token, secret)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None
    if expires <= utcnow().timestamp():  # as PyJWT: valid strictly before `exp`
        raise InvalidToken("Signature has expired")
    return user_id
