"""The AI back-ends a deployment offers, named by its operator (settings.DEBATELAB_AI_BACKENDS,
read from the environment). Experiment files and Participant.agent only name a back-end and a
model: where requests go and which environment variable holds the key are the operator's to say,
never a researcher's. Pure module (no Django): the debates app installs the registry at start.

    {"openai": {"kind": "openai-compatible", "base_url": "https://api.openai.com/v1",
                "api_key_env": "OPENAI_API_KEY", "models": ["gpt-4o-mini", "gpt-4o"]},
     "local-vllm": {"kind": "openai-compatible", "base_url": "http://10.0.0.5:8000/v1"}}

`models` lists the models researchers may ask for (leave it out to allow any); an
openai-compatible back-end without `api_key_env` sends no key (self-hosted servers).
"""

import logging
import re
from dataclasses import dataclass

from .errors import AgentError

SCRIPTED = "scripted"
KINDS = {SCRIPTED: SCRIPTED, "openai-compatible": "openai", "openai": "openai", "anthropic": "anthropic"}
# The scripted back-end was called "offline" until offline judging (judging after the fact) made
# the word mean two things in one experiment file; definitions, seats and operator settings that
# still say "offline" keep working and are told the new name.
RENAMED = {"offline": SCRIPTED}
logger = logging.getLogger(__name__)
_FIELDS = {"kind", "base_url", "api_key_env", "models", "anthropic_version", "stream_usage", "description"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class BackendConfigError(ValueError):
    """The operator's back-end list is wrong (raised when the platform starts)."""


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str  # scripted, openai (any OpenAI-compatible server) or anthropic
    base_url: str | None = None
    api_key_env: str | None = None
    models: tuple[str, ...] | None = None  # None: any model
    anthropic_version: str = "2023-06-01"
    stream_usage: bool = True  # ask OpenAI-compatible servers for token counts in the stream
    description: str = ""

    def allows(self, model: str | None) -> bool:
        return self.models is None or model in self.models

    def url(self) -> str:
        return (self.base_url or "").rstrip("/")


BUILT_IN = {SCRIPTED: Backend(SCRIPTED, SCRIPTED, description="the scripted debater and judge (no model, no network)")}
_registry: dict[str, Backend] = dict(BUILT_IN)


def parse(raw) -> dict[str, Backend]:
    """The operator's mapping name -> settings, checked; the scripted back-end is always there."""
    if raw in (None, "", {}):
        return dict(BUILT_IN)
    if not isinstance(raw, dict):
        raise BackendConfigError("DEBATELAB_AI_BACKENDS must be a JSON object: back-end name -> settings")
    found = dict(BUILT_IN)
    for name, entry in raw.items():
        found[name] = _backend(name, entry)
    return found


def _backend(name, entry) -> Backend:
    where = f"DEBATELAB_AI_BACKENDS[{name!r}]"
    if not isinstance(name, str) or not _NAME.match(name):
        raise BackendConfigError(f"{where}: a back-end name is letters, digits, '.', '_' or '-' (64 at most)")
    if not isinstance(entry, dict):
        raise BackendConfigError(f"{where} must be an object with a 'kind'")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise BackendConfigError(f"{where}: unknown settings {', '.join(sorted(unknown))}")
    written = entry.get("kind")
    kind = KINDS.get(RENAMED.get(written, written)) if isinstance(written, str) else None
    if kind is None:
        raise BackendConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
    if written in RENAMED:
        logger.warning("%s: kind %r is deprecated, write %r", where, written, kind)
    base_url = entry.get("base_url")
    if kind != SCRIPTED and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise BackendConfigError(f"{where}: base_url must be an http(s) URL")
    key_env = entry.get("api_key_env")
    if key_env is not None and not (isinstance(key_env, str) and _ENV_NAME.match(key_env)):
        raise BackendConfigError(f"{where}: api_key_env must be the name of an environment variable")
    if kind == "anthropic" and key_env is None:
        raise BackendConfigError(f"{where}: the anthropic kind needs api_key_env")
    models = entry.get("models")
    if models is not None and not (
        isinstance(models, list) and models and all(isinstance(m, str) and m.strip() for m in models)
    ):
        raise BackendConfigError(f"{where}: models must be a non-empty list of model names")
    return Backend(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key_env=key_env,
        models=tuple(models) if models is not None else None,
        anthropic_version=str(entry.get("anthropic_version") or "2023-06-01"),
        stream_usage=entry.get("stream_usage", True) is not False,
        description=str(entry.get("description") or ""),
    )


def install(raw) -> None:
    """Replaces the registry (at start-up, and when tests change the setting)."""
    global _registry
    _registry = parse(raw)


def names() -> tuple[str, ...]:
    return tuple(_registry)


def get(name) -> Backend:
    """The back-end of this name (or of its old name, for definitions and seats stored before a rename)."""
    backend = None
    if isinstance(name, str):
        backend = _registry.get(name) or _registry.get(RENAMED.get(name, name))
    if backend is None:
        raise AgentError(
            "unknown_backend",
            f"backend must be one of the back-ends this server offers: {', '.join(names())} (got {name!r})",
        )
    return backend


def model_problem(backend: Backend, model) -> str | None:
    """Why `model` cannot be used on `backend`, or None."""
    if backend.kind == SCRIPTED:
        return None
    if not (isinstance(model, str) and model.strip()):
        return f"the {backend.name} back-end needs a model name"
    if not backend.allows(model):
        return f"the {backend.name} back-end offers the models {', '.join(backend.models)} (got {model!r})"
    return None
