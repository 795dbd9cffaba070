"""Importers: question files (JSONL, CSV) and the NYU debate dataset, into the real database."""

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from debates.models import Debate, Question

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = DATA / "questions"


def run(command, *args, **options):
    out, err = StringIO(), StringIO()
    call_command(command, *[str(a) for a in args], stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def failing(command, *args, **options):
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(command, *[str(a) for a in args], stdout=StringIO(), stderr=err, **options)
    return str(failure.value), err.getvalue()


# Question files ---------------------------------------------------------------------------------


def test_a_good_jsonl_file_imports_every_field(db):
    out, _ = run("import_questions", QUESTIONS / "good.jsonl")

    assert "2 new, 0 updated, 0 unchanged" in out
    lighthouse = Question.objects.get(source="test-set", external_id="lighthouse-1")
    assert lighthouse.text == "Why does the keeper leave the lamp dark?"
    assert lighthouse.answers == ["To hide the island from raiders", "Because the oil ran out"]
    assert lighthouse.correct_index == 0
    assert lighthouse.hidden_material.startswith("The keeper let the lamp go dark")
    assert lighthouse.public_material == "A lighthouse keeper on a remote island."
    assert lighthouse.title == "The Dark Lamp"
    assert lighthouse.metadata == {"difficulty": "easy"}
    assert Question.objects.get(source="test-set", external_id="2").correct_index == 2


def test_reimporting_the_same_file_changes_nothing(db):
    run("import_questions", QUESTIONS / "good.jsonl")
    before = {q.pk: (q.text, q.answers, q.metadata) for q in Question.objects.all()}

    out, _ = run("import_questions", QUESTIONS / "good.jsonl")

    assert "0 new, 0 updated, 2 unchanged" in out
    assert {q.pk: (q.text, q.answers, q.metadata) for q in Question.objects.all()} == before


def test_a_changed_row_updates_its_question_once(db, tmp_path):
    run("import_questions", QUESTIONS / "good.jsonl")
    changed = tmp_path / "changed.jsonl"
    changed.write_text(
        QUESTIONS.joinpath("good.jsonl").read_text().replace("What colour is the boat?", "What colour is the sail?")
    )

    first, _ = run("import_questions", changed)
    second, _ = run("import_questions", changed)

    assert "0 new, 1 updated, 1 unchanged" in first
    assert "0 new, 0 updated, 2 unchanged" in second
    assert Question.objects.get(source="test-set", external_id="2").text == "What colour is the sail?"
    assert Question.objects.count() == 2


def test_a_question_with_debates_is_never_changed(db, tmp_path, make_user):
    from debates import services
    from debates.protocol import Protocol

    run("import_questions", QUESTIONS / "good.jsonl")
    boat = Question.objects.get(source="test-set", external_id="2")
    services.create_debate(boat, Protocol(), {"A": (make_user("ann"), 0), "B": (make_user("ben"), 2)}, seed=1)
    changed = tmp_path / "changed.jsonl"
    changed.write_text(QUESTIONS.joinpath("good.jsonl").read_text().replace('"correct_index": 2', '"correct_index": 0'))

    message, errors = failing("import_questions", changed)

    assert "nothing was imported" in message
    assert "line 3: id: question '2' (source 'test-set') already has debates" in errors
    boat.refresh_from_db()
    assert boat.correct_index == 2


def test_a_broken_jsonl_file_reports_each_bad_line_and_imports_nothing(db):
    message, errors = failing("import_questions", QUESTIONS / "bad.jsonl")

    assert "nothing was imported" in message
    assert "line 2: answers: give at least two answers (found 1)" in errors
    assert "line 3: correct_index: 2 is not an answer position" in errors
    assert "line 4: not valid JSON" in errors
    assert "line 5: id: 'ok-1' (source 'test-set') already appears on line 1" in errors
    assert "line 6: unknown field(s): correct_answer" in errors
    assert "line 1:" not in errors and "line 7:" not in errors
    assert Question.objects.count() == 0


def test_skip_invalid_imports_the_good_rows_and_reports_the_others(db):
    out, errors = run("import_questions", QUESTIONS / "bad.jsonl", skip_invalid=True)

    assert "2 new" in out and "skipped 5 row(s)" in out
    assert sorted(Question.objects.values_list("external_id", flat=True)) == ["ok-1", "ok-2"]
    assert Question.objects.get(external_id="ok-1").text == "Fine question?"  # the first of the two ok-1 rows
    assert "line 4: not valid JSON" in errors


def test_dry_run_checks_and_counts_without_writing(db):
    out, _ = run("import_questions", QUESTIONS / "good.jsonl", dry_run=True)

    assert "would import 2 new" in out
    assert Question.objects.count() == 0


def test_csv_with_numbered_answer_columns_and_a_default_source(db):
    out, _ = run("import_questions", QUESTIONS / "good_answer_columns.csv", source="letters")

    assert "2 new" in out
    letter = Question.objects.get(source="letters", external_id="c-1")
    assert letter.answers == ["The mayor", "The baker"]  # the empty answer_3 cell is no answer
    assert letter.correct_index == 1
    assert letter.hidden_material == "The baker wrote it.\nOn two lines."
    assert letter.metadata == {"year": 1921}
    assert Question.objects.get(source="letters", external_id="c-2").answers == ["North", "South", "East"]


def test_csv_with_a_json_answers_column(db):
    run("import_questions", QUESTIONS / "good_answers_json.csv")

    assert Question.objects.get(source="csv-json", external_id="j-1").answers == ["Yes", "No"]


def test_csv_rows_without_any_source_are_errors(db):
    _, errors = failing("import_questions", QUESTIONS / "good_answer_columns.csv")

    assert "line 2: source: missing" in errors and "line 4: source: missing" in errors
    assert Question.objects.count() == 0


def test_a_broken_csv_file_reports_the_line_each_row_starts_on(db):
    message, errors = failing("import_questions", QUESTIONS / "bad.csv", source="s")

    assert "nothing was imported" in message
    assert "line 3: correct_index: must be a whole number counted from 0, not 'first'" in errors
    assert "line 4: metadata: not valid JSON" in errors
    assert "line 5: answers: answer 1 must be non-empty text" in errors
    assert "line 7: the row has 7 cells but the header has 6" in errors
    assert Question.objects.count() == 0

    out, _ = run("import_questions", QUESTIONS / "bad.csv", source="s", skip_invalid=True)
    assert sorted(Question.objects.values_list("external_id", flat=True)) == ["b-1", "b-5"]


def test_a_bad_csv_header_stops_the_import_even_when_skipping_invalid_rows(db):
    message, errors = failing("import_questions", QUESTIONS / "bad_header.csv", source="s", skip_invalid=True)

    assert "line 1: unknown column(s): colour" in errors
    assert "line 1: answers: answer columns must be numbered answer_1, answer_2, ... without gaps" in errors
    assert "no valid rows" in message
    assert Question.objects.count() == 0


def test_a_file_with_an_unknown_extension_needs_a_format(db, tmp_path):
    odd = tmp_path / "questions.txt"
    shutil.copy(QUESTIONS / "good.jsonl", odd)

    message, _ = failing("import_questions", odd)
    assert "cannot tell the format" in message

    run("import_questions", odd, format="jsonl")
    assert Question.objects.count() == 2


# NYU debate dataset ---------------------------------------------------------------------------

NYU_FIXTURE = DATA / "nyu" / "pub"
NYU_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nyu-debate-2023" / "pub"
STORY = 'THE LAMP\n\n"Keep the lamp dark," said the keeper\'s wife. The raiders (three ships) passed the island by.'


@pytest.fixture
def nyu_fixture(db):
    out, err = run("import_nyu", NYU_FIXTURE, verbosity=0)
    return out, err


def test_nyu_rooms_that_cannot_be_represented_are_reported_by_name(nyu_fixture):
    out, err = nyu_fixture

    assert "Imported 3 room(s)" in out
    assert "broken-order-0: not imported: turn 1 (speech by B) does not replay: it is not debater B's turn" in err
    assert "broken-json-0: not imported: not valid JSON" in err
    assert "2 room(s) could not be represented" in err
    assert sorted(Debate.objects.values_list("external_id", flat=True)) == [
        "lamp-story-0",
        "lamp-story-1",
        "lamp-story-2",
    ]


def test_nyu_questions_keep_the_story_as_text_with_attribution(nyu_fixture):
    raiders = Question.objects.get(source="nyu-debate-2023", text="Why did the raiders pass the island by?")

    assert raiders.hidden_material == STORY
    assert raiders.title == "The Lamp"
    assert raiders.answers == ["The lamp was dark", "The sea was rough"]  # canonical: sorted
    assert raiders.correct_index == 0
    assert raiders.external_id.startswith("quality-90001:")
    assert raiders.metadata["license"] == "CC-BY-4.0" and "QuALITY" in raiders.metadata["attribution"]
    assert raiders.debates.count() == 2  # rooms 0 and 2 show its answers in different orders
    wife = Question.objects.get(source="nyu-debate-2023", text="What did the keeper's wife ask for?")
    assert wife.hidden_material == STORY  # one copy of a story, even where a room writes it differently
    assert wife.answers[wife.correct_index] == "A dark lamp"


def test_an_nyu_debate_keeps_its_seats_turns_quotes_and_order(nyu_fixture):
    from django.contrib.auth.models import User

    debate = Debate.objects.get(source="nyu-debate-2023", external_id="lamp-story-0")

    assert debate.status == Debate.COMPLETE
    assert debate.answer_order == [1, 0]  # the room showed "The sea was rough" first
    protocol = debate.get_protocol()
    assert protocol.rounds == ("judge_feedback", "simultaneous", "judge_feedback", "sequential", "judge_feedback")
    assert protocol.turn_penalty == 0.05 and protocol.scoring_rule == "log" and protocol.judge_may_end
    assert debate.provenance["setting"] == {"debaters": "human", "format": "debate"}
    assert debate.provenance["included_in_paper"] is True
    assert debate.provenance["nyu"]["rules"]["scoringFunction"]["LogScoreWithLinearPenalty"]["perTurnPenalty"] == 0.05

    seats = {p.seat: p for p in debate.participants.select_related("user")}
    assert {s: (p.alias, p.user.username, p.answer_index) for s, p in seats.items()} == {
        "A": ("Wobbly Walrus", "nyu:Wobbly Walrus", 1),
        "B": ("Fizzy Fern", "nyu:Fizzy Fern", 0),
        "judge": ("Quiet Quokka", "nyu:Quiet Quokka", None),
    }
    for user in User.objects.filter(username__startswith="nyu:"):
        assert not user.has_usable_password() and not user.is_active and not user.groups.exists()

    turns = list(debate.turns.order_by("id"))
    assert [(t.round_index, t.seat, t.kind) for t in turns] == [
        (0, "judge", "feedback"),
        (1, "A", "speech"),
        (1, "B", "speech"),
        (2, "judge", "feedback"),
        (3, "A", "speech"),
        (3, "B", "speech"),
        (4, "judge", "feedback"),
    ]
    assert [t.probabilities for t in turns if t.kind == "feedback"] == [[0.5, 0.5], [0.6, 0.4], [0.9, 0.1]]
    assert turns[-1].end_debate and turns[-1].author.username == "nyu:Quiet Quokka"
    opening = turns[2]
    assert opening.text == (
        'The wife says: <quote>"Keep the lamp dark,"</quote> and then '
        "<quote>The raiders (three ships) passed the island by.</quote>"
    )
    quotes = opening.payload["quotes"]
    assert [q["text"] for q in quotes] == ['"Keep the lamp dark,"', "The raiders (three ships) passed the island by."]
    for turn in turns:
        for quote in turn.payload.get("quotes", []):
            assert STORY[quote["start"] : quote["end"]] == quote["text"]
    assert [q["tokens"] for q in quotes] == [[4, 11], [17, 28]]  # the dataset's own token spans
    assert opening.payload["nyu"] == {"round": 1, "timestamp": 1680000000000 + 3 * 3600 * 1000}
    assert opening.created_at.timestamp() == 1680000000 + 3 * 3600


def test_an_nyu_debate_replays_through_the_engine_and_shows_in_the_answer_order(nyu_fixture):
    from debates.snapshots import JUDGE_VIEW, OBSERVER, Viewer, state_for

    debate = Debate.objects.get(external_id="lamp-story-0")
    engine = debate.engine()
    assert engine.finished and engine.ended_by_judge

    events = list(debate.events.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, debate.last_seq + 1))
    assert events[0].kind == "debate_started" and events[-1].kind == "verdict_given"
    assert [e.data["probabilities"] for e in events if e.kind == "feedback"] == [[0.5, 0.5], [0.4, 0.6], [0.1, 0.9]]

    state = state_for(debate, Viewer(OBSERVER, None))
    assert state["question"]["answers"] == ["The sea was rough", "The lamp was dark"]
    assert state["correct_answer"] == 1 and state["honest_seats"] == ["B"]
    assert state["turns"][-1]["probabilities"] == [0.1, 0.9]

    # a new judge re-judging it sees the quotes, never where they sit in the story
    judged = state_for(debate, Viewer(JUDGE_VIEW, debate.participants.get(seat="judge")))
    assert "hidden" not in judged and "correct_answer" not in judged
    shown = json.dumps(judged["turns"])
    assert "Keep the lamp dark" in shown and '"start"' not in shown and '"tokens"' not in shown


