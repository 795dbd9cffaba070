"""What can go wrong when an AI produces a turn or a verdict."""


class AgentError(Exception):
    """A failure that retrying will not fix (bad configuration, a refused request, spent budget)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class AgentUnavailable(AgentError):
    """A failure worth retrying: rate limits (HTTP 429), server errors (5xx), lost connections."""

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(code, message)
        self.retry_after = retry_after


class BudgetExhausted(AgentError):
    def __init__(self, message: str):
        super().__init__("budget_exhausted", message)
