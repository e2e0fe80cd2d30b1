"""The secret of a single-use account link (password recovery, invitation), derived, never stored.

A token row keeps a random `nonce` and the SHA-256 of the token. The token is
HMAC-SHA256(SECRET_KEY, purpose + nonce), base64url: the worker derives it again when it sends the
e-mail, so the secret exists only in the message, and a copy of the database alone yields no usable
link. Finding a token by its SHA-256 is a plain equality lookup on a value of 256 random bits.
"""

import base64
import hashlib
import hmac
import secrets

NONCE_BYTES = 32


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def derive(secret_key: str, purpose: str, nonce: str) -> str:
    """The token the user receives (43 characters, URL-safe)."""
    mac = hmac.new(secret_key.encode(), f"account-token:{purpose}:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def digest(token: str) -> str:
    """What the database keeps to find a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