def test_nyu_judgments_become_live_and_offline_verdicts_scored_by_the_rooms_rule(nyu_fixture):
    from judging import scoring
    from judging.models import Verdict

    debate = Debate.objects.get(external_id="lamp-story-0")
    live = Verdict.objects.get(debate=debate, live=True)
    assert live.judge.username == "nyu:Quiet Quokka"
    assert (live.probabilities, live.chosen_index, live.correct) == ([0.9, 0.1], 0, True)
    assert live.score == pytest.approx(scoring.score("log", [0.9, 0.1], 0, turns=2, turn_penalty=0.05))
    assert live.score == pytest.approx(live.provenance["nyu_judge_reward"])  # the dataset's own reward
    assert live.reason == "B quoted the story."
    assert live.after_turn == 7 and live.after_seq == debate.last_seq - 1

    offline = Verdict.objects.get(debate=debate, live=False, judge__username="nyu:Patient Puffin")
    assert (offline.probabilities, offline.correct, offline.seconds_spent) == ([0.7, 0.3], True, 300.0)
    assert offline.score == pytest.approx(scoring.score("log", [0.7, 0.3], 0, turns=1, turn_penalty=0.05))
    assert [s["probabilities"] for s in offline.provenance["steps"]] == [[0.5, 0.5], [0.7, 0.3]]

    # A 50/50 judgment is not correct (the paper's rule: p(correct) > 0.5); it is marked as a tie.
    tie = Verdict.objects.get(debate=debate, judge__username="nyu:Undecided Urchin")
    assert (tie.live, tie.probabilities, tie.correct, tie.chosen_index) == (False, [0.5, 0.5], False, 1)
    assert tie.provenance["tie"] is True and "tie" not in offline.provenance
    assert any("Undecided Urchin" in note for note in debate.provenance["notes"])


