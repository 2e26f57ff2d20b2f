"""Secret tokens (console sessions and one-time links, feed links) are stored and looked up by
their SHA-256: a stolen table holds no usable token, and no comparison of a token itself can be timed."""

from __future__ import annotations

import hashlib


def token_hash(token: str) -> str:
    """Hex SHA-256 of `token`."""
    return hashlib.sha256(token.encode()).hexdigest()
