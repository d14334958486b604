"""Billed vs estimated for one finished UTC day, per workspace and per model and token type.

Pure: the bill's lines, the day's usage and its estimate split by token type in; per
workspace the bill, the estimate, the priority-tier part kept out of the comparison, and the
adjustment that makes the ledger's charge equal the bill out.

- The estimate compared is the usage *charged* for the day, less the priority tier: the cost
  report omits priority-tier usage, so that part keeps its estimate and is reported on its own.
- A cost only the bill has (code execution, anything the price book does not know) is a line
  estimated at zero: its whole amount is adjusted.
- A day whose bill is not out yet (no line at all while usage was estimated) is not compared:
  adjusting it would wipe out the estimate.
- A day with neither bill nor usage is compared all the same, as one zero row for the default
  workspace: a quiet day is a day within bounds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.domain.billing import PRIORITY_TIER, BilledLine, DayUsage
from service.reconcile.estimate import LineKey


@dataclass(frozen=True, slots=True)
class LineComparison:
    """One model and kind of one workspace: what the bill says, what was estimated."""

    model: str
    kind: str
    billed_nanos: int
    estimated_nanos: int

    @property
    def difference_nanos(self) -> int:
        return self.billed_nanos - self.estimated_nanos


@dataclass(frozen=True, slots=True)
class WorkspaceComparison:
    workspace_id: str
    billed_nanos: int
    estimated_nanos: int
    priority_nanos: int
    lines: tuple[LineComparison, ...] = ()

    @property
    def adjustment_nanos(self) -> int:
        """What the ledger must add to the charged usage so the day costs what the bill says."""
        return self.billed_nanos - self.estimated_nanos


@dataclass(frozen=True)
class DayComparison:
    day: datetime
    workspaces: tuple[WorkspaceComparison, ...]
    awaiting_bill: bool = False

    @property
    def billed_nanos(self) -> int:
        return sum(w.billed_nanos for w in self.workspaces)

    @property
    def estimated_nanos(self) -> int:
        return sum(w.estimated_nanos for w in self.workspaces)

    @property
    def priority_nanos(self) -> int:
        return sum(w.priority_nanos for w in self.workspaces)


def compare_day(
    day: datetime,
    billed: Sequence[BilledLine] | None,
    usage: Sequence[DayUsage],
    estimated_lines: Mapping[LineKey, int],
) -> DayComparison:
    """Compare the bill of ``day`` (None: no bill stored for it) with its usage.

    ``estimated_lines`` is the estimate split by (workspace, model, kind), priority tier left
    out (:func:`service.reconcile.estimate.estimate_lines`); the totals compared are the exact
    charged amounts of ``usage``, the lines only say where a difference comes from.
    """
    estimated: dict[str, int] = defaultdict(int)
    priority: dict[str, int] = defaultdict(int)
    for group in usage:
        target = priority if group.service_tier == PRIORITY_TIER else estimated
        target[group.workspace_id] += group.charged_nanos
    if billed is None and any(estimated.values()):
        return DayComparison(day, (), awaiting_bill=True)
    bill_lines: dict[LineKey, int] = defaultdict(int)
    for line in billed or ():
        bill_lines[(line.workspace_id, line.model, line.kind)] += line.amount_nanos
    keys = {*bill_lines, *estimated_lines}
    workspaces = sorted({key[0] for key in keys} | set(estimated) | set(priority))
    if not workspaces:
        return DayComparison(day, (WorkspaceComparison("", 0, 0, 0),))
    compared = []
    for workspace in workspaces:
        line_keys = sorted(k for k in keys if k[0] == workspace)
        lines = tuple(
            LineComparison(key[1], key[2], bill_lines.get(key, 0), estimated_lines.get(key, 0))
            for key in line_keys
        )
        compared.append(
            WorkspaceComparison(
                workspace_id=workspace,
                billed_nanos=sum(line.billed_nanos for line in lines),
                estimated_nanos=estimated.get(workspace, 0),
                priority_nanos=priority.get(workspace, 0),
                lines=lines,
            )
        )
    return DayComparison(day, tuple(compared))
