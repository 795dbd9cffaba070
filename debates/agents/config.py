"""An AI seat's configuration (Participant.agent, or an experiment's `debaters` section) and its
per-debate budget. Pure module (no Django).

    {"backend": "openai", "model": "gpt-4o-mini", "parameters": {"temperature": 0.7}, "best_of_n": 4,
     "token_budget": 20000, "prompts": {"debater_turn": "..."}}

`backend` names one of the back-ends the operator configured (debates.agents.backends): where the
requests go and which key they carry are not a researcher's to choose, so base_url, api_key_env,
headers and anything else that is neither a model parameter nor a budget or retry setting is refused.
Budget and retry settings may also be written inside `parameters`, because experiment files only
have that section; they are taken out before the parameters are sent to the model.
"""

from dataclasses import dataclass, field

from . import backends
from .backends import Backend
from .errors import AgentError, BudgetExhausted
from .prompts import current_names, prompt_problems

BACKENDS = (backends.SCRIPTED,)  # built in; the operator adds the rest

# name: (type check, description) for the platform's own settings
_CONTROL = {
    "token_budget": (lambda v: _is_int(v) and v > 0, "a positive whole number of tokens per debate"),
    "cost_budget_usd": (lambda v: _is_number(v) and v > 0, "a positive amount in US dollars per debate"),
    "usd_per_1k_input": (lambda v: _is_number(v) and v >= 0, "a price in US dollars"),
    "usd_per_1k_output": (lambda v: _is_number(v) and v >= 0, "a price in US dollars"),
    "attempts": (lambda v: _is_int(v) and 1 <= v <= 20, "a whole number from 1 to 20"),
    "retry_base_delay": (lambda v: _is_number(v) and 0 <= v <= 600, "seconds (0 to 600)"),
    "retry_max_delay": (lambda v: _is_number(v) and 0 <= v <= 3600, "seconds (0 to 3600)"),
    "timeout_s": (lambda v: _is_number(v) and 0 < v <= 3600, "seconds (up to 3600)"),
    "token_delay": (lambda v: _is_number(v) and 0 <= v <= 5, "seconds between streamed words (0 to 5)"),
}
# The model parameters passed on to the back-end (nothing else is: no headers, URLs or keys).
MODEL_PARAMETERS = {
    "temperature": (lambda v: _is_number(v) and 0 <= v <= 2, "a number from 0 to 2"),
    "top_p": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "top_k": (lambda v: _is_int(v) and 1 <= v <= 1000, "a whole number from 1 to 1000"),
    "max_tokens": (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "a whole number of tokens"),
    "max_completion_tokens": (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "a whole number of tokens"),
    "presence_penalty": (lambda v: _is_number(v) and -2 <= v <= 2, "a number from -2 to 2"),
    "frequency_penalty": (lambda v: _is_number(v) and -2 <= v <= 2, "a number from -2 to 2"),
    "seed": (lambda v: _is_int(v) and abs(v) < 2**63, "a whole number"),
    "stop": (
        lambda v: (
            (isinstance(v, str) and len(v) <= 100)
            or (isinstance(v, list) and len(v) <= 4 and all(isinstance(s, str) and len(s) <= 100 for s in v))
        ),
        "a string or a list of up to 4 strings",
    ),
}
AGENT_FIELDS = ("backend", "model", "parameters", "best_of_n", "prompts", "judge")


