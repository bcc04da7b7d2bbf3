"""The one error type parsing raises.

Every parser in `schemas` (message decoding and value formats alike) raises `ContractError` and
nothing else; its `problems` say, machine-readably, what was wrong and where.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ContractError",
    "Problem",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    `loc` is a dotted path into the message (`taxpayer.tin`, `representatives.0.caf_number`) or
    the name of the value parsed; `code` is a stable machine-readable word (`missing`,
    `json_invalid`, `tin_invalid`, ...); `message` is plain words for a person.
    """

    loc: str
    code: str
    message: str


class ContractError(ValueError):
    """An input does not satisfy the wire contract. `problems` lists every violation found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        summary = "; ".join(f"{p.loc or '<message>'}: {p.message}" for p in self.problems[:5])
        more = len(self.problems) - 5
        super().__init__(summary + (f" (+{more} more)" if more > 0 else ""))

    @classmethod
    def single(cls, loc: str, code: str, message: str) -> ContractError:
        return cls([Problem(loc, code, message)])

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(problem.code for problem in self.problems)
