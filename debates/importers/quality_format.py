"""Reading QuALITY (Pang et al. 2022, github.com/nyu-mll/quality) files: JSON lines, one line per
set of questions one writer wrote about one article. Pure module (no Django).

Each line has `article_id`, `set_unique_id`, `title`, `author`, `source`, `topic`, `url`,
`license`, `article` (the story as HTML) and `questions`, each with `question`, `options` (four
answers), `gold_label` and `writer_label` (1-based option numbers), `validation`,
`speed_validation` and `difficult`. The same article appears on two lines (two writers): it
becomes one story, which both lines' questions share.

Labels are 1-based; DebateLab's correct_index is 0-based, so gold_label 1 becomes index 0. A label
that is out of range (0, or more than the number of options), not a whole number (ambiguous:
"2", 2.5, true), missing (the test split has none) or pointing at an option whose text appears
twice (ambiguous: which is right?) makes the whole file refused, each problem with its line.
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser

from .json_lines import json_lines

SOURCE = "quality"
BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "tr",
    "blockquote",
    "pre",
    "hr",
    "title",
    "table",
    "ul",
    "ol",
}
STORY_FIELDS = ("author", "source", "topic", "url", "license", "year")
QUESTION_FIELDS = ("writer_label", "validation", "speed_validation", "difficult")


class QualityFileError(Exception):
    """The file cannot be imported; problems lists each one as (line, message)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {line}: {message}" for line, message in problems))


@dataclass
class StoryPlan:
    article_id: str
    title: str
    text: str
    metadata: dict
    line: int


@dataclass
class QuestionPlan:
    external_id: str
    article_id: str
    text: str
    answers: list
    correct_index: int
    metadata: dict
    line: int


@dataclass
class QualityFile:
    stories: dict = field(default_factory=dict)  # article_id -> StoryPlan
    questions: list = field(default_factory=list)


def html_to_text(html: str) -> str:
    """The article's text: block elements and <br> become paragraph breaks, runs of white space
    inside a paragraph become one space, entities are decoded."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    paragraphs = ("".join(p).split() for p in parser.paragraphs)
    return "\n\n".join(" ".join(words) for words in paragraphs if words)


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs = [[]]

    def handle_starttag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.paragraphs.append([])

    def handle_endtag(self, tag):
        if tag in BLOCK_TAGS:
            self.paragraphs.append([])

    def handle_data(self, data):
        self.paragraphs[-1].append(data)


def read_quality(lines) -> QualityFile:
    """Every line checked; raises QualityFileError listing every problem (nothing is planned then)."""
    result, problems = QualityFile(), []
    for number, row, problem in json_lines(lines):
        problems += [(number, problem)] if problem else _read_row(row, number, result)
    if problems:
        raise QualityFileError(problems)
    return result


def _read_row(row, number: int, result: QualityFile) -> list[tuple[int, str]]:
    if not isinstance(row, dict):
        return [(number, "a line must be a JSON object (one article's question set)")]
    missing = [k for k in ("article_id", "article", "questions") if k not in row]
    if missing:
        return [(number, f"missing {', '.join(missing)}")]
    if not isinstance(row["article"], str) or not isinstance(row["questions"], list):
        return [(number, "article must be text (HTML) and questions a list")]
    article_id = str(row["article_id"])
    story = StoryPlan(
        article_id,
        str(row.get("title") or ""),
        html_to_text(row["article"]),
        {k: row[k] for k in STORY_FIELDS if k in row},
        number,
    )
    known = result.stories.get(article_id)
    if known is not None and known.text != story.text:
        return [(number, f"article {article_id} differs from the copy on line {known.line}")]
    result.stories.setdefault(article_id, story)
    problems = []
    set_id = str(row.get("set_unique_id") or article_id)
    for index, question in enumerate(row["questions"]):
        plan = _read_question(question, index, set_id, article_id, row, number, problems)
        if plan is not None:
            result.questions.append(plan)
    return problems


def _read_question(question, index: int, set_id: str, article_id: str, row: dict, number: int, problems):
    where = f"question {index + 1}"
    if not isinstance(question, dict) or not isinstance(question.get("question"), str):
        problems.append((number, f"{where}: a question needs its text"))
        return None
    options = question.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        problems.append((number, f"{where}: options must be two or more non-empty answers"))
        return None
    label = question.get("gold_label")
    if label is None:
        problems.append(
            (number, f"{where}: no gold_label (the QuALITY test split has none): the correct answer is unknown")
        )
        return None
    if isinstance(label, bool) or not isinstance(label, int):
        problems.append(
            (
                number,
                f"{where}: gold_label {label!r} is ambiguous: QuALITY labels are whole option "
                f"numbers 1 to {len(options)}",
            )
        )
        return None
    if not 1 <= label <= len(options):
        problems.append(
            (
                number,
                f"{where}: gold_label {label} is out of range: QuALITY labels are 1-based option "
                f"numbers 1 to {len(options)}" + (" (is this file 0-based?)" if label == 0 else ""),
            )
        )
        return None
    answers = [o.strip() for o in options]
    if answers.count(answers[label - 1]) > 1:
        problems.append((number, f"{where}: gold_label {label} is ambiguous: its option text appears more than once"))
        return None
    metadata = {
        "quality_article_id": article_id,
        "set_unique_id": set_id,
        "gold_label": label,
        "question_unique_id": question.get("question_unique_id"),
        "writer_id": row.get("writer_id"),
        "batch_num": row.get("batch_num"),
        **{k: question[k] for k in QUESTION_FIELDS if k in question},
    }
    external_id = str(question.get("question_unique_id") or f"{set_id}_{index + 1}")
    return QuestionPlan(external_id, article_id, question["question"].strip(), answers, label - 1, metadata, number)
