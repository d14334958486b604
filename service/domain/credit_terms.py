"""The terms the balance walk depends on: the auto-reload policy and how long credits last.

They are stored with the ledger (as JSON) when `once` or the daemon books under them, so that
reading commands show the balance as booked, whatever the shell's settings say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from service.domain.credit_walk import ReloadPolicy


@dataclass(frozen=True)
class CreditTerms:
    policy: ReloadPolicy | None
    lifetime: timedelta

    def to_json(self) -> str:
        p = self.policy
        return json.dumps(
            {
                "threshold_nanos": p.threshold_nanos if p else None,
                "target_nanos": p.target_nanos if p else None,
                "monthly_limit_nanos": p.monthly_limit_nanos if p else None,
                "lifetime_seconds": int(self.lifetime.total_seconds()),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CreditTerms:
        data = json.loads(text)
        policy = None
        if data["threshold_nanos"] is not None:
            policy = ReloadPolicy(
                data["threshold_nanos"], data["target_nanos"], data["monthly_limit_nanos"]
            )
        return cls(policy, timedelta(seconds=data["lifetime_seconds"]))
