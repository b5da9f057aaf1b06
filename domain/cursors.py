"""The key cursors are signed with: only a cursor the server issued is ever read back.

A cursor carries its sort key in the clear (the sort's name, the row's sort
value and id) followed by a MAC of it: HMAC-SHA256, truncated to ``MAC_BYTES``.
Both read paths write cursors, the resolvers in Python (``graph/pagination.py``)
and the compiled path in SQL (``infra/db/compiler.py``), so the key also comes
as HMAC's padded inner and outer keys, from which PostgreSQL's ``sha256()``
computes the same MAC: ``sha256(outer || sha256(inner || payload))``.

The key is derived from the deployment's secrets (the JWT secrets), never used
as they are: a cursor's MAC can reveal nothing about a token's key. The first
secret signs; a cursor signed under any of them is accepted, so rotating the
JWT keys does not break a client paging through a list.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

# 128 bits: a forger's chance per try is 2^-128.
MAC_BYTES = 16
_PURPOSE = b"marketgraph cursor signatures v1"
_BLOCK = 64  # SHA-256's block size


@dataclass(frozen=True, slots=True)
class CursorKey:
    """Signs cursor payloads with the first key and accepts a signature by any."""

    keys: tuple[bytes, ...]

    @classmethod
    def derive(cls, secrets: Iterable[str]) -> CursorKey:
        keys = tuple(hmac.digest(secret.encode(), _PURPOSE, "sha256") for secret in secrets)
        if not keys:
            raise ValueError("cursors need a secret to be signed with")
        return cls(keys)

    def sign(self, payload: bytes) -> bytes:
        return hmac.digest(self.keys[0], payload, "sha256")[:MAC_BYTES]

    def verify(self, payload: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the payload's under one of the keys, compared in constant time."""
        valid = False
        for key in self.keys:
            expected = hmac.digest(key, payload, "sha256")[:MAC_BYTES]
            valid |= hmac.compare_digest(expected, mac)
        return valid

    @property
    def inner(self) -> bytes:
        """The signing key XOR HMAC's ipad, for computing the MAC in SQL."""
        return bytes(byte ^ 0x36 for byte in self.keys[0].ljust(_BLOCK, b"\0"))

    @property
    def outer(self) -> bytes:
        """The signing key XOR HMAC's opad, for computing the MAC in SQL."""
        return bytes(byte ^ 0x5C for byte in self.keys[0].ljust(_BLOCK, b"\0"))
