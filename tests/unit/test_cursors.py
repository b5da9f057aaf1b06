"""Signed cursors (domain/cursors.py, graph/pagination.py): only the exact text the server
wrote decodes; anything else is BAD_USER_INPUT naming the argument.

The HTTP tests (tests/api/test_cursor_forgery.py) cover every list on both read paths;
these cover the format and the key: rotation, padded keys for SQL, every one-byte change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cursors import MAC_BYTES, CursorKey
from domain.errors import ErrorCode
from graph.errors import ApiError
from graph.pagination import decode_cursor, encode_cursor, page_request

SECRET = "a deployment's JWT secret, 32 characters at least"
KEY = CursorKey.derive([SECRET])
SORT = "markets:VOLUME:DESC"
ROW = (Decimal("12.50000000"), uuid.UUID("6f1c1c2e-8a55-4c0e-9f59-0c3f1f6f0b11"))


def raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def refusal(cursor: str, key: CursorKey, sort: str, kind: str) -> ApiError | None:
    try:
        decode_cursor(cursor, sort, kind, "after", key)
    except ApiError as error:
        return error
    return None


def refused(cursor: str, key: CursorKey = KEY, sort: str = SORT, kind: str = "decimal") -> bool:
    """Whether the cursor is refused, as BAD_USER_INPUT naming the argument."""
    error = refusal(cursor, key, sort, kind)
    if error is None:
        return False
    assert error.extensions == {"code": ErrorCode.BAD_USER_INPUT.value, "argument": "after"}
    assert "'after'" in error.message
    return True


@pytest.mark.parametrize(
    ("sort", "kind", "row"),
    [
        (SORT, "decimal", ROW),
        (
            "markets:CREATED_AT:ASC",
            "datetime",
            (datetime(2030, 5, 1, 12, 0, 0, 1234, tzinfo=UTC), uuid.uuid4()),
        ),
        ("markets:NAME:ASC", "text", ('Will it rain? «ünïcode» \\ "quoted"', uuid.uuid4())),
    ],
)
def test_a_cursor_decodes_to_the_row_it_was_made_for(sort: str, kind: str, row: Any) -> None:
    cursor = encode_cursor(sort, row, KEY)
    assert decode_cursor(cursor, sort, kind, "after", KEY) == row


def test_a_cursor_is_its_payload_and_a_truncated_hmac_sha256() -> None:
    data = raw(encode_cursor(SORT, ROW, KEY))
    payload, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    assert orjson.loads(payload) == [SORT, "12.50000000", ROW[1].hex]
    assert MAC_BYTES == 16
    assert mac == hmac.new(KEY.keys[0], payload, hashlib.sha256).digest()[:MAC_BYTES]


def test_the_padded_keys_give_hmac_as_sql_computes_it() -> None:
    """What infra/db/compiler.py asks PostgreSQL: sha256(outer || sha256(inner || payload))."""
    payload = orjson.dumps([SORT, "1.00000000", uuid.uuid4().hex])
    inner = hashlib.sha256(KEY.inner + payload).digest()
    assert hashlib.sha256(KEY.outer + inner).digest()[:MAC_BYTES] == KEY.sign(payload)
    assert len(KEY.inner) == len(KEY.outer) == 64


def test_the_key_is_derived_from_the_secret_not_the_secret_itself() -> None:
    assert KEY.keys[0] != SECRET.encode()
    assert CursorKey.derive([SECRET]) == KEY
    assert CursorKey.derive([SECRET + "x"]) != KEY
    with pytest.raises(ValueError, match="secret"):
        CursorKey.derive([])


def test_an_unsigned_cursor_as_they_were_before_is_refused() -> None:
    unsigned = text(orjson.dumps([SORT, "12.50000000", ROW[1].hex]))
    assert refused(unsigned)


def test_a_cursor_signed_under_another_key_is_refused() -> None:
    assert refused(encode_cursor(SORT, ROW, CursorKey.derive(["another secret" * 4])))


def test_after_a_key_rotation_cursors_of_the_old_key_still_decode() -> None:
    """JWT_KEYS lists the new key first and keeps the old one: both sign nothing but the
    first, both verify."""
    old = encode_cursor(SORT, ROW, KEY)
    rotated = CursorKey.derive(["the new secret, 32 characters or more", SECRET])
    assert decode_cursor(old, SORT, "decimal", "after", rotated) == ROW
    assert encode_cursor(SORT, ROW, rotated) != old
    assert refused(encode_cursor(SORT, ROW, rotated))  # the old key alone does not know it
    assert refused(old, CursorKey.derive(["the new secret, 32 characters or more"]))


def test_every_one_byte_change_is_refused() -> None:
    data = raw(encode_cursor(SORT, ROW, KEY))
    for index in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            changed = data[:index] + bytes([data[index] ^ flip]) + data[index + 1 :]
            assert refused(text(changed)), (index, flip)


def test_a_payload_with_another_cursors_signature_is_refused() -> None:
    one = raw(encode_cursor(SORT, ROW, KEY))
    other = raw(encode_cursor(SORT, (Decimal(3), uuid.uuid4()), KEY))
    assert refused(text(one[:-MAC_BYTES] + other[-MAC_BYTES:]))


def test_only_the_exact_text_decodes() -> None:
    """base64 decoders skip characters outside the alphabet and ignore padding and unused
    trailing bits: those other spellings of a cursor are not cursors the server wrote."""
    cursor = encode_cursor(SORT, ROW, KEY)
    assert not refused(cursor)
    for other in (cursor + "=", cursor + "==", f"{cursor[:5]}!{cursor[5:]}", f" {cursor}", ""):
        assert refused(other), other
    # The last character carries bits the bytes do not use: every other spelling of it.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for character in alphabet:
        spelled = cursor[:-1] + character
        if spelled != cursor:
            assert refused(spelled), spelled


def test_a_signed_cursor_is_still_checked() -> None:
    """Should the key leak, what a cursor holds is still checked: a signed cursor of another
    sort, or of a value no row can hold, is refused."""
    assert refused(encode_cursor("markets:NAME:ASC", ("x", ROW[1]), KEY))
    payload = orjson.dumps([SORT, "1e999999999", ROW[1].hex])
    assert refused(text(payload + KEY.sign(payload)))


@given(st.binary(max_size=200))
def test_any_bytes_are_refused(data: bytes) -> None:
    assert refused(text(data))


@given(st.text(max_size=120))
def test_any_text_is_refused(cursor: str) -> None:
    assert refused(cursor)


@given(
    st.sampled_from(["decimal", "datetime", "text"]),
    st.text(max_size=30),
    st.uuids(),
)
def test_a_well_formed_payload_with_any_mac_but_its_own_is_refused(
    kind: str, value: str, ident: uuid.UUID
) -> None:
    payload = orjson.dumps([SORT, value, ident.hex])
    assert refused(text(payload + b"\0" * MAC_BYTES), kind=kind)
    assert refused(text(payload + KEY.sign(payload[:-1] + b" ")), kind=kind)


def test_page_requests_name_the_argument_of_a_bad_cursor() -> None:
    unsigned = text(orjson.dumps([SORT, "1.00000000", uuid.uuid4().hex]))
    with pytest.raises(ApiError) as forward:
        page_request(SORT, "decimal", 1, unsigned, signing=KEY)
    assert forward.value.extensions == {"code": "BAD_USER_INPUT", "argument": "after"}
    with pytest.raises(ApiError) as backward:
        page_request(SORT, "decimal", None, None, 1, unsigned, signing=KEY)
    assert backward.value.extensions == {"code": "BAD_USER_INPUT", "argument": "before"}
    genuine = encode_cursor(SORT, ROW, KEY)
    assert page_request(SORT, "decimal", 1, genuine, signing=KEY).after == ROW
    assert page_request(SORT, "decimal", None, None, 1, genuine, signing=KEY).before == ROW
