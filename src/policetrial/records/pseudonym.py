"""Pseudonymisation at the door: identifiers become keyed HMAC-SHA256 values at import.

The key lives outside the workspace: in `POLICETRIAL_PSEUDONYM_KEY` (hex, 32 bytes or
more) or in the file named by `POLICETRIAL_PSEUDONYM_KEY_FILE`. Only a fingerprint of
the key is stored with the data, so a later import with a different key is refused
instead of silently producing pseudonyms that no longer link.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from policetrial.errors import WorkspaceError

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "Pseudonymiser", "load_pseudonymiser", "write_key_file"]

KEY_ENV = "POLICETRIAL_PSEUDONYM_KEY"
KEY_FILE_ENV = "POLICETRIAL_PSEUDONYM_KEY_FILE"
_DIGEST_CHARS = 32  # 128 bits: collisions are negligible at national scale


@dataclass(frozen=True)
class Pseudonymiser:
    """Turns raw identifiers into stable pseudonyms; one domain per identifier kind."""

    key: bytes = field(repr=False)
    force: str | None = None
    """In a trial of several forces, the force whose extract is being pseudonymised: its
    code goes into every pseudonym's domain, so two forces' incident 1234 (or person, or
    collar number) are two pseudonyms, never one. None in a trial of one force."""

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise WorkspaceError(
                f"the pseudonymisation key must be at least 32 bytes, got {len(self.key)}"
            )

    @property
    def fingerprint(self) -> str:
        """A value that identifies the key without revealing it."""
        return hmac.digest(self.key, b"policetrial key fingerprint", "sha256").hex()[:16]

    def within(self, force: str | None) -> Pseudonymiser:
        """The same key, its pseudonyms those of `force`'s identifiers."""
        return Pseudonymiser(self.key, force)

    def _domain(self, domain: str) -> str:
        # Force codes are [a-z0-9-], so "force/domain" cannot be mistaken for a domain.
        return domain if self.force is None else f"{self.force}/{domain}"

    def one(self, domain: str, value: str) -> str:
        message = f"{self._domain(domain)}\x1f{_normalise(value)}".encode()
        return hmac.digest(self.key, message, "sha256").hex()[:_DIGEST_CHARS]

    def many(self, domain: str, values: Iterable[str]) -> np.ndarray:
        """Pseudonyms for many values, hashing each distinct value once (as `one` does)."""
        array = np.asarray(
            list(values) if not isinstance(values, np.ndarray) else values, dtype=object
        )
        if array.size == 0:
            return array.astype(object)
        import pandas as pd

        # Normalised first (vectorised), so "ab1" and " AB1 " are hashed once.
        normalised = pd.Series(array, dtype="string").str.strip().str.upper()
        inverse, uniques = pd.factorize(normalised, use_na_sentinel=False)
        prefix = f"{self._domain(domain)}\x1f".encode()
        key = self.key
        digest = hmac.digest
        hashed = np.array(
            [
                digest(key, prefix + u.encode(), "sha256").hex()[:_DIGEST_CHARS]
                for u in uniques.to_numpy(dtype=object)
            ],
            dtype=object,
        )
        return hashed[inverse]


def _normalise(value: str) -> str:
    return value.strip().upper()


def write_key_file(path: str | Path) -> Path:
    """Create a new random key file (readable by its owner only); refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise WorkspaceError(f"{path}: a key file is already there; keys are never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def load_pseudonymiser(
    environ: Mapping[str, str], *, workspace: Path | None = None
) -> Pseudonymiser:
    """The key from the environment or its key file; never from inside the workspace."""
    if environ.get(KEY_ENV):
        return Pseudonymiser(_decode(environ[KEY_ENV], KEY_ENV))
    key_file = environ.get(KEY_FILE_ENV)
    if not key_file:
        raise WorkspaceError(
            f"no pseudonymisation key: set {KEY_ENV} (64 hex characters) or {KEY_FILE_ENV} "
            "(a file outside the workspace; `policetrial key new FILE` makes one)"
        )
    path = Path(key_file).expanduser().resolve()
    if workspace is not None and path.is_relative_to(workspace.resolve()):
        raise WorkspaceError(
            f"{path}: the key file is inside the workspace; keep it elsewhere so the data "
            "and the key are never stored together"
        )
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read the key file ({exc.strerror})") from None
    return Pseudonymiser(_decode(text, str(path)))


def _decode(text: str, source: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode()
    if len(key) < 32:
        raise WorkspaceError(
            f"{source}: the key is too short ({len(key)} bytes); use 64 hex characters "
            "(`policetrial key new FILE`)"
        )
    return hashlib.sha256(key).digest() if len(key) > 64 else key
