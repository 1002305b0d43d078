"""A backup's table rows as ``backup verify`` reads them: a changed byte that turns a value
into something of another type is an unreadable row (a problem it reports), not a crash."""

from __future__ import annotations

import pytest

from application.backup_archive import decode_row, encode_row


def test_a_row_reads_back_as_it_was_written():
    row = [7, "BTC/USDT", b"\x00\xffstate", None]
    assert decode_row(encode_row(row), [False, False, True, True]) == row


@pytest.mark.parametrize("line", [b'[7, "a", 12, null]\n', b'[7, "a", true, null]\n',
                                  b'[7, "a", "not base64!", null]\n'])
def test_a_bytes_column_that_is_not_base64_text_is_unreadable(line):
    with pytest.raises(ValueError):
        decode_row(line, [False, False, True, True])
