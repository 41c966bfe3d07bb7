"""Reading JSON Lines input: one object per line, ``{"id": ..., "text": ...}``.

Each non-blank line is one record (blank lines are skipped and counted, as
in CSV). A line that is not a JSON object, or lacks the text field, becomes
an error row naming its line; a text that is not a string is refused by the
text rule (``null``: "no text"). Without an ``id`` field the row number is
the id, unless ``--id-column`` asked for that field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .csvio import Parsed, Record


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


@dataclass(frozen=True)
class JsonlLayout:
    """Which fields hold the text and the id."""

    name: str
    text_column: str = "text"
    id_column: str = "id"
    id_required: bool = False
    has_ids: bool = True  # ids come from the records (duplicates are counted)

    def parse(self, text: str, last: bool) -> Parsed:
        """The records of one chunk of whole lines."""
        records: list[Record] = []
        blank = number = 0
        lines = text.split("\n")  # not splitlines(): U+2028 and friends may stand raw in JSON strings
        if lines[-1] == "":
            lines.pop()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                blank += 1
                continue
            number += 1
            rid, value, reason = self._fields(line)
            records.append(Record(number, i, i, rid, value, reason))
        return Parsed(records, len(lines), blank)

    def _fields(self, line: str) -> tuple[str | None, object, str | None]:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            return None, None, f": invalid JSON ({detail})"
        except RecursionError:
            return None, None, ": invalid JSON (nested too deep)"
        if not isinstance(obj, dict):
            return None, None, f': expected a JSON object like {{"text": "..."}}, got {_kind(obj)}'
        rid = obj.get(self.id_column)
        if rid is not None and not isinstance(rid, str):
            rid = json.dumps(rid, ensure_ascii=False)
        if rid is None and self.id_required:
            return None, None, f": no {self.id_column!r} field"
        if self.text_column not in obj:
            fields = ", ".join(map(repr, list(obj)[:10])) or "none"
            return (
                rid,
                None,
                f": no {self.text_column!r} field (fields: {fields}); choose one with --text-column",
            )
        return rid, obj[self.text_column], None
