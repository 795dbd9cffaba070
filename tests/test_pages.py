"""Every page and URL, tried as anonymous, judge, debater, researcher and a user with no seat:
status codes, what each role sees, and that the judge's pages never carry hidden material."""

import json

import pytest
from django.urls import reverse

from debates import services
from debates.models import Debate, Invitation
from judging.models import Verdict

pytestmark = pytest.mark.django_db


SECRET = "SECRET PASSAGE"
PRIVATE_NOTE = "PRIVATE-NOTE-only-alice-sees-this"


@pytest.fixture
def people(make_user, two_round_debate):
    from django.contrib.auth.models import User

    researcher = make_user("rita", "researcher")
    researcher.is_staff = True  # staff status grants nothing by itself
    researcher.save()
    two_round_debate.created_by = researcher  # rita runs this debate: it is in her space
    two_round_debate.save(update_fields=["created_by"])
    return {
        "anonymous": None,
        "alice": User.objects.get(username="alice"),  # debater A, argues the correct answer
        "bob": User.objects.get(username="bob"),  # debater B
        "judy": User.objects.get(username="judy"),  # the judge
        "rita": researcher,
        "nobody": make_user("nora", "debater"),  # a debater without a seat in this debate
    }


def client_for(client, user):
    if user is not None:
        client.force_login(user)
    return client


def play_to_the_end(debate, people, end_early=False):
    """Both rounds of the fixture's debate through the one write path (services)."""
    debate.refresh_from_db()
    if debate.status == Debate.SCHEDULED:
        services.start_debate(debate.pk)
    services.submit_action(
        debate.pk,
        people["alice"],
        kind="speech",
        text="Alice opens: the fire.",
        private_note=PRIVATE_NOTE,
        client_id="a1",
    )
    services.submit_action(debate.pk, people["bob"], kind="speech", text="Bob opens: escape.", client_id="b1")
    services.submit_action(
        debate.pk,
        people["judy"],
        kind="feedback",
        probabilities=[0.6, 0.4],
        text="Tell me more.",
        end_debate=end_early,
        client_id="j1",
    )
    if not end_early:
        services.submit_action(debate.pk, people["alice"], kind="speech", text="Alice again.", client_id="a2")
        services.submit_action(debate.pk, people["bob"], kind="speech", text="Bob again.", client_id="b2")
    debate.refresh_from_db()
    assert debate.status == Debate.AWAITING_VERDICT


# ---------------------------------------------------------------- status codes, role by role

ROOM_STATUS = {"anonymous": 302, "alice": 200, "bob": 200, "judy": 200, "rita": 200, "nobody": 403}
VERDICT_STATUS = {"anonymous": 302, "alice": 403, "bob": 403, "judy": 200, "rita": 403, "nobody": 403}


@pytest.mark.parametrize("who", ["anonymous", "alice", "judy", "rita", "nobody"])
def test_lobby_needs_a_login(client, people, who):
    response = client_for(client, people[who]).get(reverse("lobby"))
    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == 200
        assert b"My debates" in response.content


@pytest.mark.parametrize("who", list(ROOM_STATUS))
def test_debate_room_by_role(client, people, two_round_debate, who):
    response = client_for(client, people[who]).get(reverse("debate_room", args=[two_round_debate.pk]))
    assert response.status_code == ROOM_STATUS[who]
    if who == "anonymous":
        assert response["Location"].startswith(reverse("login"))
    if response.status_code == 403:
        assert b"You cannot open this page" in response.content


@pytest.mark.parametrize("who", list(VERDICT_STATUS))
def test_verdict_page_by_role(client, people, two_round_debate, who):
    response = client_for(client, people[who]).get(reverse("verdict_form", args=[two_round_debate.pk]))
    assert response.status_code == VERDICT_STATUS[who]


@pytest.mark.parametrize("who", list(ROOM_STATUS))
def test_state_api_by_role(client, people, two_round_debate, who):
    response = client_for(client, people[who]).get(reverse("api_debate_state", args=[two_round_debate.pk]))
    assert response.status_code == ROOM_STATUS[who]
    if response.status_code == 200:
        assert response.json()["debate"] == two_round_debate.pk


