"""The datasheet written with every export: what is in it, how it was collected, every field."""

from collections import Counter

from django.db.models import Count, Q
from django.utils import timezone

from debates.provenance import code_version

from .fields import RECORD_FIELDS
from .options import (
    CSV_TABLES,
    DATASHEET_NAME,
    JSONL_NAME,
    PARQUET_NAME,
    VERSIONS_NAME,
    ExportOptions,
    verdict_queryset,
    versions_of,
)

NYU_ATTRIBUTION = (
    'Debates from the NYU debate dataset of Michael et al. (2023), "Debate Helps Supervise '
    'Unreliable Experts", released under CC-BY 4.0; the stories come from Project Gutenberg via the '
    "QuALITY dataset (CC-BY 4.0)."
)

CSV_COLUMNS = {
    "debates": "one row per debate: ids, experiment and version, protocol, status, source ids, shown answer order, the "
    "question (text, answers as JSON, correct index, public material, hidden material when included), "
    "code version, creator, timestamps, the frozen protocol and the provenance as JSON",
    "participants": "one row per seat: debate id, seat, participant (pseudonym or username), answer index, honest, "
    "alias, whether an AI, the agent set-up as JSON",
    "turns": "one row per turn in order: debate id, turn number (0-based), protocol round, seat, kind, text, "
    "probabilities as JSON (judge reports), p_correct, end_debate, number of quotes and of verified quotes, "
    "the payload as JSON (quotes with their verification), private note when included, author, time",
    "judgments": "one row per verdict: ids, judge, judge kind, AI judge, live, probabilities as JSON, p_correct, "
    "chosen answer, correct, reason, seconds spent, seconds the page was hidden, the crowd judge's "
    "study status and outcome, excluded, gold check, gold judged and right (the record's `quality`), "
    "after turn/event, scoring rule, score, time, provenance as JSON",
}


def _field_rows(fields, prefix="") -> list[str]:
    rows = []
    for f in fields:
        name = f"{prefix}{f.name}"
        kind = {"int": "integer", "float": "number", "bool": "boolean", "string": "string"}.get(f.kind, f.kind)
        rows.append(f"| `{name}` | {kind} | {f.description} |")
        if f.children:
            rows += _field_rows(f.children, f"{name}[]." if f.kind.startswith("list") else f"{name}.")
    return rows


def _collection(options: ExportOptions, sources: set) -> list[str]:
    versions = versions_of(options).select_related("experiment").order_by("id")
    lines = []
    for version in versions:
        d = version.definition or {}
        protocols = ", ".join(
            f"{p.get('name')} ({p.get('format')}: {' → '.join(p.get('protocol', {}).get('rounds', []))})"
            for p in d.get("protocols", [])
        )
        debaters, judges = d.get("debaters", {}), d.get("judges", {})
        ai_model = f" ({debaters.get('backend')}, {debaters.get('model')})" if debaters.get("kind") == "ai" else ""
        lines.append(
            f"- **{version.experiment.name}, version {version.number}** (frozen {version.frozen_at or 'not yet'}, code "
            f"{version.code_version or 'unknown'}): questions from `{(d.get('dataset') or {}).get('source')}`; "
            f"protocols {protocols or 'none'}; debaters: {debaters.get('kind')}"
            f"{ai_model}; "
            f"judges: {judges.get('kind')}, {judges.get('per_debate', 1)} per debate, offline judging "
            f"{judges.get('offline', 'none')}; counterbalancing seed {(d.get('counterbalance') or {}).get('seed')}; "
            f"aliases {'on' if (d.get('blinding') or {}).get('aliases') else 'off'}. The full definition is in "
            f"`{VERSIONS_NAME}`."
        )
    for source in sorted(sources - {""}):
        lines.append(
            f"- Debates imported from `{source}`; the importer and the original ids are in each record's "
            "`debate_provenance_json` and `debate_external_id`."
        )
    if not lines:
        lines.append("- Debates run on DebateLab outside any experiment definition.")
    return lines


