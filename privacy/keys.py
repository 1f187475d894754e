"""The privacy key and the keyed hashes made with it (HMAC-SHA256).

One key serves three purposes, kept apart by a purpose label inside the hashed message: the suppression list and
the erasure ledger ("subject"), pseudonymised ids ("pseudonym") and hashed trait or context fields ("field"). The key
is PRIVACY_KEY when set, else a random key made once in $DATA_DIR/privacy/key (readable by the owner only).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from settings import PrivacySettings
from stores.files import fsync_dir

SUBJECT = "subject"  # suppression list and ledger
PSEUDONYM = "pseudonym"  # ids replaced at ingestion
FIELD = "field"  # trait and context values replaced at ingestion


def privacy_key(settings: PrivacySettings) -> bytes:
    """The key: PRIVACY_KEY, else the key file under the privacy folder (made on first use)."""
    if settings.key:
        return settings.key.encode()
    path = settings.key_path
    if not path.exists():
        _create_key_file(path)
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the privacy key is too short ({len(text)} characters); delete it to make a new one")
    return text.encode()


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # fails if another process made the key first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    fsync_dir(path.parent)


def keyed_hash(key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under `purpose`, as 64 hex characters."""
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def keyed_hashes(key: bytes, purpose: str, values: Iterable[str]) -> dict[str, str]:
    """{value: keyed_hash} for each distinct value."""
    return {value: keyed_hash(key, purpose, value) for value in set(values)}
