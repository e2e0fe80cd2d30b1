"""The password policy: what a new password must be, in one place.

- 8 to 128 characters (the length limits live on the schemas: models.PASSWORD_MIN/MAX);
- not easy to guess: zxcvbn (Dropbox's estimator: common-password, dictionary, name, keyboard-
  pattern, repeat and sequence lists) must rate it at least MIN_SCORE of 4, taking the account's
  own e-mail and name into account. Only the first SCORED_PREFIX characters are scored: the
  estimator's cost grows quickly with length, and a long password whose start is guessable is weak.

Applied wherever a password is set (account creation, a password change, an admin reset), never at
login, so existing accounts keep working.
"""

from collections.abc import Iterable

MIN_SCORE = 2  # zxcvbn scores 0 (too guessable) to 4 (very unguessable); 0 and 1 are refused
SCORED_PREFIX = 32


def weakness(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why `password` is refused, or None when it may be used."""
    if not password.strip():
        return "too easy to guess: only spaces"
    # Imported here: its word lists would cost every process that reads the settings.
    from zxcvbn import zxcvbn

    inputs = [word for value in user_inputs if value for word in _words(value)]
    result = zxcvbn(password[:SCORED_PREFIX], user_inputs=inputs, max_length=SCORED_PREFIX)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    hint = feedback["warning"] or " ".join(feedback["suggestions"]) or "add another word or two"
    return f"too easy to guess: {hint.rstrip('.')}. Longer passphrases of uncommon words work best"


def _words(value: str) -> list[str]:
    """An e-mail or name and its parts, for the estimator's user-specific dictionary."""
    lowered = value.lower()
    parts = [lowered, *lowered.replace("@", " ").replace(".", " ").split()]
    return [p for p in parts if len(p) > 2]