def datasheet(options: ExportOptions, fmt: str = "jsonl") -> str:
    verdicts = verdict_queryset(options)
    summary = verdicts.aggregate(
        verdicts=Count("id"),
        debates=Count("debate_id", distinct=True),
        questions=Count("debate__question_id", distinct=True),
        correct=Count("id", filter=Q(correct=True)),
        human_judges=Count("judge_id", distinct=True),
        ai_verdicts=Count("id", filter=Q(judge_kind="ai")),
        first=Count("id", filter=Q(live=True)),
    )
    by_protocol, sources = Counter(), set()
    for protocol, source, count in (
        verdicts.values_list("debate__protocol_name", "debate__source").annotate(n=Count("id")).order_by()
    ):
        by_protocol[protocol] += count
        sources.add(source)
    total = summary["verdicts"]
    files = {"jsonl": [JSONL_NAME], "csv": [f"{t}.csv" for t in CSV_TABLES], "parquet": [PARQUET_NAME]}[fmt]
    lines = [
        "# Datasheet: DebateLab verdict dataset",
        "",
        f"Exported {timezone.now().isoformat(timespec='seconds')} by DebateLab {code_version()}. "
        f"Files: {', '.join(f'`{f}`' for f in files)}, `{VERSIONS_NAME}` (the experiment definitions), "
        f"`{DATASHEET_NAME}`.",
        "",
        "## Contents",
        f"- {total:,} verdicts on {summary['debates']:,} debates about {summary['questions']:,} questions.",
        f"- {summary['first']:,} verdicts by the debate's live judge, "
        f"{total - summary['first']:,} given later from the transcript; "
        f"{summary['ai_verdicts']:,} by AI judges, {total - summary['ai_verdicts']:,} by "
        f"{summary['human_judges']:,} human judges.",
        f"- Overall judge accuracy: {summary['correct'] / total:.1%}." if total else "- No verdicts matched.",
    ]
    for protocol, count in sorted(by_protocol.items()):
        lines.append(f"- Protocol `{protocol or 'unnamed'}`: {count:,} verdicts.")
    lines += [
        "",
        "## Filters applied",
        *[f"- {f}" for f in options.filters_applied()],
        "- Hidden material (passages, images, private notes): "
        f"{'included' if options.include_hidden else 'left out (null)'}.",
        "- Identities: "
        + (
            "usernames, as asked for by a user allowed to see them."
            if options.identities
            else "pseudonyms, the first 16 hex digits of HMAC-SHA256 of the user id under a random key made "
            "for this export and not kept; the same person has the same pseudonym within this export "
            "only. AI judges and AI debaters are named by their model."
        ),
        "",
        "## How it was collected",
        "Debates ran on DebateLab: debaters argued for assigned answers in rounds fixed by the protocol, the judge "
        "(who never saw the hidden material, the correct answer or which side was honest) reported probabilities "
        "during the debate where the protocol has feedback rounds, and gave a final verdict with a written reason, "
        "scored by a proper scoring rule. Quotes from the hidden passage were checked by the server.",
        "Each verdict carries `hidden_seconds`, how long the judge's page was hidden during the debate as their "
        "browser reported it, and, for judges recruited into a crowd study, `quality`: their study status and "
        "outcome, whether the study's exclusion rules screened them out (`excluded`), whether this verdict was on a "
        "gold debate with a known answer (`gold_check`, an attention check rather than work) and their gold "
        "accuracy. Leave out excluded judges and gold checks before analysing, unless studying them.",
        *_collection(options, sources),
        "",
        "## Licence",
        f"{options.licence}.",
    ]
    if "nyu-debate-2023" in sources:
        lines.append(NYU_ATTRIBUTION)
    lines += [
        "",
        "## Loading",
        "```python",
        "import pandas as pd",
        f"frame = pd.read_json('{JSONL_NAME}', lines=True)",
        "from datasets import load_dataset",
        f"dataset = load_dataset('json', data_files='{JSONL_NAME}', split='train')",
        f"table = pd.read_parquet('{PARQUET_NAME}')",
        "```",
        "",
        f"## Fields of a record (`{JSONL_NAME}`, `{PARQUET_NAME}`)",
        "One record per verdict. Probabilities and answer indices are in the question's canonical answer order. "
        "Times are ISO 8601 strings in UTC. Fields ending in `_json` hold JSON text (their shape varies by source), "
        "so every record has the same schema. Not included: the debate's broadcast event log (every event's "
        "content is in the turns and the verdict) and who was online when.",
        "",
        "| field | type | meaning |",
        "| --- | --- | --- |",
        *_field_rows(RECORD_FIELDS),
        "",
        "## CSV tables",
        *[f"- `{table}.csv`: {CSV_COLUMNS[table]}." for table in CSV_TABLES],
        "",
    ]
    return "\n".join(lines)
