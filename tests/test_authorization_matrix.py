"""Who may reach what (issue 10: researchers were separated only on the experiment pages). The
matrix is generated from the URL configuration and the websocket routes: every route x anonymous,
debater, other debater, judge, other judge, owner, other researcher, administrator. A route that
is added without a rule in POLICY fails test_every_route_has_a_rule the day it is added.

"Allowed" means an answer that is not a refusal (2xx, a redirect other than to the sign-in page,
or a 400 for a deliberately empty form); "refused" means 401/403/404, or the sign-in page for
people who are not signed in, and nothing changed."""

import json
import re

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

from debates import services
from debates.models import Debate, Experiment, Invitation, Question
from debates.protocol import Protocol

ROLES = ("anonymous", "debater", "other_debater", "judge", "other_judge", "owner", "other_researcher", "administrator")
SEATED = {"debater", "judge"}
OWNERS = {"owner", "administrator"}
RESEARCHERS = {"owner", "other_researcher", "administrator"}
SIGNED_IN = set(ROLES) - {"anonymous"}
EVERYONE = set(ROLES)

# route name -> (method, roles allowed). Debate routes concern a debate of the owner's experiment;
# experiment routes the owner's experiment; offline judging the judge's assignment.
POLICY = {
    "lobby": ("GET", SIGNED_IN),
    "login": ("GET", EVERYONE),
    "logout": ("POST", EVERYONE),
    "password_reset": ("GET", EVERYONE),
    "password_reset_done": ("GET", EVERYONE),
    "password_reset_confirm": ("GET", EVERYONE),
    "password_reset_complete": ("GET", EVERYONE),
    "join": ("GET", EVERYONE),
    "healthz": ("GET", EVERYONE),
    "debate_room": ("GET", SEATED | OWNERS),
    "api_debate_state": ("GET", SEATED | OWNERS),
    "debate_start": ("POST", OWNERS),
    "verdict_form": ("GET", {"judge"}),
    "api_debate_action": ("POST", SEATED),
    "experiment_list": ("GET", RESEARCHERS),
    "experiment_new": ("GET", RESEARCHERS),
    "experiment_detail": ("GET", OWNERS),
    "experiment_edit": ("GET", OWNERS),
    "experiment_start": ("POST", OWNERS),
    "experiment_analysis": ("GET", OWNERS),
    "experiment_analysis_stamp": ("GET", OWNERS),
    "experiment_figure_csv": ("GET", OWNERS),
    "experiment_export": ("GET", OWNERS),
    "experiment_datasheet": ("GET", OWNERS),
    "offline_judging": ("GET", {"judge"}),
    "nyu_analysis": ("GET", RESEARCHERS),
    "nyu_figure_csv": ("GET", RESEARCHERS),
    "api_tokens": ("GET", RESEARCHERS),
    "revoke_api_token": ("POST", {"owner"}),
    "api_schema": ("GET", EVERYONE),
    "api_experiments": ("GET", RESEARCHERS),
    "api_experiment": ("GET", OWNERS),
    "api_experiment_analysis": ("GET", OWNERS),
    "api_experiment_verdicts": ("GET", OWNERS),
    "api_experiment_export": ("GET", OWNERS),
    "api_experiment_datasheet": ("GET", OWNERS),
    # crowd studies: only the study's own participants, and nobody here takes part in it
    "study": ("GET", set()),
    "study_consent": ("POST", set()),
    "study_quiz": ("POST", set()),
    "study_practice": ("POST", set()),
    "study_survey": ("POST", set()),
    "study_status": ("GET", set()),
    "study_release": ("POST", OWNERS),
    "study_advance": ("POST", OWNERS),
    "study_monitor": ("GET", OWNERS),
    "study_export": ("GET", OWNERS),
    "experiment_invitation": ("POST", OWNERS),
    "experiment_bonus_batch": ("POST", OWNERS),
    "experiment_bonus_file": ("GET", OWNERS),
    "admin:login": ("GET", EVERYONE),
    "admin:logout": ("POST", EVERYONE),
}
ADMIN = ("GET", {"administrator"})  # every route of the admin site
ALSO_REFUSED = {"study": {400}}  # the study link without a platform's parameters: "open it from Prolific"
NO_SUCH_OBJECT = {"experiment_bonus_file"}  # no bonus file yet: those allowed get 404, the others 403
# ws/me/ carries only the signed-in person's own notices (tests/test_crowd_notices.py checks whose)
WEBSOCKETS = {
    "ws/debates/<int:debate_id>/": SEATED | OWNERS,
    "ws/experiments/<int:experiment_id>/": OWNERS,
    "ws/me/": SIGNED_IN,
}


