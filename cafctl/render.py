"""How cafctl prints: JSON for scripts, rich tables for people.

`--json` prints `json.dumps(document, indent=2)`, exactly, whatever the terminal: scripts and
the tests parse it. Without it, rows are a rich table, and a table without rows says what is
empty instead ("no dead letters"); a document is its fields, one a line, nested values as JSON.
Values are printed as text, never read as rich markup (a masked value reads `[masked: N chars]`).

Progress bars and spinners are drawn on standard error, only when both standard output and
standard error are terminals and the output is not JSON, and they vanish when done: what a
command prints to standard output is the same with or without them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# Piped or redirected, a table keeps its natural width: no wrapping at 80 columns for `grep`.
PIPED_WIDTH = 1000

Advance = Callable[[], None]


def console() -> Console:
    """Standard output as it is now (a test's or `redirect_stdout`'s stream included)."""
    found = Console(markup=False, emoji=False, highlight=False)
    if found.is_terminal:
        return found
    return Console(markup=False, emoji=False, highlight=False, width=PIPED_WIDTH)


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def text(value: Any) -> Text:
    """A cell or field as plain text; a nested document as JSON."""
    if isinstance(value, dict | list | tuple):
        return Text(json.dumps(value, indent=2))
    return Text("" if value is None else str(value))


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], empty: str, title: str | None = None
) -> None:
    """`rows` under `columns`; without rows, the sentence `empty` (what there is none of)."""
    out = console()
    if not rows:
        out.print(Text(empty))
        return
    shown = Table(
        *columns,
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for row in rows:
        shown.add_row(*(text(row.get(column)) for column in columns))
    out.print(shown)


def fields(document: dict[str, Any]) -> None:
    """A document's fields, one a line: the name, then its value."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column()
    for name, value in document.items():
        grid.add_row(Text(name), text(value))
    console().print(grid)


def line(words: str = "") -> None:
    console().print(Text(words))


@dataclass(frozen=True)
class Output:
    """Where one command's answer goes: JSON (`--json` anywhere on the line) or people."""

    json: bool

    @property
    def live(self) -> bool:
        """Progress may be drawn: people watch a terminal."""
        return not self.json and sys.stdout.isatty() and Console(stderr=True).is_terminal

    def rows(self, rows: list[dict[str, Any]], columns: Sequence[str], empty: str) -> None:
        if self.json:
            print_json(rows)
        else:
            table(rows, columns, empty)

    def document(self, document: dict[str, Any]) -> None:
        if self.json:
            print_json(document)
        else:
            fields(document)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """A bar of `total` steps on a terminal; `advance()` after each step."""
        if not self.live or total <= 0:
            yield _nothing
            return
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)

    @contextmanager
    def waiting(self, description: str) -> Iterator[None]:
        """A spinner on a terminal while something is waited for."""
        if not self.live:
            yield
            return
        with Console(stderr=True).status(description):
            yield


def _nothing() -> None:
    return None