def test_unfinished_nyu_rooms_keep_their_status_and_ai_seats(nyu_fixture):
    abandoned = Debate.objects.get(external_id="lamp-story-1")
    assert abandoned.status == Debate.ABANDONED
    assert abandoned.provenance["setting"] == {"debaters": "ai", "format": "consultancy"}
    assert abandoned.get_protocol().debaters == ("B",)
    # the rounds played, then the next round and the rest of its cycle from the rules
    assert abandoned.get_protocol().rounds == (
        "judge_feedback",
        "sequential",
        "judge_feedback",
        "sequential",
        "judge_feedback",
    )
    assert not abandoned.engine().finished
    consultant = abandoned.participants.get(seat="B")
    assert consultant.user is None and consultant.agent == {"kind": "imported", "model": "GPT-4"}
    speech = abandoned.turns.get(kind="speech")
    assert speech.author is None
    (quote,) = speech.payload["quotes"]  # written as chunks in this room, mapped onto the stored story
    assert quote["text"] == '"Keep the lamp dark," said the keeper\'s wife.'
    assert STORY[quote["start"] : quote["end"]] == quote["text"]
    assert abandoned.verdicts.count() == 0

    scheduled = Debate.objects.get(external_id="lamp-story-2")
    assert scheduled.status == Debate.SCHEDULED and scheduled.turns.count() == 0
    assert scheduled.provenance["included_in_paper"] is None  # it has no metadata line
    assert scheduled.answer_order == [0, 1]


