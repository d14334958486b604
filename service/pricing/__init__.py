"""The price book: exact USD per usage row, from ``prices.toml`` and an operator's override."""

from service.pricing.book import PriceBook
from service.pricing.rates import PricedUsage, Rates

__all__ = ["PriceBook", "PricedUsage", "Rates"]
