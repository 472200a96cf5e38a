"""The report's building blocks besides headings, paragraphs and figures: tables whose cells
may carry a style (✓ green, ✗ red, not judged grey), rendered as Markdown and as HTML."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """A table cell with a style: "ok" (✓), "bad" (✗), "na" (shown, not judged), or a verdict."""

    text: str
    css: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    columns: list[str]
    rows: list[list]  # str or Cell