def test_reimporting_nyu_rooms_creates_nothing_twice(nyu_fixture, tmp_path):
    from django.contrib.auth.models import User
    from judging.models import Verdict

    counts = (Question.objects.count(), Debate.objects.count(), Verdict.objects.count(), User.objects.count())
    out, _ = run("import_nyu", NYU_FIXTURE, verbosity=0)

    assert "Imported 0 room(s)" in out and "3 room(s) were already imported" in out
    assert (Question.objects.count(), Debate.objects.count(), Verdict.objects.count(), User.objects.count()) == counts

    changed = tmp_path / "pub"
    shutil.copytree(NYU_FIXTURE, changed)
    room = changed / "debates" / "official" / "lamp-story-1.json"
    room.write_text(room.read_text().replace("That quote says dark.", "That quote says bright."))
    _, err = run("import_nyu", changed, verbosity=0)
    assert "lamp-story-1: its file changed since it was imported; the stored debate was not updated" in err
    assert Debate.objects.count() == counts[1]


def test_a_missing_nyu_folder_is_a_clear_error(db, tmp_path):
    message, _ = failing("import_nyu", tmp_path / "nowhere")

    assert "is not the NYU debate dataset" in message
    assert Debate.objects.count() == 0


def test_nyu_users_never_take_over_a_real_account(db, make_user):
    make_user("nyu:Quiet Quokka")  # somebody registered this name with a password

    _, err = run("import_nyu", NYU_FIXTURE, verbosity=0)

    assert "lamp-story-0: not imported: user nyu:Quiet Quokka exists with a password" in err
    assert not Debate.objects.filter(external_id="lamp-story-0").exists()


