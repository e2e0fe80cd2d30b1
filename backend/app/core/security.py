"""Password hashing (argon2 via pwdlib) and access tokens (JWT via PyJWT).

An access token names its user twice: `sub` (the id) and `stamp` (the account's auth stamp when the
token was issued). The API compares the stamp with the stored one on every request, so a token is
bound to the account it was issued for, and any credential change that sets a new stamp (password,
role, deactivation) revokes every earlier token at once, on every worker and replica.
"""

import re
import warnings
from datetime import timedelta
from functools import cache, lru_cache
from typing import NamedTuple

import jwt
import jwt.warnings
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.clock import utcnow
from app.core.types import MAX_ID

ALGORITHM = "HS256"
# A short SECRET_KEY is refused outside ENVIRONMENT=local; in local the server says so once at
# startup (Settings.development_warnings) instead of PyJWT warning with source lines on every token.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
# argon2id at argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes: above OWASP's minimum of 19 MiB and
# 2 passes), about 0.1 s per check. The test suite swaps in cheap parameters for speed
# (tests/conftest.py); tests/unit/test_security.py checks these.
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 3, 65536, 4


def new_password_hasher() -> PasswordHash:
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
            ),
        )
    )


_hasher = new_password_hasher()


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


class TokenSubject(NamedTuple):
    user_id: int
    stamp: str


def create_access_token(user_id: int, stamp: str, *, secret: str, expires: timedelta) -> str:
    now = utcnow()
    claims = {"sub": str(user_id), "stamp": stamp, "iat": now, "exp": now + expires}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


_ID = re.compile(r"[1-9][0-9]{0,9}")
_STAMP = re.compile(r"[0-9a-f]{32}")


# Verifying a token's signature and claims is pure work on the token's text, and a client sends the
# same token with every request until it expires: each token is verified once per process. The
# expiry, the one claim that turns a valid token invalid, is still checked on every request.
VERIFIED_TOKENS_CACHED = 4096


@lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(token: str, secret: str) -> tuple[TokenSubject, float]:
    """(subject, expiry as a timestamp) of a token whose signature and claims are valid, expiry aside."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "stamp", "exp", "iat"], "verify_exp": False},
    )
    sub, stamp = claims["sub"], claims["stamp"]
    if not isinstance(sub, str) or not _ID.fullmatch(sub) or int(sub) > MAX_ID:
        raise ValueError("sub is not a user id")
    if not isinstance(stamp, str) or not _STAMP.fullmatch(stamp):
        raise ValueError("stamp is not an auth stamp")
    return TokenSubject(int(sub), stamp), float(claims["exp"])


def read_access_token(token: str, *, secret: str) -> TokenSubject:
    """Whom a valid token names; InvalidToken for anything else (expired, tampered, alg none...).

    The caller still compares the stamp with the account's current one.
    """
    try:
        subject, expires = _verified(token, secret)
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        raise InvalidToken(str(exc)) from None
    if expires <= utcnow().timestamp():  # as PyJWT: valid strictly before `exp`
        raise InvalidToken("Signature has expired")
    return subject
