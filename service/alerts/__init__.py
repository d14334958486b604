"""Alert rules and dedup, pure: facts in, findings out, and the decision of what to send.

One module per rule kind under :mod:`service.alerts.rules` behind an explicit registry; the
dedup stage decides with ``now`` passed in and says why. Nothing here touches the database.
"""
