"""The JSON API for scripts: token auth, permissions, the OpenAPI schema, paging of verdict records."""

import io
import json
import zipfile

import pytest
from django.core.cache import cache
from django.core.management import call_command

from judging import analysis, export
from judging.models import ApiToken, Verdict

from .verdict_data import experiment_fixtures, user


shared, owner, experiment = experiment_fixtures(seed=5, questions=2, judges=3)


def _auth(key):
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


@pytest.fixture
def key(owner):
    return ApiToken.issue(owner, "tests")[1]


def test_schema_is_openapi_3_and_every_reference_resolves(client):
    response = client.get("/api/schema.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["token"]["in"] == "header"
    text = json.dumps(schema)
    for reference in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node = schema
        for step in reference.lstrip("#/").split("/"):
            node = node[step]
    record = schema["components"]["schemas"]["VerdictRecord"]["properties"]
    assert set(record) == {f.name for f in export.RECORD_FIELDS}
    assert record["turns"]["items"]["properties"]["quotes"]["items"]["properties"]["status"]["type"] == "string"
    from django.urls import resolve

    for path in schema["paths"]:
        resolve(path.replace("{experiment_id}", "1"))  # every documented path exists


@pytest.mark.parametrize("header", [None, "Token not-a-real-key", "Bearer something", "Token "])
def test_missing_or_wrong_tokens_get_401(client, experiment, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    for url in ("/api/experiments/", f"/api/experiments/{experiment.pk}/verdicts/"):
        response = client.get(url, **extra)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
        assert "error" in response.json()


def test_a_judges_token_may_not_export(client, experiment):
    _, judge_key = ApiToken.issue(user("judith", "judge"))
    response = client.get(f"/api/experiments/{experiment.pk}/verdicts/", **_auth(judge_key))
    assert response.status_code == 403


def test_a_researcher_reaches_only_their_experiments(client, experiment, key):
    other = user("otto", "researcher")
    others_experiment = type(experiment).objects.create(name="Otto's", owner=other)
    listed = client.get("/api/experiments/", **_auth(key)).json()["results"]
    assert [e["id"] for e in listed] == [experiment.pk]
    assert listed[0]["verdicts"] == Verdict.objects.filter(debate__experiment_version__experiment=experiment).count()
    for url in (
        f"/api/experiments/{others_experiment.pk}/",
        f"/api/experiments/{others_experiment.pk}/verdicts/",
        f"/api/experiments/{others_experiment.pk}/export.jsonl.zip",
    ):
        assert client.get(url, **_auth(key)).status_code == 403
    assert client.get("/api/experiments/999999/", **_auth(key)).status_code == 404


def test_paging_through_every_verdict(client, experiment, key):
    url = f"/api/experiments/{experiment.pk}/verdicts/?limit=7"
    seen, judges = [], {}
    while url:
        page = client.get(url, **_auth(key))
        assert page.status_code == 200
        body = page.json()
        for record in body["results"]:
            seen.append(record["verdict_id"])
            if record["judge"] is not None:
                verdict = Verdict.objects.get(pk=record["verdict_id"])
                # a judge keeps one pseudonym across pages, and it is not their username
                assert judges.setdefault(verdict.judge_id, record["judge"]) == record["judge"]
                assert record["judge"] != verdict.judge.username
            assert record["question"]["hidden_material"] is None
        url = body["next"]
    expected = list(
        Verdict.objects.filter(debate__experiment_version__experiment=experiment)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert seen == expected and len(expected) > 7

    _, second_key = ApiToken.issue(experiment.owner, "another script")
    record = client.get(f"/api/experiments/{experiment.pk}/verdicts/?limit=1", **_auth(second_key)).json()["results"][0]
    verdict = Verdict.objects.get(pk=record["verdict_id"])
    assert record["judge"] != judges[verdict.judge_id]  # another token, other pseudonyms


def test_bad_parameters_are_refused_clearly(client, experiment, key):
    for query, message in (
        ("limit=0", "limit"),
        ("limit=abc", "whole number"),
        ("limit=5000", "limit"),
        ("after=-1", "after"),
    ):
        response = client.get(f"/api/experiments/{experiment.pk}/verdicts/?{query}", **_auth(key))
        assert response.status_code == 400 and message in response.json()["error"]
    response = client.get(f"/api/experiments/{experiment.pk}/verdicts/?identities=1", **_auth(key))
    assert response.status_code == 403


def test_analysis_numbers_match_the_page(client, experiment, key):
    cache.clear()
    body = client.get(f"/api/experiments/{experiment.pk}/analysis/?wait=1", **_auth(key)).json()
    assert body["stale"] is False
    figures = {f.key: f for f in analysis.analyse(analysis.experiment_verdicts(experiment))["figures"]}
    assert {f["key"] for f in body["figures"]} == set(figures)
    for figure in body["figures"]:
        assert figure["rows"] == json.loads(json.dumps(figures[figure["key"]].rows))


def test_export_zip_and_datasheet_through_the_api(client, experiment, key):
    response = client.get(f"/api/experiments/{experiment.pk}/export.jsonl.zip", **_auth(key))
    assert response.status_code == 200 and response.streaming
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        lines = archive.read(export.JSONL_NAME).splitlines()
    assert len(lines) == Verdict.objects.filter(debate__experiment_version__experiment=experiment).count()
    sheet = client.get(f"/api/experiments/{experiment.pk}/datasheet.md", **_auth(key))
    assert sheet.status_code == 200 and b"## Fields of a record" in sheet.content


def test_token_command_prints_a_key_that_is_stored_only_as_a_hash(client, owner, capsys):
    call_command("create_api_token", owner.username, "--name", "laptop")
    printed = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(name="laptop")
    assert token.key_hash == ApiToken.hash_key(printed) and printed not in (token.key_hash, token.prefix)
    assert client.get("/api/experiments/", **_auth(printed)).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    owner.is_active = False
    owner.save()
    assert client.get("/api/experiments/", **_auth(printed)).status_code == 401
