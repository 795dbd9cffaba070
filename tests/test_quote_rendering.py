"""Quotes are rendered one way: the server's pages (the speech_text tag of debates' quote_marks,
over debates.quotes.speech_segments) and the room's client (speechSegments and speechNodes in
static/js/debate-state.js, run under Node) cut the same speeches into the same pieces and show
them as the same elements, classes, text and words."""

import random
from html.parser import HTMLParser

from django.template import Context, Template

from debates import quotes

from .test_room_state_js import node, random_speech, run_js  # noqa: F401 (node: skips or fails without Node)

STATUSES = [{"status": "verified"}, {"status": "near"}, {"status": "unverified"}, {}, {"status": None}]
AWKWARD = [
    "Plain words, no quotes.",
    'a < b & "c" > d <quote>x & <b>y</b></quote> <i>z</i>',
    "<quote>one</quote><quote>two</quote><quote>three</quote>",
    "",
    "  <quote>  spaced  </quote>  ",
    "<QUOTE >Loud</quote > and <quote>half",
    "&amp; <quote>&lt;quote&gt;</quote>",
]


class Nodes(HTMLParser):
    """HTML -> the client's node shape: strings, and {tag, className, children} for elements."""

    def __init__(self):
        super().__init__()
        self.root = {"children": []}
        self.open = [self.root]

    def handle_starttag(self, tag, attrs):
        made = {"tag": tag, "className": dict(attrs).get("class") or "", "children": []}
        self.open[-1]["children"].append(made)
        self.open.append(made)

    def handle_endtag(self, tag):
        assert self.open.pop()["tag"] == tag

    def handle_data(self, data):
        children = self.open[-1]["children"]
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def server_nodes(text: str, checked: list) -> list:
    html = Template("{% load quote_marks %}{% speech_text turn %}").render(
        Context({"turn": {"text": text, "payload": {"quotes": checked}}})
    )
    parser = Nodes()
    parser.feed(html)
    parser.close()
    return parser.root["children"]


def without_empty_text(nodes: list) -> list:
    """An empty text node shows nothing, and HTML cannot write one: left out before comparing."""
    return [n if isinstance(n, str) else dict(n, children=without_empty_text(n["children"])) for n in nodes if n != ""]


def speeches_with_statuses(count: int) -> list[tuple[str, list]]:
    rng = random.Random(13)
    cases = [(text, [rng.choice(STATUSES) for _ in range(rng.randint(0, 4))]) for text in AWKWARD]
    for _ in range(count):
        text = random_speech(rng)
        cases.append((text, [rng.choice(STATUSES) for _ in range(rng.randint(0, 5))]))
    return cases


def test_the_client_cuts_and_renders_speeches_as_the_server_does():
    cases = speeches_with_statuses(200)
    client = run_js(
        """console.log(JSON.stringify(data.map(([text, checked]) => {
        const segments = m.speechSegments(text, checked);
        return {segments, nodes: m.speechNodes(segments)};
      })));""",
        cases,
    )
    for (text, checked), rendered in zip(cases, client):
        assert rendered["segments"] == quotes.speech_segments(text, checked), text
        assert without_empty_text(rendered["nodes"]) == server_nodes(text, checked), text


def test_one_set_of_words_for_the_quote_statuses():
    client = run_js("console.log(JSON.stringify({labels: m.QUOTE_LABELS, signs: m.QUOTE_SIGNS}));", None)
    assert client == {"labels": quotes.QUOTE_LABELS, "signs": quotes.QUOTE_SIGNS}


def test_a_quote_without_a_stored_status_reads_not_checked_everywhere():
    [quote] = server_nodes("<quote>x</quote>", [])
    assert quote == {
        "tag": "span",
        "className": "quote quote-unchecked",
        "children": [
            {"tag": "q", "className": "", "children": ["x"]},
            " ",
            {"tag": "span", "className": "quote-badge", "children": ["? not checked"]},
        ],
    }
    assert quotes.speech_segments("a <quote>b</quote> c", [{"status": "near"}]) == [
        {"text": "a "},
        {"quote": "b", "status": "near"},
        {"text": " c"},
    ]