@pytest.mark.slow
@pytest.mark.skipif(not NYU_SHARED.is_dir(), reason="the NYU dataset is not in ../shared/datasets/")
def test_the_whole_nyu_dataset_imports_with_the_counts_of_its_metadata(db):
    from collections import Counter

    from judging.models import Verdict

    metadata = [json.loads(line) for line in (NYU_SHARED / "debates-metadata.jsonl").read_text().splitlines() if line]
    out, err = run("import_nyu", NYU_SHARED, verbosity=0)

    assert f"Imported {len(metadata)} room(s)" in out, err
    assert "not imported" not in err

    def setting(human, debate):
        return ("human" if human else "ai", "debate" if debate else "consultancy")

    expected = Counter(
        (setting(m["setting"]["isHuman"], m["setting"]["isDebate"]), m["includedInPaper"]) for m in metadata
    )
    stored = Counter(
        ((p["setting"]["debaters"], p["setting"]["format"]), p["included_in_paper"])
        for p in Debate.objects.filter(source="nyu-debate-2023").values_list("provenance", flat=True)
    )
    assert stored == expected

    # every live final judgment is a verdict, correct as the paper counts it and scored as the dataset scored it
    results = {
        m["name"]: m["status"]["Complete"]["result"]["judgingInfo"]
        for m in metadata
        if "Complete" in m["status"] and m["status"]["Complete"]["result"].get("judgingInfo")
    }
    live = {v.debate.external_id: v for v in Verdict.objects.filter(live=True).select_related("debate")}
    assert set(live) == set(results)
    for name, verdict in live.items():
        info = results[name]
        assert verdict.correct == (info["finalJudgement"][info["correctAnswerIndex"]] > 0.5), name
        assert verdict.score == pytest.approx(info["judgeReward"], abs=1e-9), name
    for debate in Debate.objects.filter(source="nyu-debate-2023", status=Debate.COMPLETE).iterator():
        assert debate.engine().finished, debate.external_id
