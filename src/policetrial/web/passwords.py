"""Password policy: strength as a guesser would find it, not length alone.

A password must have at least 12 characters and must not be guessable in fewer than
10^10 guesses by zxcvbn (Wheeler 2016, "zxcvbn: Low-Budget Password Strength Estimation",
USENIX Security), the estimator told the username and the trial's own words (its title,
the force, the arms), so that `aaaaaaaaaaaa`, `password1234`, twelve spaces, the username
twice and `connecttrial2026` are all refused. 10^10 guesses is zxcvbn's score 4 boundary
("very unguessable: strong protection from offline slow-hash attacks"). A password made of
the username and the trial's words with digits and punctuation is refused by name whatever
the estimate says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from policetrial.errors import AccountError

__all__ = ["MIN_GUESSES_LOG10", "MIN_PASSWORD", "check_password", "trial_words"]

MIN_PASSWORD = 12
MIN_GUESSES_LOG10 = 10.0
# zxcvbn's matching grows quickly with length; it is told only the first 72 characters
# (its own limit), and a longer password is at least as strong as its start.
_ESTIMATED = 72
_BASE_WORDS = ("policetrial", "police", "trial", "officer", "station", "training")


def trial_words(protocol: Any) -> tuple[str, ...]:
    """Words of the trial a guesser would try first: its id, title, force and arm labels."""
    text = " ".join(
        [
            protocol.trial.id.replace("-", " ").replace("_", " "),
            protocol.trial.title,
            protocol.trial.force,
            *protocol.arms.labels.values(),
        ]
    ).lower()
    words = {w for w in re.findall(r"[a-z]{4,}", text)}
    return tuple(sorted(words | set(_BASE_WORDS)))


def _only_known_words(password: str, words: Iterable[str]) -> bool:
    """Whether nothing much is left once the given words, digits and symbols are removed."""
    rest = password.lower()
    for word in sorted(words, key=len, reverse=True):
        if len(word) >= 3:
            rest = rest.replace(word.lower(), "")
    rest = re.sub(r"[\W\d_]+", "", rest)
    return len(rest) < 6


def check_password(password: str, *, username: str = "", words: Iterable[str] = ()) -> None:
    """Refuse a weak password with a message that says why and what would do.

    Raises `AccountError`; returns nothing for a password the policy accepts.
    """
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if not password.strip():
        raise AccountError("the password cannot be only spaces")
    known = [w for w in (username, *words) if w]
    if username and len(username) >= 3 and username.lower() in password.lower():
        raise AccountError("the password must not contain the username")
    if _only_known_words(password, known):
        raise AccountError(
            "the password is made of the username or the trial's own words with digits; "
            "choose words that have nothing to do with the trial"
        )
    estimate = zxcvbn(password[:_ESTIMATED], user_inputs=known)
    if float(estimate["guesses_log10"]) < MIN_GUESSES_LOG10:
        warning = str(estimate["feedback"].get("warning") or "").rstrip(".")
        why = f" ({warning.lower()})" if warning else ""
        raise AccountError(
            f"the password is too easy to guess{why}; a few unrelated words together, such "
            "as a short phrase only you would think of, is stronger and easier to remember"
        )