@pytest.mark.parametrize("who", ["alice", "judy", "rita", "nobody"])
@pytest.mark.parametrize(
    "name", ["debate_room", "verdict_form", "api_debate_state", "api_debate_action", "debate_start"]
)
def test_unknown_debate_is_404(client, people, who, name):
    url = reverse(name, args=[999999])
    c = client_for(client, people[who])
    response = (
        c.post(url, data="{}", content_type="application/json")
        if name in ("api_debate_action", "debate_start")
        else c.get(url)
    )
    if name == "debate_start" and who != "rita":
        assert response.status_code == 403  # only researchers may start anything at all
    else:
        assert response.status_code == 404
        if name in ("debate_room", "verdict_form"):
            assert b"We could not find that page" in response.content


def test_anonymous_gets_login_for_every_private_url(client, two_round_debate):
    debate_id = two_round_debate.pk
    for name in ("lobby", "debate_room", "verdict_form", "api_debate_state"):
        url = reverse(name, args=[debate_id]) if name != "lobby" else reverse(name)
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"] == f"{reverse('login')}?next={url}"
    for name in ("debate_start", "api_debate_action"):
        response = client.post(reverse(name, args=[debate_id]))
        assert response.status_code == 302, name
    assert Debate.objects.get(pk=debate_id).status == Debate.SCHEDULED


@pytest.mark.parametrize(
    "who,expected", [("anonymous", 302), ("alice", 403), ("judy", 403), ("nobody", 403), ("rita", 302)]
)
def test_start_button_only_for_researchers(client, people, two_round_debate, who, expected):
    url = reverse("debate_start", args=[two_round_debate.pk])
    c = client_for(client, people[who])
    assert c.get(url).status_code == (302 if who == "anonymous" else 405)
    response = c.post(url)
    assert response.status_code == expected
    two_round_debate.refresh_from_db()
    assert two_round_debate.status == (Debate.LIVE if who == "rita" else Debate.SCHEDULED)
    if who == "rita":
        assert response["Location"] == reverse("debate_room", args=[two_round_debate.pk])


def test_starting_twice_shows_the_reason(client, people, two_round_debate):
    c = client_for(client, people["rita"])
    c.post(reverse("debate_start", args=[two_round_debate.pk]))
    response = c.post(reverse("debate_start", args=[two_round_debate.pk]), follow=True)
    assert response.status_code == 200
    assert b"already started" in response.content


def test_start_button_shown_to_researchers_on_scheduled_debates_only(client, people, two_round_debate):
    url = reverse("debate_room", args=[two_round_debate.pk])
    start = reverse("debate_start", args=[two_round_debate.pk]).encode()
    assert start in client_for(client, people["rita"]).get(url).content
    client.logout()
    assert start not in client_for(client, people["alice"]).get(url).content
    services.start_debate(two_round_debate.pk)
    client.logout()
    assert start not in client_for(client, people["rita"]).get(url).content


@pytest.mark.parametrize(
    "who,expected,code",
    [("alice", 400, "not_started"), ("judy", 400, "not_started"), ("rita", 403, None), ("nobody", 403, None)],
)
def test_action_api_by_role(client, people, two_round_debate, who, expected, code):
    """Seated people are refused with a reason (not started yet); the researcher running the debate
    may look but not act, and gets 403 like people without any access."""
    c = client_for(client, people[who])
    url = reverse("api_debate_action", args=[two_round_debate.pk])
    assert c.get(url).status_code == 405
    response = c.post(
        url, data=json.dumps({"type": "speech", "text": "hi", "client_id": "x"}), content_type="application/json"
    )
    assert response.status_code == expected
    if code:
        assert response.json()["error"]["code"] == code
    assert not two_round_debate.turns.exists()


