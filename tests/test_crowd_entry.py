"""Crowd studies (issue 11): the study link with Prolific's and MTurk's parameters, one participant
per id who is never restarted, consent (declining ends with its own code), the quiz, seating in a
debate that waits for a judge (never two judges, never a question one debated), the verdict's answer
and score, the completion code and Prolific redirect, bonus files that never pay anyone twice,
invitation links made on the experiment page, and the admin's invitation form."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from debates import services
from debates.experiments import load_experiment
from debates.models import Debate, Invitation, Participant, Question
from judging import crowd
from judging.models import StudyParticipant, Verdict
from tests.factories import dataset_questions, started_study, study_file

pytestmark = pytest.mark.django_db

DEFINITION = study_file(
    "Crowd study",
    "crowd-unit",
    pool=("deb1", "deb2"),
    study="""\
        platform: prolific
        consent: You agree that your verdicts are stored for research.
        instructions: Two debaters argue; one of them is right.
        quiz:
          - question: Who can see the story?
            options: [the judge, the debaters]
            answer: 1
        completion_codes:
          completed: C0MPLETE
          no_consent: NOCONSENT
        bonus:
          per_correct: 0.75
          maximum: 2
    """,
)


@pytest.fixture(autouse=True)
def cheap_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(make_user):
    owner = make_user("rosa", "researcher")
    make_user("deb1", "debater")
    make_user("deb2", "debater")
    dataset_questions("crowd-unit", 3)
    return started_study(owner, DEFINITION)


def prolific(pid, study_id="S1", session="SESSION1"):
    return {"PROLIFIC_PID": pid, "STUDY_ID": study_id, "SESSION_ID": session}


def arrive(client, experiment, params):
    return client.get(reverse("study", args=[experiment.pk]), params)


def test_a_prolific_link_makes_one_participant_and_returns_them_where_they_were(client, study):
    response = arrive(client, study, prolific("60ffe5c8371090c7041d43f8"))
    assert response.status_code == 302 and response["Location"] == reverse("study", args=[study.pk])
    participant = StudyParticipant.objects.get()
    assert (participant.platform, participant.external_id, participant.study_id, participant.session_id) == (
        "prolific",
        "60ffe5c8371090c7041d43f8",
        "S1",
        "SESSION1",
    )
    assert not participant.user.has_usable_password()  # no password: the link is the way in
    page = client.get(response["Location"]).content.decode()
    assert "You agree that your verdicts are stored" in page

    client.post(reverse("study_consent", args=[study.pk]), {"consent": "agree"})
    client.logout()
    again = arrive(client, study, prolific("60ffe5c8371090c7041d43f8", session="SESSION1"))
    page = client.get(again["Location"]).content.decode()
    assert StudyParticipant.objects.count() == 1 and User.objects.filter(username__startswith="prolific-").count() == 1
    assert "Check your understanding" in page  # where they left off, not the consent page again
    refused = client.post(reverse("study_consent", args=[study.pk]), {"consent": "agree"}, follow=True)
    assert "already answered the consent form" in refused.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"PROLIFIC_PID": "", "STUDY_ID": "S", "SESSION_ID": "X"},
        {"PROLIFIC_PID": "bad id!", "STUDY_ID": "S", "SESSION_ID": "X"},
        {"PROLIFIC_PID": "ok", "STUDY_ID": "S" * 80, "SESSION_ID": "X"},
        {"assignmentId": "A1", "hitId": "H1", "workerId": "W1", "turkSubmitTo": "http://evil.example"},
    ],
)
def test_bad_link_parameters_are_refused_and_create_nobody(client, study, params):
    response = arrive(client, study, params)
    assert response.status_code == 400 and b"cannot start the study" in response.content
    assert not StudyParticipant.objects.exists()


def test_a_study_that_has_not_started_refuses_entry(client, make_user):
    owner = make_user("rosa2", "researcher")
    Question.objects.create(text="Q?", answers=["a", "b"], correct_index=0, source="crowd-unit")
    version, _ = load_experiment(DEFINITION, owner)
    response = arrive(client, version.experiment, prolific("P1"))
    assert response.status_code == 409 and not StudyParticipant.objects.exists()


def test_mturk_preview_creates_nobody_and_an_accepted_hit_submits_to_mturk(client, study):
    preview = arrive(client, study, {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1"})
    assert preview.status_code == 200 and b"This is a preview" in preview.content
    assert not StudyParticipant.objects.exists()
    accepted = arrive(
        client,
        study,
        {"assignmentId": "A1", "hitId": "H1", "workerId": "W1", "turkSubmitTo": "https://workersandbox.mturk.com"},
    )
    assert accepted.status_code == 302
    participant = StudyParticipant.objects.get()
    assert (participant.platform, participant.external_id, participant.study_id, participant.session_id) == (
        "mturk",
        "W1",
        "H1",
        "A1",
    )
    assert crowd.mturk_submit_url(participant) == "https://workersandbox.mturk.com/mturk/externalSubmit"


def test_declining_consent_ends_with_its_own_code(client, study):
    arrive(client, study, prolific("DECLINER"))
    client.post(reverse("study_consent", args=[study.pk]), {"consent": "decline"})
    participant = StudyParticipant.objects.get()
    assert (participant.status, participant.outcome, participant.completion_code) == (
        "returned",
        "no_consent",
        "NOCONSENT",
    )
    page = client.get(reverse("study", args=[study.pk])).content.decode()
    assert "https://app.prolific.com/submissions/complete?cc=NOCONSENT" in page
    assert not Participant.objects.filter(user=participant.user).exists()


def play(debate):
    for seat in debate.get_protocol().order:
        user = debate.participants.get(seat=seat).user
        services.submit_action(debate.pk, user, kind="speech", text=f"Speech by {seat}.")


def test_from_the_link_to_the_completion_redirect(client, study):
    arrive(client, study, prolific("JUDGE1"))
    client.post(reverse("study_consent", args=[study.pk]), {"consent": "agree"})
    wrong = client.post(reverse("study_quiz", args=[study.pk]), {"q0": "0"}, follow=True).content.decode()
    assert "question 1 is answered wrong" in wrong
    assert StudyParticipant.objects.get().status == "consented"
    page = client.post(reverse("study_quiz", args=[study.pk]), {"q0": "1"}, follow=True).content.decode()

    # Qualified: seated at once as the judge of a debate that waited for one, which then starts.
    participant = StudyParticipant.objects.get()
    assert participant.status == "judging" and participant.quiz_attempts == 2
    debate = Debate.objects.get(participants__user=participant.user)
    assert debate.participants.get(seat="judge").user == participant.user and debate.status == "live"
    assert reverse("debate_room", args=[debate.pk]) in page and "Your debate is ready" in page

    play(debate)
    shown = debate.shown_answer_order()
    correct_shown = shown.index(debate.question.correct_index)
    percents = {f"p{i}": "80" if i == correct_shown else "20" for i in range(2)}
    verdict = client.post(reverse("verdict_form", args=[debate.pk]), dict(percents, reason="A quoted the story."))
    assert verdict.status_code == 302 and verdict["Location"] == reverse("study", args=[study.pk])

    done = client.get(verdict["Location"]).content.decode()
    participant.refresh_from_db()
    assert participant.status == "completed" and participant.completion_code == "C0MPLETE"
    assert str(participant.bonus) == "0.75"
    assert "data-correct-answer>yes<" in done and "Your score" in done
    assert "url=https://app.prolific.com/submissions/complete?cc=C0MPLETE" in done
    assert 'href="https://app.prolific.com/submissions/complete?cc=C0MPLETE"' in done


def test_a_debate_gets_one_judge_and_nobody_judges_a_question_they_debated(study, make_user):
    version = crowd.study_version(study)
    people = [crowd.enter(study, crowd.Entry("prolific", f"P{i}")) for i in range(4)]
    for p in people:
        crowd.give_consent(p, True)
        crowd.answer_quiz(p, [1])
    seated = [crowd.seat_judge(p, version) for p in people]
    assert len({d.pk for d in seated if d}) == 3 and seated[3] is None  # three debates, one judge each
    assert Participant.objects.filter(seat="judge").count() == 3
    # A debater of every question is never seated as a judge.
    debater = User.objects.get(username="deb1")
    outsider = StudyParticipant.objects.create(experiment=study, user=debater, platform="lab", external_id="deb1")
    Participant.objects.filter(seat="judge", user=people[0].user).delete()
    assert crowd.seat_judge(outsider, version) is None


def test_a_seat_taken_meanwhile_sends_the_loser_to_the_next_debate(study, monkeypatch):
    version = crowd.study_version(study)
    first, second = (crowd.enter(study, crowd.Entry("prolific", pid)) for pid in ("RACE1", "RACE2"))
    taken = crowd.seat_judge(first, version)
    # The second judge's query ran before the first seat was saved, so it still lists the taken
    # debate first: the constraint refuses the duplicate and the second judge gets the next one.
    stale = [taken] + list(crowd.open_debates(version, second.user))
    monkeypatch.setattr(crowd, "open_debates", lambda version, user: stale)
    other = crowd.seat_judge(second, version)
    assert other is not None and other.pk not in (taken.pk,) and other.pk == stale[1].pk
    assert Participant.objects.filter(debate=taken, seat="judge").count() == 1


def complete(study, pid, correct_verdicts):
    participant = crowd.enter(study, crowd.Entry("prolific", pid))
    crowd.give_consent(participant, True)
    crowd.answer_quiz(participant, [1])
    for _ in range(correct_verdicts):
        debate = crowd.seat_judge(participant, crowd.study_version(study))
        play(debate)
        Verdict.objects.filter(debate=debate).delete()
        from judging.services import submit_verdict

        shown = debate.shown_answer_order().index(debate.question.correct_index)
        submit_verdict(debate.pk, participant.user, [0.9 if i == shown else 0.1 for i in range(2)], "sure")
    participant.status = "judging"
    participant.save()
    return crowd.progress(participant)


def test_bonus_files_are_prolific_bulk_bonus_lines_and_never_pay_anyone_twice(client, study):
    first = complete(study, "BONUS1", 1)
    assert first.status == "completed" and str(first.bonus) == "0.75"
    client.force_login(study.owner)
    client.post(reverse("experiment_bonus_batch", args=[study.pk]))
    assert client.get(reverse("experiment_bonus_file", args=[study.pk, 1])).content == b"BONUS1,0.75\n"
    assert crowd.make_bonus_batch(study) is None  # nobody new is owed
    second = complete(study, "BONUS2", 1)
    assert crowd.make_bonus_batch(study) == 2
    assert crowd.bonus_csv(study, 2) == "BONUS2,0.75\n" and crowd.bonus_csv(study, 1) == "BONUS1,0.75\n"
    assert second.bonus_batch is None and StudyParticipant.objects.get(pk=second.pk).bonus_batch == 2
    assert client.get(reverse("experiment_bonus_file", args=[study.pk, 3])).status_code == 404
    other = User.objects.create_user("nosy")
    client.force_login(other)
    assert client.get(reverse("experiment_bonus_file", args=[study.pk, 1])).status_code in (302, 403)


def test_the_bonus_follows_the_scoring_rule_up_to_its_maximum(study):
    participant = complete(study, "MAXED", 3)
    assert str(participant.bonus) == "2.00"  # 3 x 0.75 = 2.25, capped at 2


def test_the_experiment_page_and_api_show_the_study_link_and_participants(client, study):
    from judging.models import ApiToken

    complete(study, "SHOWN1", 1)
    client.force_login(study.owner)
    page = client.get(reverse("experiment_detail", args=[study.pk])).content.decode()
    link = (
        f"http://testserver/study/{study.pk}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
        f"&amp;STUDY_ID={{{{%STUDY_ID%}}}}&amp;SESSION_ID={{{{%SESSION_ID%}}}}"
    )
    assert link in page
    assert 'data-participant-count="completed">1<' in page and 'data-participant="SHOWN1"' in page
    _, key = ApiToken.issue(study.owner)
    api = client.get(reverse("api_experiment", args=[study.pk]), HTTP_AUTHORIZATION=f"Token {key}").json()
    assert api["study_link"] == link.replace("&amp;", "&")


def test_invitation_links_are_made_on_the_experiment_page_and_sign_ups_join_the_study(client, study):
    client.force_login(study.owner)
    response = client.post(reverse("experiment_invitation", args=[study.pk]), {"uses": "5", "note": "lab"}, follow=True)
    invitation = Invitation.objects.get()
    url = f"http://testserver/join/{invitation.token}/"
    assert invitation.created_by == study.owner and invitation.experiment == study and invitation.uses_left == 5
    assert url in response.content.decode()  # the full URL, to copy
    client.logout()
    joined = client.post(
        url, {"username": "labjudge", "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"}
    )
    assert joined.status_code == 302 and joined["Location"] == reverse("study", args=[study.pk])
    page = client.get(joined["Location"]).content.decode()
    participant = StudyParticipant.objects.get(user__username="labjudge")
    assert participant.platform == "lab" and "You agree that your verdicts" in page
    # Someone who was not invited to this experiment cannot join its study.
    client.force_login(User.objects.create_user("stranger"))
    assert client.get(reverse("study", args=[study.pk])).status_code == 403


def test_the_admin_makes_invitations_without_asking_who_made_them(client, make_user):
    admin = User.objects.create_superuser("boss", password="pass-for-tests-1")
    client.force_login(admin)
    form = client.get(reverse("admin:debates_invitation_add")).content.decode()
    assert 'name="created_by"' not in form
    response = client.post(reverse("admin:debates_invitation_add"), {"role": "judge", "uses_left": "3", "note": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Invitation.objects.get().created_by == admin


def test_a_lab_judge_with_an_email_is_told_when_they_can_judge(study, sent_mail, django_capture_on_commit_callbacks):
    user = User.objects.create_user("mailed", email="mailed@example.org")
    participant = crowd.join_as_user(study, user)
    crowd.give_consent(participant, True)
    crowd.answer_quiz(participant, [1])
    with django_capture_on_commit_callbacks(execute=True):
        crowd.seat_judge(participant, crowd.study_version(study))
    mailoutbox = sent_mail()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["mailed@example.org"]
    assert mailoutbox[0].subject == "You can judge now" and f"/study/{study.pk}/" in mailoutbox[0].body
    nomail = crowd.enter(study, crowd.Entry("prolific", "NOMAIL"))
    crowd.give_consent(nomail, True)
    crowd.answer_quiz(nomail, [1])
    with django_capture_on_commit_callbacks(execute=True):
        crowd.seat_judge(nomail, crowd.study_version(study))
    assert len(sent_mail()) == 1  # no address, no mail
