"""Text that came from a file (a node's name, a producer string, a manifest's field, a message a job
sent), made safe to show: a terminal must not receive control sequences from it (ESC/CSI/OSC clear
the screen, set the title, rewrite earlier lines; C1 controls are CSI on some terminals) and a
reader must see the characters in the order they are stored (bidirectional overrides and isolates
reorder what is shown). Each such character is shown escaped, as Python writes it (``\\x1b``,
``\\u202e``), never removed silently: what the user reads says that the file holds something odd.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL and the C1 block, the bidirectional marks, embeddings,
# overrides and isolates, the line/paragraph separators, and lone surrogates (not encodable)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")
_UNSAFE_LINE = re.compile(_UNSAFE.pattern[:-1] + "\t\n]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_text(text: str) -> str:
    """``text`` with every control character (tab and newline kept), bidirectional control and lone
    surrogate shown escaped: what a terminal or a label may display as it is."""
    return _UNSAFE.sub(_escaped, text) if isinstance(text, str) else text


def one_line(text: str) -> str:
    """:func:`visible_text` that also escapes tab and newline: a name shown on a line of its own
    cannot start another line (a list of names stays one name a line)."""
    return _UNSAFE_LINE.sub(_escaped, str(text))
