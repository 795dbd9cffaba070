"""Experiment definitions: parsed from YAML or JSON, validated with line-numbered errors, and the
counterbalancing plan that turns a definition into debate conditions. Pure module (no Django).

A definition names the dataset, the protocols to compare, debater and judge kinds, judgments wanted
per debate, counterbalancing, blinding and time limits; docs/experiments.md documents every field.
Old spellings of renamed values still load: `check` reports each as a line-numbered deprecation.
"""

import itertools
import json
import math
import random
from dataclasses import dataclass

import yaml

from .agents import backends
from .agents.config import MODEL_PARAMETERS, AgentConfig
from .agents.errors import AgentError
from .agents import prompts as prompt_templates
from .agents.prompts import prompt_problems
from .protocol import Protocol

FORMATS = ("debate", "consultancy", "direct", "interactive")
DEBATER_KINDS = ("human", "ai")
JUDGE_KINDS = ("human", "ai")
PLAYED_ELSEWHERE = ("pixel_mcts",)  # image debates' tree search (debates/pixel_player.py)
BACKENDS = (backends.SCRIPTED,) + PLAYED_ELSEWHERE  # built in; the operator names the others
MAX_NAME = 200  # Experiment.name
MAX_PROTOCOL_NAME = 100  # Debate.protocol_name
OFFLINE_MODES = ("none", "stepwise", "all_at_once")
STUDY_PLATFORMS = ("prolific", "mturk", "lab")
COMPLETION_OUTCOMES = ("completed", "no_consent", "screened_out", "timed_out", "failed_checks")


class SpecError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class _Located:
    """A parsed value with the line it came from (1-based), so errors can point at it."""

    value: object
    line: int


MAX_BYTES = 1_000_000
MAX_DEPTH = 20  # an experiment file nests about five levels
MAX_INT_DIGITS = 18
_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null")}