def agent_problems(data) -> list[str]:
    """Every problem with an agent configuration, as "field: problem" (experiment files add the line)."""
    try:
        AgentConfig.from_dict(data)
    except AgentError as error:
        return [error.message]
    return []


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class AgentConfig:
    backend: str  # the operator's name for the back-end
    endpoint: Backend = backends.BUILT_IN[backends.SCRIPTED]
    model: str | None = None
    parameters: dict = field(default_factory=dict)  # sent to the model as they are
    best_of_n: int = 1
    prompts: dict = field(default_factory=dict)
    token_budget: int | None = None
    cost_budget_usd: float | None = None
    usd_per_1k_input: float = 0.0
    usd_per_1k_output: float = 0.0
    attempts: int = 4
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    timeout_s: float = 120.0
    token_delay: float = 0.02
    judge: "AgentConfig | None" = None  # best-of-N preference model; default: the same model

    @classmethod
    def from_dict(cls, data) -> "AgentConfig":
        if not isinstance(data, dict):
            raise AgentError("bad_agent_config", "an agent configuration is a mapping with a 'backend'")
        known = set(AGENT_FIELDS) | set(_CONTROL)
        unknown = set(data) - known
        if unknown:
            raise AgentError(
                "bad_agent_config",
                f"unknown agent settings: {', '.join(sorted(map(str, unknown)))} "
                f"(the server's operator chooses addresses and keys: name a "
                f"backend and a model)",
            )
        endpoint = backends.get(data.get("backend"))
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise AgentError("bad_agent_config", "parameters must be a mapping")
        refused = set(parameters) - set(_CONTROL) - set(MODEL_PARAMETERS)
        if refused:
            raise AgentError(
                "bad_agent_config",
                f"parameters may not set {', '.join(sorted(map(str, refused)))} "
                f"(allowed: {', '.join(sorted(set(MODEL_PARAMETERS) | set(_CONTROL)))})",
            )
        settings = {k: v for k, v in parameters.items() if k in _CONTROL}
        settings.update({k: v for k, v in data.items() if k in _CONTROL})
        for name, value in [*settings.items(), *((k, v) for k, v in parameters.items() if k in MODEL_PARAMETERS)]:
            check, wanted = _CONTROL.get(name) or MODEL_PARAMETERS[name]
            if not check(value):
                raise AgentError("bad_agent_config", f"{name} must be {wanted} (got {_short(value)})")
        model = data.get("model")
        problem = backends.model_problem(endpoint, model)
        if problem:
            raise AgentError("bad_agent_config", problem)
        best_of_n = data.get("best_of_n") or 1
        if not _is_int(best_of_n) or not 1 <= best_of_n <= 16:
            raise AgentError("bad_agent_config", "best_of_n must be a whole number from 1 to 16")
        prompts = data.get("prompts") or {}
        problems = prompt_problems(prompts)
        if problems:
            raise AgentError("bad_prompt", "; ".join(problems))
        judge = data.get("judge")
        return cls(
            backend=endpoint.name,
            endpoint=endpoint,
            model=model,
            best_of_n=best_of_n,
            prompts=current_names(prompts),
            parameters={k: v for k, v in parameters.items() if k not in _CONTROL},
            judge=cls.from_dict(judge) if judge is not None else None,
            **settings,
        )

    @property
    def kind(self) -> str:
        """scripted, openai or anthropic: the wire format."""
        return self.endpoint.kind

    def key_env(self) -> str | None:
        """Which environment variable holds the key (the operator's choice; None: send no key)."""
        return self.endpoint.api_key_env

    def url(self) -> str:
        return self.endpoint.url()

    def provenance(self) -> dict:
        """What produced a turn or verdict: the back-end's name, never its address or key."""
        return {
            "backend": self.backend,
            "kind": self.kind,
            "model": self.model or self.backend,
            "parameters": self.parameters,
            "best_of_n": self.best_of_n,
        }


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def cost(self, config: AgentConfig) -> float:
        return (self.input_tokens * config.usd_per_1k_input + self.output_tokens * config.usd_per_1k_output) / 1000

    def to_dict(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, data) -> "Usage":
        data = data or {}
        return cls(int(data.get("input_tokens", 0)), int(data.get("output_tokens", 0)))


def estimate_tokens(text: str) -> int:
    """About four characters a token, for budgets when a server reports no counts."""
    return max(1, len(text) // 4)


class Budget:
    """A seat's token and cost budget for the whole debate: `spent` is what its earlier turns used."""

    def __init__(self, config: AgentConfig, spent: Usage | None = None):
        self.config = config
        self.spent = spent or Usage()
        self.this_turn = Usage()

    def output_allowance(self, prompt: str) -> int | None:
        """The most output tokens the next request may ask for; None when no token budget is set.
        Raises BudgetExhausted when nothing is left."""
        self._require_money_left()
        if self.config.token_budget is None:
            return None
        left = self.config.token_budget - self.spent.total - estimate_tokens(prompt)
        if left <= 0:
            raise BudgetExhausted(
                f"the token budget of {self.config.token_budget} for this debate is spent "
                f"({self.spent.total} used; the next prompt needs about {estimate_tokens(prompt)})"
            )
        return left

    def check_output(self, allowance: int | None, output_tokens: int) -> None:
        """Stops a stream that runs past its allowance (a server may ignore max_tokens)."""
        if allowance is not None and output_tokens > allowance:
            raise BudgetExhausted(
                f"the turn stopped: it ran past the {self.config.token_budget}-token budget for this debate"
            )

    def charge(self, usage: Usage) -> None:
        self.spent.add(usage)
        self.this_turn.add(usage)

    def _require_money_left(self) -> None:
        limit = self.config.cost_budget_usd
        if limit is not None and self.spent.cost(self.config) >= limit:
            raise BudgetExhausted(
                f"the cost budget of ${limit:.2f} for this debate is spent (${self.spent.cost(self.config):.4f} used)"
            )
