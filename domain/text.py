"""The one rule for text a person gives us (a user through GraphQL, an operator on the CLI,
a future webhook): it is checked in the application's commands and the domain's, so every
way in shares it, and what is refused never reaches the event log.

A text may not hold:

- control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F, tabs and line
  breaks included), the line and paragraph separators U+2028/U+2029, and the bidirectional
  embedding, override and isolate characters U+202A-U+202E and U+2066-U+2069 (they make a
  name display as something else: "Trojan Source"). Code ``TEXT_CONTROL_CHARACTER``.
- lone surrogates (U+D800-U+DFFF: no UTF-8 form, so neither PostgreSQL nor a JSON encoder
  can store them) and the 66 Unicode noncharacters (U+FDD0-U+FDEF and every U+xFFFE,
  U+xFFFF). Code ``TEXT_INVALID_CHARACTER``.

Other format characters (category Cf) are accepted: the zero-width joiner builds emoji
sequences and the zero-width non-joiner is needed to spell Persian and Indic words; a soft
hyphen is harmless. Each field also has a most number of characters (code points), code
``TEXT_TOO_LONG`` unless the field already had its own code.
"""

from __future__ import annotations

import re

from domain.errors import DomainError

CONTROL = "TEXT_CONTROL_CHARACTER"
INVALID = "TEXT_INVALID_CHARACTER"
TOO_LONG = "TEXT_TOO_LONG"

# Longest texts, in characters, of the fields that had no bound of their own.
DISPLAY_NAME_MAX = 100
EXCHANGE_NAME_MAX = 32
REASON_MAX = 500

_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
_REFUSED = re.compile(f"[{_CONTROL}\ud800-\udfff{_NONCHARACTERS}]")
_CONTROL_ONLY = re.compile(f"[{_CONTROL}]")


class TextError(DomainError, ValueError):
    """A text breaks the rule above; ``code`` says how, ``field`` where."""

    code = CONTROL


def text_problem(value: str, field: str) -> TextError | None:
    """Why ``value`` may not be recorded (its first refused character), or None."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    point = f"U+{ord(found.group()):04X}"
    where = f"at position {found.start() + 1}"
    if _CONTROL_ONLY.match(found.group()):
        return TextError(f"must not contain a control character ({point} {where})",
                         code=CONTROL, field=field)
    return TextError(f"must not contain {point} ({where}): it is not a character text can "
                     "hold", code=INVALID, field=field)


def checked_text(value: str, field: str, *, max_chars: int | None = None) -> str:
    """``value`` itself when it passes the rule (and has at most ``max_chars``
    characters), else :class:`TextError`."""
    if not isinstance(value, str):
        raise TextError("must be text", code="TEXT_NOT_A_STRING", field=field)
    problem = text_problem(value, field)
    if problem is not None:
        raise problem
    if max_chars is not None and len(value) > max_chars:
        raise TextError(f"must be at most {max_chars} characters (it has {len(value)})",
                        code=TOO_LONG, field=field)
    return value