class _Refused(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


class _Loader(yaml.SafeLoader):
    """Composes the YAML node tree, refusing what an experiment file never needs: aliases (which
    can make a few hundred bytes expand into billions of values) and deep nesting."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                event.start_mark.line + 1,
                "YAML aliases (*name) are not allowed in experiment files; write the value out",
            )
        event = self.peek_event()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(event.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _locate(node) -> _Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if node.tag != _YAML + "map":
            raise _Refused(line, f"the tag {node.tag} is not allowed here (use a plain mapping)")
        found = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != _YAML + "str" and key.tag not in _SCALAR_TAGS:
                raise _Refused(key.start_mark.line + 1, "a field name must be plain text")
            found[str(_scalar(key))] = _locate(value)
        return _Located(found, line)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _YAML + "seq":
            raise _Refused(line, f"the tag {node.tag} is not allowed here (use a plain list)")
        return _Located([_locate(v) for v in node.value], line)
    return _Located(_scalar(node), line)


def _scalar(node):
    """A scalar's value; only strings, numbers, true/false and null (no dates, sets or Python tags)."""
    line = node.start_mark.line + 1
    if node.tag not in _SCALAR_TAGS:
        hint = " (put dates in quotes)" if node.tag == _YAML + "timestamp" else ""
        raise _Refused(line, f"the tag {node.tag} is not allowed in experiment files{hint}")
    if node.tag == _YAML + "int" and len(node.value.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:
        raise _Refused(line, f"whole numbers have at most {MAX_INT_DIGITS} digits")
    value = yaml.safe_load(yaml.serialize(node))
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused(line, "numbers must be finite (not .inf, .nan or too large)")
    if isinstance(value, str) and not _storable(value):
        raise _Refused(line, "text may not contain NUL characters or broken Unicode surrogates")
    return value


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _plain(located: _Located):
    if isinstance(located.value, dict):
        return {k: _plain(v) for k, v in located.value.items()}
    if isinstance(located.value, list):
        return [_plain(v) for v in located.value]
    return located.value


@dataclass(frozen=True)
class Checked:
    definition: dict
    deprecations: list[str]  # "line N: path: ..." for each old spelling, already replaced in the definition


def parse(text: str) -> dict:
    """YAML (JSON is valid YAML) -> normalised definition. Raises SpecError listing every problem."""
    return check(text).definition


def check(text: str) -> Checked:
    """The normalised definition and what in it is spelled the old way. Raises SpecError listing every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([f"line 1: the definition is larger than {MAX_BYTES // 1000} kB"])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None or not isinstance(node, yaml.MappingNode):
            raise SpecError(["line 1: an experiment definition is a mapping (name: ..., protocols: ...)"])
        root = _locate(node)
    except _Refused as refused:
        raise SpecError([f"line {refused.line}: {refused.message}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark else "line 1: "
        raise SpecError([f"{where}not valid YAML/JSON: {getattr(error, 'problem', None) or error}"]) from None
    finally:
        loader.dispose()
    checker = _Checker()
    definition = checker.experiment(root)
    if checker.errors:
        raise SpecError(checker.errors)
    return Checked(definition, checker.deprecations)


class _Checker:
    def __init__(self):
        self.errors: list[str] = []
        self.deprecations: list[str] = []

    def fail(self, located: _Located, path: str, message: str):
        self.errors.append(f"line {located.line}: {path}: {message}")

    def deprecated(self, located: _Located, path: str, message: str):
        self.deprecations.append(f"line {located.line}: {path}: {message}")

    def mapping(self, located, path, known: dict):
        """known: {field: (required, default)}. Returns the located children, reporting unknown fields."""
        if not isinstance(located.value, dict):
            self.fail(located, path, "must be a mapping")
            return {}
        for key, child in located.value.items():
            if key not in known:
                self.fail(child, f"{path}.{key}" if path else key, f"unknown field (known: {', '.join(known)})")
        for key, (required, _) in known.items():
            if required and key not in located.value:
                self.fail(located, path or "experiment", f"missing required field '{key}'")
        return located.value

    def value(self, children, key, path, kind, default=None, choices=None, low=None, high=None, max_length=None):
        if key not in children:
            return default
        child = children[key]
        value = child.value
        where = f"{path}.{key}" if path else key
        ok = {
            "str": isinstance(value, str) and value.strip() != "",
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "dict": isinstance(value, dict),
        }[kind]
        if not ok:
            self.fail(child, where, f"must be {'a non-empty string' if kind == 'str' else 'a ' + kind}")
            return default
        if kind == "dict":
            return _plain(child)
        if choices and value not in choices:
            self.fail(child, where, f"must be one of {', '.join(choices)} (got {value!r})")
            return default
        if low is not None and value < low or high is not None and value > high:
            self.fail(child, where, f"must be between {low} and {high}")
            return default
        if max_length is not None and len(value) > max_length:
            self.fail(child, where, f"may have at most {max_length} characters")
            return default
        return value

    def experiment(self, root):
        top = self.mapping(
            root,
            "",
            {
                "name": (True, None),
                "description": (False, ""),
                "dataset": (True, None),
                "protocols": (True, None),
                "debaters": (False, None),
                "judges": (False, None),
                "counterbalance": (False, None),
                "blinding": (False, None),
                "time_limits": (False, None),
                "target_verdicts": (False, None),
                "prompts": (False, None),
                "study": (False, None),
            },
        )
        definition = {
            "name": self.value(top, "name", "", "str", max_length=MAX_NAME),
            "description": self.value(top, "description", "", "str", default=""),
            "target_verdicts": self.value(top, "target_verdicts", "", "int", default=None, low=1, high=10_000_000),
            "prompts": self.value(top, "prompts", "", "dict", default={}),
        }
        for problem in prompt_problems(definition["prompts"]):
            self.fail(top["prompts"], "prompts", problem)
        definition["prompts"] = self.current_prompt_names(top.get("prompts"), definition["prompts"])
        definition["dataset"] = self.dataset(top["dataset"]) if "dataset" in top else None
        time_limits = self.time_limits(top.get("time_limits"))
        definition["time_limits"] = time_limits
        definition["protocols"] = self.protocols(top.get("protocols"), time_limits)
        definition["debaters"] = self.debaters(top.get("debaters"))
        definition["judges"] = self.judges(top.get("judges"))
        definition["counterbalance"] = self.counterbalance(top.get("counterbalance"))
        definition["blinding"] = self.blinding(top.get("blinding"))
        if "study" in top:  # optional: definitions without one stay exactly as they were
            definition["study"] = self.study(top["study"])
        return definition

    def study(self, located):
        """Crowd studies: where participants come from, what they see before judging, their codes and pay."""
        s = self.mapping(
            located,
            "study",
            {
                "platform": (False, "prolific"),
                "consent": (False, None),
                "instructions": (False, None),
                "quiz": (False, None),
                "debates_per_judge": (False, 1),
                "show_answer_after_verdict": (False, True),
                "completion_codes": (False, None),
                "bonus": (False, None),
                "practice": (False, None),
                "survey": (False, None),
                "wait_limit_seconds": (False, None),
                "min_verdict_seconds": (False, None),
                "judge_timeout_seconds": (False, None),
                "exclusion": (False, None),
                "on_wait_limit": (False, "release"),
                "gold": (False, None),
            },
        )
        return {
            "platform": self.value(s, "platform", "study", "str", default="prolific", choices=STUDY_PLATFORMS),
            "consent": self.value(s, "consent", "study", "str"),
            "instructions": self.value(s, "instructions", "study", "str"),
            "quiz": self.quiz(s.get("quiz")),
            "debates_per_judge": self.value(s, "debates_per_judge", "study", "int", default=1, low=1, high=100),
            "show_answer_after_verdict": self.value(s, "show_answer_after_verdict", "study", "bool", default=True),
            "completion_codes": self.completion_codes(s.get("completion_codes")),
            "bonus": self.bonus(s.get("bonus")),
            "practice": self.practice(s.get("practice")),
            "survey": self.survey(s.get("survey")),
            "wait_limit_seconds": self.value(s, "wait_limit_seconds", "study", "int", low=10, high=86_400),
            "min_verdict_seconds": self.value(s, "min_verdict_seconds", "study", "int", low=1, high=86_400),
            "judge_timeout_seconds": self.value(s, "judge_timeout_seconds", "study", "int", low=10, high=86_400),
            "on_wait_limit": self.value(
                s, "on_wait_limit", "study", "str", default="release", choices=("release", "offline")
            ),
            "exclusion": self.exclusion(s.get("exclusion")),
            "gold": self.gold(s.get("gold")),
        }

    def gold(self, located):
        """Finished debates with known answers, judged from their transcripts between the real ones."""
        if located is None:
            return None
        g = self.mapping(located, "study.gold", {"debates": (True, None), "rate": (True, None)})
        debates = g.get("debates")
        ids = []
        if debates is not None:
            if (
                not isinstance(debates.value, list)
                or not debates.value
                or not all(isinstance(d.value, int) and not isinstance(d.value, bool) for d in debates.value)
            ):
                self.fail(debates, "study.gold.debates", "must be a non-empty list of debate ids")
            else:
                ids = [d.value for d in debates.value]
        return {"debates": ids, "rate": self.value(g, "rate", "study.gold", "number", low=0.01, high=1)}

    def exclusion(self, located):
        """Rules that screen a participant out with the failed_checks code."""
        if located is None:
            return {"practice_must_be_right": False, "max_hidden_seconds": None, "min_gold_accuracy": None}
        e = self.mapping(
            located,
            "study.exclusion",
            {
                "practice_must_be_right": (False, False),
                "max_hidden_seconds": (False, None),
                "min_gold_accuracy": (False, None),
            },
        )
        return {
            "practice_must_be_right": self.value(e, "practice_must_be_right", "study.exclusion", "bool", default=False),
            "max_hidden_seconds": self.value(e, "max_hidden_seconds", "study.exclusion", "int", low=0, high=86_400),
            "min_gold_accuracy": self.value(e, "min_gold_accuracy", "study.exclusion", "number", low=0, high=1),
        }

    def practice(self, located):
        """A worked example with a known answer: a short transcript to read, scored and explained."""
        if located is None:
            return None
        p = self.mapping(
            located,
            "study.practice",
            {
                "question": (True, None),
                "answers": (True, None),
                "correct": (True, None),
                "transcript": (True, None),
                "explanation": (True, None),
            },
        )
        answers = self.strings(p.get("answers"), "study.practice.answers", minimum=2)
        transcript = self.strings(p.get("transcript"), "study.practice.transcript", minimum=1)
        return {
            "question": self.value(p, "question", "study.practice", "str"),
            "answers": answers,
            "correct": self.value(p, "correct", "study.practice", "int", low=0, high=max(1, len(answers) - 1)),
            "transcript": transcript,
            "explanation": self.value(p, "explanation", "study.practice", "str"),
        }

    def strings(self, located, path, minimum):
        if located is None:
            return []
        if (
            not isinstance(located.value, list)
            or len(located.value) < minimum
            or not all(isinstance(item.value, str) and item.value.strip() for item in located.value)
        ):
            self.fail(located, path, f"must be a list of at least {minimum} non-empty strings")
            return []
        return [item.value for item in located.value]

    def survey(self, located):
        """Post-study questions: free text, a 1-to-5 scale, or a choice among options."""
        if located is None:
            return []
        if not isinstance(located.value, list):
            self.fail(located, "study.survey", "must be a list of questions")
            return []
        questions, ids = [], set()
        for i, item in enumerate(located.value):
            path = f"study.survey[{i}]"
            q = self.mapping(
                item,
                path,
                {"id": (True, None), "question": (True, None), "kind": (False, "text"), "options": (False, None)},
            )
            question_id = self.value(q, "id", path, "str")
            if question_id in ids:
                self.fail(q["id"], f"{path}.id", f"survey id {question_id!r} is used twice")
            ids.add(question_id)
            kind = self.value(q, "kind", path, "str", default="text", choices=("text", "scale", "choice"))
            options = self.strings(q.get("options"), f"{path}.options", minimum=2)
            if kind == "choice" and not options:
                self.fail(item, path, "a choice question needs options")
            questions.append(
                {
                    "id": question_id,
                    "question": self.value(q, "question", path, "str"),
                    "kind": kind,
                    "options": options,
                }
            )
        return questions

    def quiz(self, located):
        if located is None:
            return []
        if not isinstance(located.value, list):
            self.fail(located, "study.quiz", "must be a list of questions")
            return []
        questions = []
        for i, item in enumerate(located.value):
            path = f"study.quiz[{i}]"
            q = self.mapping(item, path, {"question": (True, None), "options": (True, None), "answer": (True, None)})
            options = q.get("options")
            if options is not None and (
                not isinstance(options.value, list)
                or len(options.value) < 2
                or not all(isinstance(o.value, str) and o.value.strip() for o in options.value)
            ):
                self.fail(options, f"{path}.options", "must be a list of two or more non-empty strings")
                options = None
            count = len(options.value) if options is not None else 2
            questions.append(
                {
                    "question": self.value(q, "question", path, "str"),
                    "options": [o.value for o in options.value] if options is not None else [],
                    "answer": self.value(q, "answer", path, "int", low=0, high=count - 1),
                }
            )
        return questions

    def completion_codes(self, located):
        if located is None:
            return {}
        c = self.mapping(located, "study.completion_codes", {o: (False, None) for o in COMPLETION_OUTCOMES})
        codes = {}
        for outcome in COMPLETION_OUTCOMES:
            code = self.value(c, outcome, "study.completion_codes", "str")
            if code is not None and not code.replace("-", "").replace("_", "").isalnum():
                self.fail(c[outcome], f"study.completion_codes.{outcome}", "use letters, digits, - and _ only")
            elif code is not None:
                codes[outcome] = code
        return codes

    def bonus(self, located):
        if located is None:
            return {"per_correct": 0.0, "maximum": None}
        b = self.mapping(located, "study.bonus", {"per_correct": (False, 0.0), "maximum": (False, None)})
        return {
            "per_correct": self.value(b, "per_correct", "study.bonus", "number", default=0.0, low=0, high=1000),
            "maximum": self.value(b, "maximum", "study.bonus", "number", low=0, high=10_000),
        }

    def dataset(self, located):
        d = self.mapping(
            located,
            "dataset",
            {"source": (True, None), "ids": (False, None), "limit": (False, None), "sample_seed": (False, None)},
        )
        ids = None
        if "ids" in d:
            if not isinstance(d["ids"].value, list) or not all(isinstance(i.value, (str, int)) for i in d["ids"].value):
                self.fail(d["ids"], "dataset.ids", "must be a list of question ids")
            else:
                ids = [str(i.value) for i in d["ids"].value]
        return {
            "source": self.value(d, "source", "dataset", "str", max_length=200),
            "ids": ids,
            "limit": self.value(d, "limit", "dataset", "int", low=1, high=1_000_000),
            "sample_seed": self.value(d, "sample_seed", "dataset", "int"),
        }

    def time_limits(self, located):
        if located is None:
            return {"turn_seconds": None}
        t = self.mapping(located, "time_limits", {"turn_seconds": (False, None)})
        return {"turn_seconds": self.value(t, "turn_seconds", "time_limits", "int", low=2, high=86_400)}

    def protocols(self, located, time_limits):
        if located is None:
            return []
        if not isinstance(located.value, list) or not located.value:
            self.fail(located, "protocols", "must be a non-empty list")
            return []
        result, names = [], set()
        for i, item in enumerate(located.value):
            path = f"protocols[{i}]"
            p = self.mapping(
                item,
                path,
                {
                    "name": (True, None),
                    "format": (False, "debate"),
                    "rounds": (False, None),
                    "char_limit": (False, 750),
                    "turn_seconds": (False, None),
                    "judge_may_end": (False, True),
                    "scoring_rule": (False, "log"),
                    "turn_penalty": (False, 0.0),
                    "speaking_order": (False, None),
                    "quote_chars_per_turn": (False, None),
                    "quote_chars_per_debate": (False, None),
                },
            )
            name = self.value(p, "name", path, "str", max_length=MAX_PROTOCOL_NAME)
            if name in names:
                self.fail(p["name"], f"{path}.name", f"protocol name {name!r} is used twice")
            names.add(name)
            fmt = self.value(p, "format", path, "str", default="debate", choices=FORMATS)
            rounds = _plain(p["rounds"]) if "rounds" in p else None
            fields = {
                "rounds": tuple(rounds) if isinstance(rounds, list) else default_rounds(fmt),
                "debaters": ("A",) if fmt == "consultancy" else ("A", "B"),
                "char_limit": self.value(p, "char_limit", path, "int", default=750),
                "turn_seconds": self.value(p, "turn_seconds", path, "int", default=time_limits["turn_seconds"]),
                "judge_may_end": self.value(p, "judge_may_end", path, "bool", default=True),
                "scoring_rule": self.value(p, "scoring_rule", path, "str", default="log"),
                "turn_penalty": self.value(p, "turn_penalty", path, "number", default=0.0),
                "quote_chars_per_turn": self.value(p, "quote_chars_per_turn", path, "int", low=0, high=100_000),
                "quote_chars_per_debate": self.value(p, "quote_chars_per_debate", path, "int", low=0, high=100_000),
            }
            if fmt == "direct":
                fields["debaters"] = ("A",)
            try:
                protocol = Protocol(**fields)
            except (TypeError, ValueError) as error:
                self.fail(item, path, str(error))
                continue
            result.append({"name": name, "format": fmt, "protocol": protocol.to_dict()})
        return result

    def debaters(self, located):
        if located is None:
            return {"kind": "human", "backend": None, "model": None, "parameters": {}, "best_of_n": 1}
        d = self.mapping(
            located,
            "debaters",
            {
                "kind": (True, None),
                "backend": (False, None),
                "model": (False, None),
                "parameters": (False, None),
                "best_of_n": (False, 1),
                "pool": (False, None),
            },
        )
        kind = self.value(d, "kind", "debaters", "str", choices=DEBATER_KINDS)
        backend = self.backend(d, "debaters")
        if kind == "ai" and backend is None:
            self.fail(located, "debaters", "AI debaters need a backend (" + ", ".join(self.backend_names()) + ")")
        found = {
            "kind": kind,
            "backend": backend,
            "model": self.value(d, "model", "debaters", "str"),
            "parameters": self.value(d, "parameters", "debaters", "dict", default={}),
            "best_of_n": self.value(d, "best_of_n", "debaters", "int", default=1, low=1, high=16),
            "pool": self.usernames(d.get("pool"), "debaters.pool"),
        }
        if kind == "ai" and backend is not None:
            self.agent(located, d, "debaters", found)
        return found

    def judges(self, located):
        if located is None:
            return {
                "kind": "human",
                "per_debate": 1,
                "offline": "none",
                "backend": None,
                "model": None,
                "parameters": {},
                "pool": None,
            }
        j = self.mapping(
            located,
            "judges",
            {
                "kind": (True, None),
                "per_debate": (False, 1),
                "offline": (False, "none"),
                "backend": (False, None),
                "model": (False, None),
                "parameters": (False, None),
                "pool": (False, None),
            },
        )
        kind = self.value(j, "kind", "judges", "str", choices=JUDGE_KINDS)
        judge_backends = tuple(n for n in self.backend_names() if n not in PLAYED_ELSEWHERE)
        backend = self.backend(j, "judges", judge_backends)
        if kind == "ai" and backend is None:
            self.fail(located, "judges", "AI judges need a backend (" + ", ".join(judge_backends) + ")")
        found = {
            "kind": kind,
            "per_debate": self.value(j, "per_debate", "judges", "int", default=1, low=1, high=100),
            "offline": self.value(j, "offline", "judges", "str", default="none", choices=OFFLINE_MODES),
            "backend": backend,
            "model": self.value(j, "model", "judges", "str"),
            "parameters": self.value(j, "parameters", "judges", "dict", default={}),
            "pool": self.usernames(j.get("pool"), "judges.pool"),
        }
        if backend is not None:
            self.agent(located, j, "judges", found)
        return found

    @staticmethod
    def backend_names() -> tuple[str, ...]:
        return tuple(dict.fromkeys(backends.names() + PLAYED_ELSEWHERE))

    def backend(self, children, path, choices=None):
        """A back-end the server's operator configured (by name: addresses and keys are not
        written in experiment files). An old name the operator does not use is read as the new one."""
        choices = choices or self.backend_names()
        child = children.get("backend")
        if (
            child is not None
            and isinstance(child.value, str)
            and child.value in backends.RENAMED
            and child.value not in choices
        ):
            new = backends.RENAMED[child.value]
            self.deprecated(
                child,
                f"{path}.backend",
                f"{child.value!r} is the old name of the {new!r} back-end (no model, no network): write backend: {new}",
            )
            children = dict(children, backend=_Located(new, child.line))
        return self.value(children, "backend", path, "str", choices=choices)

    def current_prompt_names(self, located, prompts: dict) -> dict:
        """Prompt overrides under their current names; an old name is reported where it is written."""
        for name, new in prompt_templates.RENAMED.items():
            if name in prompts:
                self.deprecated(
                    located.value.get(name, located),
                    f"prompts.{name}",
                    f"the old name of the prompt {new!r}: write {new}",
                )
        return prompt_templates.current_names(prompts)

    def agent(self, located, children, path, found):
        """The model and parameters must suit the back-end; every problem points at its line."""
        if found["backend"] in PLAYED_ELSEWHERE:
            return
        endpoint = backends.get(found["backend"])
        problem = backends.model_problem(endpoint, found["model"])
        if problem:
            self.fail(children.get("model", located), f"{path}.model", problem)
        parameters = children.get("parameters")
        if parameters is None or not isinstance(parameters.value, dict):
            return
        some_model = endpoint.models[0] if endpoint.models else "model"
        for key, child in parameters.value.items():
            try:
                AgentConfig.from_dict(
                    {"backend": endpoint.name, "model": some_model, "parameters": {key: _plain(child)}}
                )
            except AgentError as error:
                refused = key not in MODEL_PARAMETERS and "parameters may not set" in error.message
                self.fail(
                    child,
                    f"{path}.parameters.{key}",
                    "not allowed: parameters are model settings and "
                    "budgets; the server's operator chooses addresses and "
                    "keys"
                    if refused
                    else error.message,
                )

    def usernames(self, located, path):
        if located is None:
            return None
        if not isinstance(located.value, list) or not all(isinstance(u.value, str) for u in located.value):
            self.fail(located, path, "must be a list of usernames")
            return None
        return [u.value for u in located.value]

    def counterbalance(self, located):
        if located is None:
            return {"seed": 0}
        c = self.mapping(located, "counterbalance", {"seed": (False, 0)})
        return {"seed": self.value(c, "seed", "counterbalance", "int", default=0)}

    def blinding(self, located):
        if located is None:
            return {"aliases": True, "reveal_after_verdict": False}
        b = self.mapping(located, "blinding", {"aliases": (False, True), "reveal_after_verdict": (False, False)})
        return {
            "aliases": self.value(b, "aliases", "blinding", "bool", default=True),
            "reveal_after_verdict": self.value(b, "reveal_after_verdict", "blinding", "bool", default=False),
        }


def default_rounds(fmt: str) -> tuple[str, ...]:
    return {
        "debate": ("simultaneous", "judge_feedback", "sequential", "judge_feedback", "sequential", "judge_feedback"),
        "consultancy": ("sequential", "judge_feedback", "sequential", "judge_feedback", "sequential", "judge_feedback"),
        "interactive": (
            "simultaneous",
            "judge_feedback",
            "sequential",
            "judge_feedback",
            "sequential",
            "judge_feedback",
        ),
        "direct": ("judge_feedback",),
    }[fmt]


def canonical_json(definition: dict) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Condition:
    """One debate to create: which question, protocol, which answer each seat argues, shown order."""

    question_id: int
    protocol_name: str
    seat_answers: dict  # seat -> answer index (canonical)
    answer_order: tuple[int, ...]
    honest_seats: tuple[str, ...]
    speaking_order: tuple[str, ...]


def counterbalanced_plan(questions: list[tuple[int, int, int]], protocols: list[dict], seed: int) -> list[Condition]:
    """questions: (question_id, answer_count, correct_index). Balanced, not merely random: within
    each protocol the combinations of (which seat is honest, whether the correct answer is shown
    first, which debater speaks first) are dealt out in shuffled blocks, so every combination
    appears equally often (to within one) across the experiment. Reproducible from the seed."""
    rng = random.Random(seed)
    plan = []
    for spec in protocols:
        protocol = Protocol.from_dict(spec["protocol"])
        seats = protocol.debaters
        honest_choices = list(seats) if len(seats) > 1 else [True, False]  # consultancy: honest or not
        combos = list(itertools.product(honest_choices, (True, False), range(len(seats))))
        deck = []
        for question_id, answer_count, correct in questions:
            if not deck:
                deck = combos[:]
                rng.shuffle(deck)
            honest, correct_first, first_speaker = deck.pop()
            wrong = rng.choice([i for i in range(answer_count) if i != correct])
            if len(seats) > 1:
                other = [s for s in seats if s != honest][0]
                seat_answers = {honest: correct, other: wrong}
                honest_seats = (honest,)
            else:
                seat_answers = {seats[0]: correct if honest else wrong}
                honest_seats = seats if honest else ()
            rest = [i for i in range(answer_count) if i not in (correct, wrong)]
            pair = [correct, wrong] if correct_first else [wrong, correct]
            order = tuple(pair + rest)
            speaking = seats[first_speaker:] + seats[:first_speaker]
            plan.append(Condition(question_id, spec["name"], seat_answers, order, honest_seats, speaking))
    return plan
