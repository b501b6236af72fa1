"""What a check found: PASS, FAIL or SKIP with its figures, as one line of output and as JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
#: Examples a problem keeps, per reason.
EXAMPLES = 3


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``observed`` against ``expected`` within ``tolerance``, from a sample of ``n``.

    A share check's figures are shares (observed hits / n); an exact check's are counts of what is wrong (expected
    0, tolerance 0). ``detail`` says what was counted, and for a FAIL or SKIP why.
    """

    name: str
    status: str
    observed: float | None
    expected: float | None
    tolerance: float | None
    n: int
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        """The output line: status, name, figures, detail."""
        figures = f"observed {_figure(self.observed)} expected {_figure(self.expected)}"
        figures += f" tolerance {_figure(self.tolerance)} n={self.n:,}"
        text = f"{self.status}  {self.name:<38} {figures}"
        return f"{text}  {self.detail}" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the result."""
        return {
            "name": self.name,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "n": self.n,
            "detail": self.detail,
        }


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"


@dataclass
class Problems:
    """What is wrong, counted by reason, with the first few examples of each (ids, positions)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, example: object = "") -> None:
        """Count one problem of ``reason``; keep ``example`` if it is among the first EXAMPLES."""
        self.counts[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES and example != "":
            kept.append(str(example))

    def merge(self, other: Problems) -> None:
        """Add ``other``'s problems to these."""
        for reason, count in other.counts.items():
            self.counts[reason] += count
            kept = self.examples.setdefault(reason, [])
            kept.extend(other.examples.get(reason, [])[: EXAMPLES - len(kept)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """Each reason with its count and examples, the commonest first."""
        parts = []
        for reason, count in self.counts.most_common():
            examples = self.examples.get(reason)
            parts.append(f"{reason}: {count:,}" + (f" (e.g. {', '.join(examples)})" if examples else ""))
        return "; ".join(parts)


def exact(name: str, problems: Problems, checked: int, what: str) -> CheckResult:
    """PASS when nothing is wrong among ``checked`` ``what``; FAIL naming each reason otherwise; SKIP when there
    was nothing to check."""
    wrong = problems.total
    if not checked and not wrong:
        return skipped(name, f"nothing to check ({what})")
    detail = what if not wrong else f"{what}; {problems.summary()}"
    return CheckResult(name, FAIL if wrong else PASS, wrong, 0, 0, checked, detail)


def skipped(name: str, reason: str, n: int = 0) -> CheckResult:
    """A check that cannot say anything here, and why."""
    return CheckResult(name, SKIP, None, None, None, n, reason)
