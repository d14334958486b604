"""The Anthropic Admin API client (httpx), its wire parsing and retry policy: the only place
that knows Anthropic's wire format."""
