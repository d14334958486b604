"""Every error creditwatch raises on purpose.

    CreditwatchError
    ├── ConfigError            a bad or missing setting; the CLI exits 78 (EX_CONFIG)
    ├── PriceBookError         a price file that cannot be read or is inconsistent
    ├── AdminAPIError          the Admin API answered with an error or could not be reached
    │   ├── AdminAPIAuthError  401/403: the admin key is wrong or lacks permission (permanent)
    │   └── MalformedResponse  a page that does not match the documented shape (permanent)
    ├── LedgerError            a booking the ledger refuses (it would double-count money)
    ├── MigrationError         the migrations are missing, or cannot bring the schema to head
    │   └── SchemaNotCurrent   a reading command found the schema behind (or ahead of) head
    ├── ScenarioError          `simulate` flags that describe no replay (a usage error)
    └── DeliveryError          a channel could not deliver an alert (transient or permanent)

``transient``/``permanent`` say whether trying again later can help; the retry policy that acts
on it lives with the caller (the API client's retry loop, the outbox), never in the raiser.
"""

from __future__ import annotations


class CreditwatchError(Exception):
    """Base of all deliberate errors."""


class ConfigError(CreditwatchError):
    """A setting is missing or invalid. The message names the variable, the problem, an example."""

    def __init__(
        self, variable: str, problem: str, example: str, *, example_line: str = ""
    ) -> None:
        self.variable = variable
        self.problem = problem
        self.example = example
        super().__init__(
            f"{variable}: {problem} (example: {example_line or f'{variable}={example}'})"
        )


class PriceBookError(CreditwatchError):
    """The price book file is unreadable or inconsistent."""


class AdminAPIError(CreditwatchError):
    """An Admin API call failed; ``transient`` says whether a retry may succeed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        transient: bool = False,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.transient = transient
        super().__init__(message)


class AdminAPIAuthError(AdminAPIError):
    """401 or 403: fix ANTHROPIC_ADMIN_KEY; retrying cannot help."""


class MalformedResponse(AdminAPIError):
    """A response body that is not the documented shape; the whole page is rejected."""


class DeliveryError(CreditwatchError):
    """A channel failed to deliver; ``permanent`` failures are not retried.

    ``status`` is the HTTP status or SMTP reply code when there was one; ``retry_after`` the
    seconds the receiver asked to wait (HTTP 429's ``Retry-After``). The message never holds
    the channel's URL, routing key or password.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class LedgerError(CreditwatchError):
    """A booking the ledger refuses, e.g. a purchase dated before the starting balance."""


class MigrationError(CreditwatchError):
    """The migrations are not installed, or the schema cannot be brought to their head."""


class SchemaNotCurrent(MigrationError):
    """The database is not at the newest migration; reading commands do not migrate it."""


class ScenarioError(CreditwatchError):
    """The `simulate` flags do not describe a replay; the command prints it as a usage error."""
