"""Reconciliation with Anthropic's bill: billed vs estimated per day and workspace (pure).

The comparison (:mod:`service.reconcile.compare`) and the estimate per model and token type
(:mod:`service.reconcile.estimate`) need no database and no network; the job that fetches the
cost report and books the adjustments is :mod:`service.runtime.reconciling`.
"""