def routes():
    """(name, route) for every named URL pattern, admin routes under the name 'admin:...'."""
    found = []

    def visit(patterns, prefix="", namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                visit(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                found.append((name, prefix + str(pattern.pattern)))

    visit(get_resolver().url_patterns)
    return found


def websocket_routes():
    from debates.routing import websocket_urlpatterns
    from judging.routing import websocket_urlpatterns as experiment_websockets

    return [str(p.pattern) for p in websocket_urlpatterns + experiment_websockets]


def _admin_route_without_object(route: str) -> bool:
    return route.startswith("admin/") and "<" not in route and "(?P" not in route


def test_every_route_has_a_rule():
    missing = [name for name, route in routes() if not name.startswith("admin:") and name not in POLICY]
    assert not missing, f"routes without an authorization rule in POLICY: {missing}"
    assert set(websocket_routes()) == set(WEBSOCKETS), "a websocket route without a rule in WEBSOCKETS"


CASES = [
    (name, route, role)
    for name, route in routes()
    if not name.startswith("admin:") or _admin_route_without_object(route)
    for role in ROLES
]


@pytest.fixture
def world(db, django_user_model):
    return build_world(django_user_model)


@pytest.fixture(scope="class")
def shared_world(django_db_setup, django_db_blocker):
    """One world for a class of tests, as Django's setUpTestData makes it: built in a transaction
    that is rolled back after the class, while each test runs in a savepoint of its own, so what one
    request changes never reaches the next test. (Building it for each of the matrix's hundreds of
    cases took most of make test-fast's time.)"""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from tests.live_clients import session_for

    with django_db_blocker.unblock(), transaction.atomic():
        world = build_world(get_user_model())
        world["sessions"] = {role: session_for(user) for role, user in world["people"].items()}
        yield world
        transaction.set_rollback(True)


def build_world(django_user_model):
    """Everybody, and one thing of each kind belonging to the owner. (Users without passwords:
    the matrix signs them in directly, and hashing hundreds of passwords would take minutes.)"""
    from django.contrib.auth.models import Group

    from debates.experiments import load_experiment
    from judging.models import ApiToken, Assignment

    def make_user(username, role=None):
        user = django_user_model.objects.create(username=username)
        if role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    people = {
        "debater": make_user("alice", "debater"),
        "other_debater": make_user("dora", "debater"),
        "judge": make_user("judy", "judge"),
        "other_judge": make_user("jim", "judge"),
        "owner": make_user("rita", "researcher"),
        "other_researcher": make_user("otto", "researcher"),
        "administrator": django_user_model.objects.create(username="root", is_superuser=True, is_staff=True),
    }
    people["other_researcher"].is_staff = True  # staff status grants nothing
    people["other_researcher"].save()
    question = Question.objects.create(
        text="Q?", answers=["yes", "no"], correct_index=0, hidden_material="PASSAGE", source="matrix"
    )
    version, _ = load_experiment("name: Mine\ndataset: {source: matrix}\nprotocols: [{name: p}]\n", people["owner"])
    protocol = Protocol(rounds=("sequential", "judge_feedback"))
    debate = services.create_debate(
        question,
        protocol,
        {"A": (people["debater"], 0), "B": (make_user("bob"), 1)},
        judge=people["judge"],
        answer_order=[0, 1],
    )
    debate.experiment_version = version
    debate.save(update_fields=["experiment_version"])
    finished = services.create_debate(
        question, protocol, {"A": (make_user("ann"), 0), "B": (make_user("ben"), 1)}, answer_order=[0, 1]
    )
    Debate.objects.filter(pk=finished.pk).update(status=Debate.AWAITING_VERDICT, experiment_version=version)
    assignment = Assignment.objects.create(debate=finished, judge=people["judge"], mode=Assignment.ALL_AT_ONCE)
    token, _ = ApiToken.issue(people["owner"], "mine")
    keys = {role: ApiToken.issue(user, role)[1] for role, user in people.items()}
    invitation = Invitation.objects.create(role="judge", uses_left=5)
    from judging.models import StudyParticipant

    study_participant = StudyParticipant.objects.create(
        experiment_id=version.experiment_id, user=make_user("pat"), platform="prolific", external_id="PAT"
    )
    values = {
        "debate_id": debate.pk,
        "experiment_id": version.experiment_id,
        "assignment_id": assignment.pk,
        "token_id": token.pk,
        "token": invitation.token,
        "fmt": "jsonl",
        "key": "accuracy-protocol",
        "uidb64": "MQ",
        "path": "",
        "participant_id": study_participant.pk,
        "batch": 1,
    }
    return {"people": people, "values": values, "keys": keys, "debate": debate}


def _url(route: str, values: dict) -> str:
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)
    if "nyu/analysis/" in url and url.endswith(".csv"):
        url = url.replace("accuracy-protocol", "nyu-reproduction")
    return "/" + url


class TestTheMatrix:
    """The matrix's cases share one world (shared_world)."""

    @pytest.mark.parametrize("name, route, role", CASES, ids=[f"{n}-{r}" for n, _, r in CASES])
    def test_the_route_answers_each_role_as_its_rule_says(self, name, route, role, shared_world, db, client):
        if role in shared_world["sessions"]:  # signed in before, once for all cases
            client.cookies[settings.SESSION_COOKIE_NAME] = shared_world["sessions"][role]
        check_route(name, route, role, shared_world, client)


def check_route(name, route, role, world, client):
    """Asks for the route as `role` (the client signed in as that role already) and checks the
    answer against POLICY, and that a refused request changed nothing."""
    method, allowed = POLICY.get(name) or ADMIN
    user = world["people"].get(role)
    headers = {}
    if route.startswith("api/") and "debates/" not in route and user is not None:
        headers["HTTP_AUTHORIZATION"] = f"Token {world['keys'][role]}"
    url = _url(route, dict(world["values"], token=world["values"]["token"]))
    before = _changes(world)
    response = client.post(url, **headers) if method == "POST" else client.get(url, **headers)
    signin = response.status_code == 302 and response["Location"].split("?")[0] in ("/accounts/login/", "/admin/login/")
    refused = response.status_code in {401, 403, 404, *ALSO_REFUSED.get(name, ())} or signin
    if name in NO_SUCH_OBJECT:
        refused = response.status_code in (401, 403) or signin
    if allowed == EVERYONE:  # public pages: whatever they answer (signing out redirects to sign-in)
        assert response.status_code < 500
        return
    if name.startswith("admin:") and role == "administrator":
        refused = signin  # in the admin: a view the admin itself turns off (add a verdict) answers 403
    if role in allowed:
        assert not refused, f"{role} was refused {method} {url}: {response.status_code}"
        assert response.status_code < 500
    else:
        assert refused, f"{role} reached {method} {url}: {response.status_code}"
        assert _changes(world) == before, f"{role}'s refused {method} {url} changed something"


def _changes(world):
    from judging.models import ApiToken, Verdict

    debate = Debate.objects.get(pk=world["debate"].pk)
    return (
        debate.status,
        debate.last_seq,
        Verdict.objects.count(),
        Experiment.objects.count(),
        ApiToken.objects.filter(revoked_at__isnull=False).count(),
    )


@pytest.mark.slow
def test_each_websocket_route_answers_each_role_as_its_rule_says(daphne_server, transactional_db, world):
    from websockets.sync.client import connect

    from tests.live_clients import session_for

    host = daphne_server.replace("http://", "")
    values = world["values"]
    for route, allowed in WEBSOCKETS.items():
        for role in ROLES:
            user = world["people"].get(role)
            headers = {"Cookie": f"sessionid={session_for(user)}"} if user is not None else {}
            with connect(
                f"ws://{host}/{_url(route, values)[1:]}",
                origin=daphne_server,
                open_timeout=10,
                additional_headers=headers,
            ) as ws:
                try:
                    first = json.loads(ws.recv(timeout=10))
                    accepted = True
                except Exception:  # closed without a frame: refused
                    first, accepted = None, False
                code = ws.close_code if not accepted else None
            if role in allowed:
                assert accepted and first is not None, f"{role} was refused {route}"
            else:
                assert not accepted and code == 4403, f"{role} reached {route}: {first}"


def test_an_experiment_given_to_another_researcher_opens_its_space_to_them(world, client):
    """Experiment.shared_with (set by a platform administrator): the other researcher then sees
    and runs the experiment and its debates like the owner; staff status alone never did."""
    other = world["people"]["other_researcher"]
    client.force_login(other)
    debate, experiment_id = world["debate"], world["values"]["experiment_id"]
    assert client.get(f"/debates/{debate.pk}/").status_code == 403
    assert client.get(f"/experiments/{experiment_id}/").status_code == 403
    Experiment.objects.get(pk=experiment_id).shared_with.add(other)
    assert client.get(f"/debates/{debate.pk}/").status_code == 200
    assert client.get(f"/experiments/{experiment_id}/").status_code == 200
    assert f"/debates/{debate.pk}/" in client.get("/").content.decode()  # and the lobby lists it


def test_the_lobby_lists_only_the_researchers_own_debates(world, client):
    client.force_login(world["people"]["other_researcher"])
    assert f"/debates/{world['debate'].pk}/" not in client.get("/").content.decode()
    client.force_login(world["people"]["owner"])
    assert f"/debates/{world['debate'].pk}/" in client.get("/").content.decode()
