"""creditwatch: watches an Anthropic organization's Claude API spend and prepaid credit balance."""

__version__ = "0.1.0"
