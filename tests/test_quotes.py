"""Evidence in text debates: quotes are checked against the hidden passage on the server, budgets
are enforced, and the judge sees each quote's status but never the passage."""

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debates import quotes
from debates.protocol import Protocol, Refused

STORY = (
    "The Stardust left Earth in the spring of 2091. Captain Mara Ellis kept the crew on short rations, "
    "because the hydroponics bay had failed twice before they passed Mars.\n\n"
    "On the ninetieth day a fire broke out in the forward cabin. Ellis sealed the bulkhead and opened the "
    "airlock to vent the fire; nobody was aboard that section. Engineer Tomas Reyes later wrote that the "
    "captain's quick decision saved the crew. The ship reached the station on day 212, battered but whole."
)

# Passages for property tests: words from the first half of the alphabet, so a word from the second
# half can never occur in them.
passage_words = st.text(alphabet="abcdefghijklm", min_size=1, max_size=8)
separators = st.sampled_from([" ", "  ", ", ", ". ", "\n", "; ", " - ", "'", "\t"])
passages = st.lists(st.tuples(passage_words, separators), min_size=3, max_size=60).map(
    lambda parts: "".join(w + s for w, s in parts)
)


def _spans_with_letters(text):
    return st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text))).filter(
        lambda se: se[0] < se[1] and quotes.normalise(text[se[0] : se[1]])[0]
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), passage=passages)
def test_a_quote_taken_from_the_passage_always_verifies(data, passage):
    start, end = data.draw(_spans_with_letters(passage))
    found = quotes.Passage(passage).check(passage[start:end])
    assert found.status == quotes.VERIFIED
    assert quotes.normalise(passage[found.start : found.end])[0] == quotes.normalise(passage[start:end])[0]


def _relayout(text, rng):
    """The same words with other case, punctuation and white space."""
    out = []
    for char in text:
        if char.isalpha():
            out.append(char.upper() if rng.random() < 0.5 else char)
        elif char.isspace():
            out.append(rng.choice([" ", "\n  ", "\t", " ... "]))
        elif rng.random() < 0.5:
            out.append(rng.choice(["", "!", "\u201c", "--", " "]))
        else:
            out.append(char)
    return rng.choice(["", '"', "... "]) + "".join(out) + rng.choice(["", ".", '!"'])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), passage=passages, seed=st.integers(0, 10_000))
def test_a_passage_quote_still_verifies_after_case_punctuation_and_spacing_changes(data, passage, seed):
    start, end = data.draw(_spans_with_letters(passage))
    changed = _relayout(passage[start:end], random.Random(seed))
    assert quotes.Passage(passage).check(changed).status == quotes.VERIFIED


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    words=st.lists(passage_words, min_size=4, max_size=40),
    new_word=st.text(alphabet="nopqrstuvwxyz", min_size=1, max_size=8),
)
def test_a_quote_with_a_changed_word_never_verifies(data, words, new_word):
    passage = " ".join(words)
    first = data.draw(st.integers(0, len(words) - 1))
    last = data.draw(st.integers(first, len(words) - 1))
    changed_at = data.draw(st.integers(first, last))
    quote_words = words[first : last + 1]
    quote_words[changed_at - first] = new_word
    found = quotes.Passage(passage).check(" ".join(quote_words))
    assert found.status != quotes.VERIFIED


def _edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(alphabet="abc", min_size=1, max_size=10), text=st.text(alphabet="abcd", min_size=1, max_size=40))
def test_fuzzy_search_finds_the_closest_stretch_of_text(pattern, text):
    best = min(_edit_distance(pattern, text[i:j]) for i in range(len(text) + 1) for j in range(i, len(text) + 1))
    edits, start, end = quotes.fuzzy_find(pattern, text, max_edits=len(pattern))
    if best <= len(pattern):
        assert edits == best
        assert _edit_distance(pattern, text[start:end]) == best
    else:
        assert edits is None


def test_a_quote_with_a_typo_is_near_with_the_passage_span_it_almost_matches():
    original = "Ellis sealed the bulkhead and opened the airlock to vent the fire"
    found = quotes.Passage(STORY).check(original.replace("bulkhead", "bulkhaed"))
    assert found.status == quotes.NEAR
    assert found.edits == 2
    assert STORY[found.start : found.end] == original


def test_a_quote_with_a_changed_word_is_not_near_when_too_many_letters_differ():
    found = quotes.Passage(STORY).check("Ellis sealed the bulkhead and opened the hatch to flood the fire")
    assert found.status == quotes.UNVERIFIED
    assert found.start is None


