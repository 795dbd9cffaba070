"""Accounts and output (issue 10, LOW findings): sign-in throttling (40 wrong passwords in 24 s,
then the right one worked), password reset by e-mail, API tokens that expire and can be made,
listed and revoked on a page, the Content-Security-Policy and the usual headers, spreadsheet
formulas in CSV exports, and experiment definitions that named people in pseudonymised exports."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from judging.models import ApiToken

PASSWORD = "pass-for-tests-1"


def sign_in(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


# Sign-in throttling


def test_wrong_passwords_lock_the_account_out_from_that_address_even_with_the_right_one(client, make_user, settings):
    make_user("alice", "debater")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "alice", "wrong").status_code == 200  # the form again, with an error
    assert sign_in(client, "alice", "wrong").status_code == 429  # the last try allowed locks the account
    locked = sign_in(client, "alice", PASSWORD)
    assert locked.status_code == 429 and b"Too many wrong passwords" in locked.content
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_and_a_success_resets_the_count(client, make_user, settings):
    make_user("alice", "debater")
    make_user("bob", "debater")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302  # one try left: it works
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "alice", "wrong").status_code == 200  # counting starts again
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "mallory", "guess")
    assert sign_in(client, "bob", PASSWORD).status_code == 302  # other accounts are not locked


def test_the_lockout_ends_after_the_cool_off(client, make_user, settings):
    from axes.models import AccessAttempt

    make_user("alice", "debater")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client, "alice", PASSWORD).status_code == 302


# Password reset by e-mail


def test_a_password_is_reset_through_a_one_time_link_sent_by_e_mail(client, make_user, settings):
    assert settings.EMAIL_BACKEND.endswith("locmem.EmailBackend")  # pytest-django's; the default is the console
    user = make_user("alice", "debater")
    user.email = "alice@example.org"
    user.save()
    response = client.post("/accounts/password-reset/", {"email": "alice@example.org"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.org"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200 and b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )
    assert done.status_code == 302
    assert sign_in(client, "alice", "a-new-long-passphrase").status_code == 302
    client.logout()
    assert b"not valid any more" in client.get(path, follow=True).content  # the link works once


def test_a_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302 and mail.outbox == []


@pytest.mark.subprocess
def test_the_default_mail_back_end_is_the_console():
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup(); print(settings.EMAIL_BACKEND)",
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=True,
    )
    assert out.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


# API tokens


def test_api_tokens_are_made_listed_and_revoked_on_a_page(client, make_user):
    rita = make_user("rita", "researcher")
    client.force_login(rita)
    made = client.post("/account/api-tokens/", {"name": "laptop", "days": "30"})
    assert made.status_code == 200
    key = made.content.decode().split("data-new-token>")[1].split("<")[0]
    token = ApiToken.objects.get(user=rita)
    assert token.name == "laptop" and token.key_hash == ApiToken.hash_key(key)
    assert abs((token.expires_at - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)
    listing = client.get("/account/api-tokens/").content.decode()
    assert token.prefix in listing and "laptop" in listing and key not in listing  # shown once only
    api = client.__class__()
    assert api.get("/api/experiments/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.post(f"/account/api-tokens/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/experiments/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    assert "revoked" in client.get("/account/api-tokens/").content.decode()


def test_an_expired_token_is_refused(client, make_user):
    _, key = ApiToken.issue(make_user("rita", "researcher"), days=1)
    assert client.get("/api/experiments/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/experiments/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_a_researcher_cannot_revoke_or_see_anothers_tokens(client, make_user):
    token, _ = ApiToken.issue(make_user("rita", "researcher"), "rita's")
    client.force_login(make_user("otto", "researcher"))
    assert client.post(f"/account/api-tokens/{token.pk}/revoke/").status_code == 404
    assert "rita's" not in client.get("/account/api-tokens/").content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize(
    "form", [{"name": "x", "days": "100000"}, {"name": "x" * 101, "days": "30"}, {"name": "x", "days": ""}]
)
def test_a_bad_token_request_makes_nothing(client, make_user, form):
    client.force_login(make_user("rita", "researcher"))
    assert client.post("/account/api-tokens/", form).status_code == 400
    assert ApiToken.objects.count() == 0


def test_tokens_are_listed_and_revoked_in_the_admin(client, django_user_model, make_user):
    token, _ = ApiToken.issue(make_user("rita", "researcher"), "rita's")
    client.force_login(django_user_model.objects.create_superuser("root", password=PASSWORD))
    assert token.prefix in client.get("/admin/judging/apitoken/").content.decode()
    client.post("/admin/judging/apitoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


# Headers


def test_pages_carry_a_content_security_policy_and_the_usual_headers(client, make_user):
    client.force_login(make_user("alice", "debater"))
    for path in ("/", "/accounts/login/"):
        response = client.get(path)
        policy = response["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ):
            assert directive in policy, (path, policy)
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_template_has_an_inline_script_or_event_handler():
    """Inline scripts would be blocked by the policy (the browser tests catch the rest)."""
    import re
    from pathlib import Path

    for template in (Path(__file__).parent.parent / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{template}: inline {tag}"
        assert not re.search(r"\son[a-z]+=\"", text), f"{template} has an inline event handler"


# Exports


@pytest.fixture
def hostile_experiment(make_user):
    """An experiment whose names a researcher chose to attack whoever opens the CSV."""
    from debates import services
    from debates.experiments import load_experiment
    from debates.models import Debate, Question
    from debates.protocol import Protocol
    from judging.services import submit_verdict

    owner, judy = make_user("rita", "researcher"), make_user("judy", "judge")
    make_user("jules", "judge")  # in the judge pool
    alice, bob = make_user("alice", "debater"), make_user("bob", "debater")
    text = (
        'name: "=HYPERLINK(\\"http://evil.example\\", \\"click\\")"\ndataset: {source: "@SUM(1+1)"}\n'
        'protocols: [{name: "+cmd|calc"}]\ndebaters: {kind: human, pool: [alice, bob]}\n'
        "judges: {kind: human, pool: [judy, jules]}\n"
    )
    version, _ = load_experiment(text, owner)
    question = Question.objects.create(text="-2+3", answers=["=1+1", "safe"], correct_index=0, source="@SUM(1+1)")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (alice, 0), "B": (bob, 1)}, judge=judy, answer_order=[0, 1]
    )
    Debate.objects.filter(pk=debate.pk).update(experiment_version=version, protocol_name="+cmd|calc")
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, alice, kind="speech", text="=IMPORTXML(A1)")
    services.submit_action(debate.pk, bob, kind="speech", text="-1 is a number")
    submit_verdict(debate.pk, judy, [0.7, 0.3], '=WEBSERVICE("http://evil")')
    return version.experiment


def _csv_tables(experiment, **options):
    from judging import export

    opts = export.ExportOptions(experiment_ids=[experiment.pk], **options)
    return {table: b"".join(export.csv_lines(table, opts)).decode() for table in export.CSV_TABLES}


@pytest.mark.postgresql
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(hostile_experiment):
    import csv

    tables = _csv_tables(hostile_experiment)
    for table, text in tables.items():
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not (
                    cell[:1] in ("=", "@", "\t", "\r") or (cell[:1] in "+-" and cell[:1] and not _is_number(cell))
                ), f"{table}: {cell!r}"
    assert "'=HYPERLINK(" in tables["debates"] and "'=IMPORTXML(A1)" in tables["turns"]
    assert "'=WEBSERVICE(" in tables["judgments"] and "'-1 is a number" in tables["turns"]


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.postgresql
def test_numbers_stay_numbers_in_the_csv(hostile_experiment):
    import csv

    judgments = list(csv.DictReader(io.StringIO(_csv_tables(hostile_experiment)["judgments"])))
    assert float(judgments[0]["score"]) < 0 and not judgments[0]["score"].startswith("'")  # a log score


def test_figure_csvs_are_neutralised_too():
    from judging.analysis import Figure

    figure = Figure("k", "t", "d", ["group", "value"])
    figure.rows = [{"group": "=HYPERLINK(1)", "value": -0.5}, {"group": "-x", "value": 1}]
    assert figure.csv().splitlines()[1:] == ["'=HYPERLINK(1),-0.5", "'-x,1"]


@pytest.mark.postgresql
def test_pseudonymised_exports_pseudonymise_the_experiment_definitions(hostile_experiment):
    from judging import export

    options = export.ExportOptions(experiment_ids=[hostile_experiment.pk])
    for fmt in export.FORMATS:
        files = dict(export.bundle(fmt, options))
        versions = b"".join(files[export.VERSIONS_NAME]).decode()
        for name in ("alice", "bob", "judy", "jules"):
            assert name not in versions, (fmt, name)
        record = json.loads(versions.splitlines()[0])
        pools = record["definition"]["judges"]["pool"] + record["definition"]["debaters"]["pool"]
        assert len(pools) == 4 and all(p.startswith("u-") for p in pools)
        assert record["source_text"] is None
    named = export.ExportOptions(experiment_ids=[hostile_experiment.pk], identities=True)
    record = json.loads(b"".join(dict(export.bundle("jsonl", named))[export.VERSIONS_NAME]).decode())
    assert record["definition"]["judges"]["pool"] == ["judy", "jules"] and "jules" in record["source_text"]


def test_the_pseudonyms_in_the_definition_match_the_records(hostile_experiment):
    from judging import export

    options = export.ExportOptions(experiment_ids=[hostile_experiment.pk])
    files = dict(export.bundle("jsonl", options))
    definition = json.loads(b"".join(files[export.VERSIONS_NAME]))["definition"]
    records = [json.loads(line) for line in b"".join(files[export.JSONL_NAME]).decode().splitlines()]
    assert records[0]["judge"] in definition["judges"]["pool"]


@pytest.mark.postgresql
def test_the_export_zip_is_still_a_zip(hostile_experiment, client, django_user_model):
    client.force_login(hostile_experiment.owner)
    response = client.get(f"/experiments/{hostile_experiment.pk}/export.csv.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "debates.csv" in archive.namelist()
