"""Errors and rejection records shared by the log reader and the preprocessing job.

Every row read is either in the output or described by a :class:`Rejection`; a file that
cannot be read at all is one file-level rejection (``line`` is ``None``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Rejection:
    """One thing that was left out of the output, and why.

    ``file``: the path as given; ``line``: 1-based line in the file (the header is line 1),
    ``None`` for a file-level rejection; ``column``: the CSV column or prediction head at
    fault, if any; ``reason``: what is wrong, in words; ``rows``: how many data rows this
    rejection accounts for (1 for a row, the file's row count for a file-level rejection,
    0 for a file with no data row at all).
    """

    file: str
    line: int | None
    column: str | None
    reason: str
    rows: int = 1

    @property
    def file_level(self) -> bool:
        return self.line is None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


class GameLogError(ValueError):
    """A game log that cannot be read; the message names the file, line and column."""

    def __init__(self, rejection: Rejection):
        super().__init__(str(rejection))
        self.rejection = rejection