def test_login_page_signs_in_and_out(client, people):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'autocomplete="current-password"' in response.content
    response = client.post(reverse("login"), {"username": "judy", "password": "wrong"})
    assert response.status_code == 200
    assert b'class="notice error"' in response.content
    response = client.post(reverse("login"), {"username": "judy", "password": "pass-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == reverse("lobby")
    assert client.get(reverse("lobby")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # signing out is a POST (a form in the header)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("lobby")).status_code == 302


def test_join_link(client, people):
    assert client.get(reverse("join", args=["no-such-token"])).status_code == 404
    invitation = Invitation.objects.create(role="judge", uses_left=1)
    url = reverse("join", args=[invitation.token])
    page = client.get(url)
    assert page.status_code == 200 and b"invited to join DebateLab as a <strong>judge" in page.content
    refused = client.post(url, {"username": "newjudge", "password1": "x", "password2": "y"})
    assert refused.status_code == 200 and b"errorlist" in refused.content
    response = client.post(
        url, {"username": "newjudge", "password1": "a-Long-pass-4321", "password2": "a-Long-pass-4321"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("lobby")
    assert client.get(reverse("lobby")).status_code == 200
    client.logout()
    assert client.get(url).status_code == 404  # used up


@pytest.mark.parametrize("who,expected", [("anonymous", 200), ("judy", 200)])
def test_healthz(client, people, who, expected):
    response = client_for(client, people[who]).get(reverse("healthz"))
    assert response.status_code == expected
    assert response.json()["database"] == "ok"


@pytest.mark.parametrize(
    "who,expected", [("anonymous", 302), ("alice", 302), ("judy", 302), ("nobody", 302), ("rita", 302)]
)
def test_admin_only_for_platform_administrators(client, people, who, expected):
    response = client_for(client, people[who]).get(reverse("admin:index"))
    assert response.status_code == expected
    if expected == 302:
        assert response["Location"].startswith(reverse("admin:login"))


# ---------------------------------------------------------------- what each page shows


def test_lobby_lists_seats_by_role_with_calls_to_action(client, people, two_round_debate):
    debate = two_round_debate
    room = reverse("debate_room", args=[debate.pk]).encode()
    verdict = reverse("verdict_form", args=[debate.pk]).encode()

    alice = client_for(client, people["alice"]).get(reverse("lobby")).content
    assert b"Debating" in alice and room in alice and b"To judge" not in alice
    client.logout()
    judy = client_for(client, people["judy"]).get(reverse("lobby")).content
    assert b"To judge" in judy and room in judy and verdict not in judy
    client.logout()
    rita = client_for(client, people["rita"]).get(reverse("lobby")).content
    assert b"Recent debates" in rita and room in rita and reverse("admin:index").encode() not in rita
    client.logout()
    nora = client_for(client, people["nobody"]).get(reverse("lobby")).content
    assert b"Nothing here yet" in nora and room not in nora

    services.start_debate(debate.pk)
    client.logout()
    alice = client_for(client, people["alice"]).get(reverse("lobby")).content
    assert b"Your turn" in alice  # simultaneous first round: both debaters may write

    play_to_the_end(debate, people)
    client.logout()
    judy = client_for(client, people["judy"]).get(reverse("lobby")).content
    assert b"Give verdict" in judy and verdict in judy


def test_rooms_show_each_role_what_it_may_see(client, people, two_round_debate):
    debate = two_round_debate
    url = reverse("debate_room", args=[debate.pk])
    alice = client_for(client, people["alice"]).get(url).content.decode()
    assert SECRET in alice and 'id="speech-text"' in alice and "Debate " in alice
    assert "feedback-p0" not in alice
    client.logout()
    judy = client_for(client, people["judy"]).get(url).content.decode()
    assert SECRET not in judy and 'id="speech-text"' not in judy and 'id="feedback-p0"' in judy
    assert "argued by" in judy  # the judge sees which debater argues which answer
    client.logout()
    rita = client_for(client, people["rita"]).get(url).content.decode()
    assert SECRET in rita and "Correct answer" in rita and 'id="speech-text"' not in rita


def test_judge_pages_never_contain_hidden_material(client, people, two_round_debate):
    """Every page and API answer the judge gets, at every stage, free of secrets; the debater's
    pages carry them (so the check can fail)."""
    debate = two_round_debate
    judge = client_for(client, people["judy"])
    forbidden = [
        SECRET,
        PRIVATE_NOTE,
        "correct_answer",
        "honest_seats",
        "✓ correct",
        "Correct answer",
        "hidden_material",
        "my_answer",
    ]

    def judge_sees():
        pages = [
            judge.get(reverse("debate_room", args=[debate.pk])),
            judge.get(reverse("verdict_form", args=[debate.pk])),
            judge.get(reverse("api_debate_state", args=[debate.pk])),
            judge.get(reverse("api_debate_state", args=[debate.pk]) + "?after=0"),
            judge.get(reverse("lobby")),
        ]
        for page in pages:
            assert page.status_code == 200
            body = page.content.decode()
            for secret in forbidden:
                assert secret not in body, (page.request["PATH_INFO"], secret)

    judge_sees()
    play_to_the_end(debate, people)
    judge_sees()
    verdict = judge.post(
        reverse("verdict_form", args=[debate.pk]),
        {"p0": "70", "p1": "30", "reason": "Alice quoted the passage.", "client_id": "v1"},
    )
    assert verdict.status_code == 302
    judge_sees()

    client.logout()
    alice = client_for(client, people["alice"])
    alice_room = alice.get(reverse("debate_room", args=[debate.pk])).content.decode()
    assert SECRET in alice_room and PRIVATE_NOTE in alice_room


def test_verdict_form_flow(client, people, two_round_debate):
    debate = two_round_debate
    url = reverse("verdict_form", args=[debate.pk])
    judge = client_for(client, people["judy"])

    not_yet = judge.get(url)
    assert not_yet.status_code == 200 and b"not over yet" in not_yet.content and b'name="p0"' not in not_yet.content
    early = judge.post(url, {"p0": "70", "p1": "30", "reason": "early"})
    assert early.status_code == 400 and b"after the debate ends" in early.content

    play_to_the_end(debate, people, end_early=True)
    form = judge.get(url).content.decode()
    assert 'name="p0"' in form and 'name="p1"' in form and 'name="reason"' in form
    assert 'type="range"' in form and "verdict.js" in form
    # The sliders start from the judge's last report (60/40), not an even split.
    assert 'id="p0" name="p0" min="0" max="100" step="1" value="60"' in form
    assert 'id="p1" name="p1" min="0" max="100" step="1" value="40"' in form

    tie = judge.post(url, {"p0": "50", "p1": "50", "reason": "cannot decide", "seconds_spent": "12"})
    assert tie.status_code == 400 and b"tied" in tie.content
    assert b"cannot decide" in tie.content  # what the judge wrote is kept
    no_reason = judge.post(url, {"p0": "80", "p1": "20", "reason": "  "})
    assert no_reason.status_code == 400 and b"reason" in no_reason.content
    off_sum = judge.post(url, {"p0": "80", "p1": "30", "reason": "sure"})
    assert off_sum.status_code == 400
    assert b'value="80"' in off_sum.content  # the sliders come back where the judge left them
    assert not Verdict.objects.exists()

    done = judge.post(
        url,
        {
            "p0": "80",
            "p1": "20",
            "reason": "Alice quoted the ledger.",
            "seconds_spent": "42.5",
            "client_id": "verdict-1",
        },
    )
    assert done.status_code == 302 and done["Location"] == url
    verdict = Verdict.objects.get()
    shown = services.to_display(debate, verdict.probabilities)
    assert (
        shown == pytest.approx([0.8, 0.2])
        and verdict.seconds_spent == 42.5
        and verdict.reason == "Alice quoted the ledger."
    )

    thanks = judge.get(url).content.decode()
    assert "your verdict is recorded" in thanks and "Alice quoted the ledger." in thanks and "80%" in thanks
    assert "score" not in thanks.lower() and 'name="p0"' not in thanks

    again = judge.post(url, {"p0": "10", "p1": "90", "reason": "changed my mind"})
    assert again.status_code == 400 and b"already given your verdict" in again.content
    assert Verdict.objects.count() == 1 and Verdict.objects.get().reason == "Alice quoted the ledger."
    retried = judge.post(url, {"p0": "80", "p1": "20", "reason": "Alice quoted the ledger.", "client_id": "verdict-1"})
    assert retried.status_code == 302 and Verdict.objects.count() == 1
    debate.refresh_from_db()
    assert debate.status == Debate.COMPLETE


def test_the_verdict_page_shows_quotes_by_status_without_their_markup(client, make_user):
    from debates.models import Question
    from debates.protocol import Protocol

    question = Question.objects.create(
        text="Who?",
        answers=["x", "y"],
        correct_index=0,
        hidden_material="The lamp went out at midnight because the oil ran out.",
    )
    alice, bob, judy = make_user("vq1", "debater"), make_user("vq2", "debater"), make_user("vq3", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (alice, 0), "B": (bob, 1)}, judge=judy
    )
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, alice, kind="speech", text="See <quote>the oil ran out</quote>.")
    services.submit_action(debate.pk, bob, kind="speech", text="No: <quote>the keeper fell asleep</quote>.")
    client.force_login(judy)
    page = client.get(f"/debates/{debate.pk}/verdict/").content.decode()
    assert "&lt;quote&gt;" not in page and "<quote>" not in page
    assert 'quote-verified"><q>the oil ran out</q>' in page and "✓ verified quote" in page
    assert 'quote-unverified"><q>the keeper fell asleep</q>' in page