def test_a_short_quote_with_a_typo_is_unverified_rather_than_near():
    assert quotes.Passage(STORY).check("fyre").status == quotes.UNVERIFIED


def test_a_quote_without_letters_or_digits_is_refused():
    with pytest.raises(Refused) as refused:
        quotes.check_speech("Look: <quote> ... </quote>", STORY)
    assert refused.value.code == "empty_quote"


@pytest.mark.parametrize(
    "speech",
    [
        "It says <quote>the captain opened the airlock",
        "It says the captain</quote> opened",
        "<quote>the <quote>captain</quote> opened</quote>",
    ],
)
def test_broken_quote_markup_is_refused(speech):
    with pytest.raises(Refused) as refused:
        quotes.check_speech(speech, STORY)
    assert refused.value.code == "bad_quote_markup"


def test_span_quotes_are_written_out_from_the_passage():
    start = STORY.index("nobody was aboard")
    text, found = quotes.check_speech(f'See <quote span="{start}:{start + 17}"/>.', STORY)
    assert text == "See <quote>nobody was aboard</quote>."
    assert found[0].status == quotes.VERIFIED and (found[0].start, found[0].end) == (start, start + 17)


def test_a_span_outside_the_passage_is_refused():
    with pytest.raises(Refused) as refused:
        quotes.check_speech(f'<quote span="10:{len(STORY) + 5}"/>', STORY)
    assert refused.value.code == "bad_quote_span"


def test_the_per_turn_budget_refuses_a_speech_that_quotes_too_much():
    speech = "<quote>a fire broke out in the forward cabin</quote> and <quote>nobody was aboard</quote>"
    with pytest.raises(Refused) as refused:
        quotes.check_speech(speech, STORY, per_turn=40)
    assert refused.value.code == "quote_budget" and "40" in refused.value.message
    assert len(quotes.check_speech(speech, STORY, per_turn=60)[1]) == 2


def test_fit_speech_unmarks_quotes_past_the_budget_and_cuts_outside_quotes():
    speech = "First <quote>a fire broke out</quote> then <quote>nobody was aboard</quote> and more words here"
    fitted = quotes.fit_speech(speech, char_limit=75, quote_chars_left=20)
    assert fitted == 'First <quote>a fire broke out</quote> then "nobody was aboard" and more'
    assert quotes.quote_chars(quotes.find_quotes(fitted)) <= 20
    assert quotes.fit_speech(speech, char_limit=20, quote_chars_left=None) == "First"
    assert quotes.fit_speech("Some words <quote>a fire</quote", 100, None) == "Some words a fire"


def test_protocols_refuse_bad_quote_limits():
    with pytest.raises(ValueError, match="quote_chars_per_turn"):
        Protocol(quote_chars_per_turn=-1)
    assert Protocol(quote_chars_per_turn=250, quote_chars_per_debate=500).to_dict()["quote_chars_per_debate"] == 500


# Through the services, on the database.


@pytest.fixture
def story_debate(make_user):
    from debates import services
    from debates.models import Question

    question = Question.objects.create(
        text="Why does the captain open the airlock?",
        answers=["To vent a fire", "To escape the ship"],
        correct_index=0,
        hidden_material=STORY,
        public_material="A story about a spaceship.",
    )
    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    protocol = Protocol(
        rounds=("simultaneous", "sequential", "sequential"),
        char_limit=600,
        quote_chars_per_turn=80,
        quote_chars_per_debate=100,
    )
    debate = services.create_debate(
        question, protocol, {"A": (alice, 0), "B": (bob, 1)}, judge=judy, answer_order=[0, 1]
    )
    services.start_debate(debate.pk)
    return debate, alice, bob, judy


def _state(debate, user):
    from debates import snapshots
    from debates.models import Debate

    debate = Debate.objects.get(pk=debate.pk)
    return snapshots.state_for(debate, snapshots.viewer_for(debate, user))


def test_quotes_are_checked_when_a_speech_is_saved(story_debate):
    from debates import services

    debate, alice, _, _ = story_debate
    turn, _ = services.submit_action(
        debate.pk,
        alice,
        kind="speech",
        text=(
            "The log: <quote>opened the airlock to vent the fire</quote>. "
            "Also <quote>the captan's quick decision</quote>"
            " and <quote>the crew mutinied</quote>."
        ),
    )
    stored = turn.payload["quotes"]
    assert [q["status"] for q in stored] == ["verified", "near", "unverified"]
    assert STORY[stored[0]["start"] : stored[0]["end"]] == "opened the airlock to vent the fire"
    assert stored[2]["start"] is None


