"""Delivery channels: one module per kind behind one small protocol (:mod:`.base`) and the
explicit registry in :mod:`.registry`."""
