"""What a new user hit on the way through the platform (issue 11, item 9), one check per fix that
is not covered next to the feature it belongs to (the verdict form's start, the experiment form's
example and save checks, the Versions table: tests/test_pages.py, tests/test_experiment_pages.py)."""

import json
import shutil
import subprocess

import pytest
from django.urls import reverse

from debates import services
from debates.models import Question
from debates.protocol import Protocol

from .conftest import ROOT

pytestmark = pytest.mark.django_db


def image_debate(make_user):
    image = [[0] * 28 for _ in range(28)]
    image[10][10] = 200
    question = Question.objects.create(
        kind=Question.KIND_IMAGE, text="Which digit?", answers=["3", "7"], correct_index=1, hidden_image=image
    )
    alice, bob, judy = make_user("ia", "debater"), make_user("ib", "debater"), make_user("ij", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (alice, 1), "B": (bob, 0)}, judge=judy
    )
    return debate, alice, judy


def test_the_hidden_image_is_titled_the_image_not_the_passage(client, make_user):
    debate, alice, judy = image_debate(make_user)
    client.force_login(alice)
    page = client.get(reverse("debate_room", args=[debate.pk])).content.decode()
    assert '<h2 id="passage-heading">The image</h2>' in page and "The passage</h2>" not in page


def test_the_pixel_board_says_that_revealing_sends_the_turn():
    board = (ROOT / "templates/debates/_pixel_board.html").read_text()
    assert "Reveal and send your turn</button>" in board and "revealing sends your turn" in board
    script = (ROOT / "static/js/pixel-board.js").read_text()
    assert "and send your turn`" in script


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_scheduled_debate_says_it_starts_when_a_researcher_presses_start():
    script = (
        f"const m = await import({json.dumps((ROOT / 'static/js/debate-state.js').as_uri())});\n"
        "console.log(JSON.stringify(m.describeTurn({status: 'scheduled', view: 'judge'})));"
    )
    done = subprocess.run(
        [shutil.which("node"), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    detail = json.loads(done.stdout)["detail"]
    assert "presses Start" in detail and "opens it" not in detail


def test_the_new_experiment_form_links_documentation_that_exists(client, make_user):
    client.force_login(make_user("rx", "researcher"))
    page = client.get(reverse("experiment_new")).content.decode()
    assert "docs/experiments.md" in page
    documentation = (ROOT / "docs/experiments.md").read_text()
    # Every top-level field the parser knows is documented.
    for field in (
        "dataset",
        "protocols",
        "debaters",
        "judges",
        "counterbalance",
        "blinding",
        "time_limits",
        "target_verdicts",
        "prompts",
        "study",
    ):
        assert f"`{field}`" in documentation, field


@pytest.mark.postgresql  # the first page is PostgreSQL's, which makes the CSV tables
def test_csv_download_says_why_before_the_click_where_the_database_cannot_make_it(client, make_user, monkeypatch):
    from types import SimpleNamespace

    from debates.models import Experiment
    from judging import researcher_views

    researcher = make_user("rcsv", "researcher")
    experiment = Experiment.objects.create(name="CSV", owner=researcher)
    client.force_login(researcher)
    url = reverse("experiment_detail", args=[experiment.pk])
    export_url = reverse("experiment_export", args=[experiment.pk, "csv"])
    assert f'href="{export_url}"' in client.get(url).content.decode()  # PostgreSQL makes the CSV tables
    monkeypatch.setattr(researcher_views, "connection", SimpleNamespace(vendor="sqlite"))
    page = client.get(url).content.decode()
    assert f'href="{export_url}"' not in page
    assert 'disabled aria-describedby="csv-why">Download CSV' in page and "embedded\n      sqlite database" in page


@pytest.fixture
def cheap_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_forgotten_password_is_reset_by_an_emailed_link(client, make_user, cheap_hashing, mailoutbox):
    user = make_user("forgetful", "judge")
    user.email = "forgetful@example.org"
    user.save()
    assert 'href="/accounts/password-reset/"' in client.get(reverse("login")).content.decode()
    sent = client.post(reverse("password_reset"), {"email": "forgetful@example.org"})
    assert sent.status_code == 302 and sent["Location"] == reverse("password_reset_done")
    assert len(mailoutbox) == 1 and mailoutbox[0].subject == "DebateLab: reset your password"
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/reset/" in line)
    form = client.get(link.split("testserver", 1)[1], follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-new-long-password-7", "new_password2": "a-new-long-password-7"}
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("a-new-long-password-7")
    client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert len(mailoutbox) == 1  # an unknown address gets no mail (and the page does not say so)


def test_joining_by_invitation_keeps_an_email_for_resets(client, cheap_hashing):
    from django.contrib.auth.models import User

    from debates.models import Invitation

    invitation = Invitation.objects.create(role="judge")
    response = client.post(
        reverse("join", args=[invitation.token]),
        {
            "username": "newjudge",
            "email": "new@example.org",
            "password1": "long-enough-pass-9",
            "password2": "long-enough-pass-9",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(username="newjudge").email == "new@example.org"