def test_a_client_cannot_supply_its_own_quote_statuses(story_debate):
    from debates import services

    debate, alice, _, _ = story_debate
    forged = {"quotes": [{"text": "the crew mutinied", "status": "verified", "start": 0, "end": 5}]}
    turn, _ = services.submit_action(
        debate.pk, alice, kind="speech", text="<quote>the crew mutinied</quote>", payload=forged
    )
    assert turn.payload["quotes"][0]["status"] == "unverified"
    turn, _ = services.submit_action(debate.pk, story_debate[2], kind="speech", text="No quotes.", payload=forged)
    assert "quotes" not in turn.payload


def test_a_speech_over_the_turn_budget_is_refused_and_nothing_is_stored(story_debate):
    from debates import services

    debate, alice, _, _ = story_debate
    turns, seq = debate.turns.count(), debate.events.count()
    with pytest.raises(Refused) as refused:
        services.submit_action(
            debate.pk,
            alice,
            kind="speech",
            text=(
                "<quote>Captain Mara Ellis kept the crew on short rations, "
                "because the hydroponics bay had failed</quote>"
            ),
        )
    assert refused.value.code == "quote_budget"
    assert (debate.turns.count(), debate.events.count()) == (turns, seq)


def test_the_debate_budget_counts_each_debaters_earlier_quotes(story_debate):
    from debates import services

    debate, alice, bob, _ = story_debate
    services.submit_action(debate.pk, alice, kind="speech", text="<quote>a fire broke out in the forward cabin</quote>")
    services.submit_action(debate.pk, bob, kind="speech", text="<quote>Engineer Tomas Reyes later wrote</quote>")
    # Alice has used 37 of her 100 characters; Bob's quotes do not count against her.
    with pytest.raises(Refused) as refused:
        services.submit_action(
            debate.pk,
            alice,
            kind="speech",
            text="<quote>Ellis sealed the bulkhead and opened the airlock to vent the fire</quote>",
        )
    assert refused.value.code == "quote_budget" and "63 characters" in refused.value.message
    services.submit_action(debate.pk, alice, kind="speech", text="<quote>nobody was aboard that section</quote>")
    assert services.quote_chars_left(debate, "A") == 100 - 37 - 30


def test_the_judge_sees_each_quotes_status_but_never_the_passage(story_debate):
    from debates import services

    debate, alice, bob, judy = story_debate
    services.submit_action(debate.pk, alice, kind="speech", text="<quote>opened the airlock to vent the fire</quote>")
    services.submit_action(debate.pk, bob, kind="speech", text="<quote>the captain fled the ship</quote>")
    state = _state(debate, judy)
    assert [(q["seat"], q["text"], q["status"]) for q in state["quotes"]] == [
        ("A", "opened the airlock to vent the fire", "verified"),
        ("B", "the captain fled the ship", "unverified"),
    ]
    assert all(set(q) == {"text", "status", "round", "seat"} for q in state["quotes"])
    shown = json.dumps(state)
    assert "hidden" not in state and "hydroponics" not in shown and "Stardust" not in shown
    revealed = debate.events.get(kind="speeches_revealed").data["speeches"]
    assert [s["quotes"] for s in revealed] == [
        [{"text": "opened the airlock to vent the fire", "status": "verified"}],
        [{"text": "the captain fled the ship", "status": "unverified"}],
    ]
    # Debaters, who can read the passage anyway, see where each quote sits.
    assert _state(debate, bob)["quotes"][0]["start"] == STORY.index("opened the airlock")


def test_sealed_speeches_keep_their_quotes_out_of_the_panel(story_debate):
    from debates import services

    debate, alice, bob, judy = story_debate
    services.submit_action(debate.pk, alice, kind="speech", text="<quote>a fire broke out</quote>")
    assert _state(debate, judy)["quotes"] == []
    assert _state(debate, bob)["quotes"] == []
    assert [q["text"] for q in _state(debate, alice)["quotes"]] == ["a fire broke out"]


def test_a_near_quote_is_found_in_a_story_of_thirty_thousand_characters():
    rng = random.Random(3)
    vocabulary = STORY.split()
    story = " ".join(rng.choice(vocabulary) for _ in range(6_000))
    assert len(story) > 30_000
    piece = story[21_000:21_200]
    typo = piece[:100] + "zq" + piece[102:]
    found = quotes.Passage(story).check(typo)
    assert found.status == quotes.NEAR and found.edits <= 2
    assert quotes.normalise(story[found.start : found.end])[0] == quotes.normalise(piece)[0]
