"""AI debaters: configuration and budgets (config), prompt templates (prompts), streaming model
back-ends (llm: OpenAI-compatible and Anthropic), the scripted BM25 debater that needs no network (scripted), one turn
from context to speech with best-of-N (debater), and running it in a debate (turns).
All but `turns` are pure (no Django)."""
