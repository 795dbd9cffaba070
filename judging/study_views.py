"""The participant's pages of a crowd study (entry, consent, quiz, waiting, judging, completion) and
the researcher's study tools on the experiment page (study link, invitation links, bonus files).
The steps themselves are judging.crowd; these views only read requests and render."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from debates.models import JUDGE_ROLE, Experiment, Invitation
from debates.protocol import Refused

from . import crowd
from .models import StudyParticipant
from .researcher_views import owned_experiment, researcher_required
from .verdict_form import posted_probabilities

BACKEND = "django.contrib.auth.backends.ModelBackend"


def study(request, experiment_id):
    """The study link. With Prolific's or MTurk's parameters it signs the person in as their
    participant (made on the first visit) and sends them on to the clean URL; without, it shows the
    signed-in participant's current step."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    try:
        entry = crowd.entry_from(request.GET)
    except Refused as refused:
        if refused.code == "preview":
            return render(request, "judging/study/preview.html", {"experiment": experiment})
        return render(request, "judging/study/problem.html", {"problem": refused.message}, status=400)
    version = crowd.study_version(experiment)
    if entry is not None:
        if version is None:
            return render(
                request,
                "judging/study/problem.html",
                {"problem": "this study has not started yet; please try again later"},
                status=409,
            )
        participant = crowd.enter(experiment, entry)
        login(request, participant.user, backend=BACKEND)
        return redirect("study", experiment_id=experiment.pk)
    if not request.user.is_authenticated:
        return render(
            request,
            "judging/study/problem.html",
            {"problem": "open this study from the link on Prolific or MTurk, or sign in first"},
            status=400,
        )
    participant = StudyParticipant.objects.filter(experiment=experiment, user=request.user).first()
    if participant is None:
        if version is None or not _invited(request, experiment):
            return render(
                request, "judging/study/problem.html", {"problem": "you are not taking part in this study"}, status=403
            )
        participant = crowd.join_as_user(experiment, request.user)
    return _step(request, participant, version)


def _invited(request, experiment) -> bool:
    """An account made from one of this experiment's invitation links joins its study (debates.views.join)."""
    return request.session.get("invited_to_experiment") == experiment.pk


def _step(request, participant, version):
    study_settings = crowd.study_settings(version)
    participant = crowd.skip_empty_steps(participant, study_settings)
    participant = crowd.progress(participant)
    context = {
        "participant": participant,
        "experiment": participant.experiment,
        "study": study_settings,
        "recap": crowd.latest_verdict_recap(participant),
        "history": crowd.history(participant),
        "completion_url": crowd.completion_url(participant),
        "mturk_submit_url": crowd.mturk_submit_url(participant),
    }
    if participant.status == StudyParticipant.JUDGING:
        context["debate"] = (
            crowd.judged_debates(participant, version).exclude(status__in=("complete", "abandoned")).first()
        )
        context["assignment"] = None if context["debate"] else crowd.open_offline_assignment(participant, version)
        context["survey_due"] = (
            context["debate"] is None
            and context["assignment"] is None
            and crowd.survey_due(participant, study_settings)
        )
    context["practice_due"] = crowd.practice_due(participant, study_settings)
    context["practice_done"] = participant.responses.get("practice")
    if study_settings["practice"]:
        context["practice_answer"] = study_settings["practice"]["answers"][study_settings["practice"]["correct"]]
    if participant.status in (StudyParticipant.QUALIFIED, StudyParticipant.WAITING):
        context["room_text"] = crowd.room_text(crowd.waiting_room(participant.experiment))
    return render(request, "judging/study/step.html", context)


@login_required
def study_status(request, experiment_id):
    """The waiting page's check: moves the participant on if a debate is free, and says where they are."""
    participant = _own_participant(request, experiment_id)
    participant = crowd.progress(participant)
    return JsonResponse(
        {
            "status": participant.status,
            "room_text": crowd.room_text(crowd.waiting_room(participant.experiment)),
            "waiting_since": participant.status_changed_at.isoformat(),
            "check_in_seconds": crowd.seconds_to_next_check(participant),
        }
    )


def _own_participant(request, experiment_id) -> StudyParticipant:
    participant = StudyParticipant.objects.filter(experiment_id=experiment_id, user=request.user).first()
    if participant is None:
        raise Http404("You are not taking part in this study.")
    return participant


@login_required
@require_POST
def study_consent(request, experiment_id):
    participant = _own_participant(request, experiment_id)
    try:
        crowd.give_consent(participant, request.POST.get("consent") == "agree")
    except Refused as refused:
        _refusal_message(request, refused)
    return redirect("study", experiment_id=experiment_id)


@login_required
@require_POST
def study_quiz(request, experiment_id):
    participant = _own_participant(request, experiment_id)
    quiz = crowd.study_settings(crowd.study_version(participant.experiment))["quiz"]
    answers = []
    for i in range(len(quiz)):
        try:
            answers.append(int(request.POST.get(f"q{i}", "")))
        except ValueError:
            answers.append(None)
    try:
        _, wrong = crowd.answer_quiz(participant, answers)
    except Refused as refused:
        _refusal_message(request, refused)
        return redirect("study", experiment_id=experiment_id)
    if wrong:
        numbers = ", ".join(str(i + 1) for i in wrong)
        messages.error(
            request,
            f"Not quite: question{'s' if len(wrong) > 1 else ''} {numbers} "
            f"{'are' if len(wrong) > 1 else 'is'} answered wrong. Read the instructions again and retry.",
        )
    return redirect("study", experiment_id=experiment_id)


@login_required
@require_POST
def study_practice(request, experiment_id):
    participant = _own_participant(request, experiment_id)
    practice = crowd.study_settings(crowd.study_version(participant.experiment))["practice"] or {}
    try:
        crowd.answer_practice(participant, posted_probabilities(request.POST, len(practice.get("answers", []))))
    except Refused as refused:
        _refusal_message(request, refused)
    return redirect("study", experiment_id=experiment_id)


@login_required
@require_POST
def study_survey(request, experiment_id):
    participant = _own_participant(request, experiment_id)
    try:
        crowd.answer_survey(participant, {key: value for key, value in request.POST.items()})
    except Refused as refused:
        _refusal_message(request, refused)
    return redirect("study", experiment_id=experiment_id)


# ------------------------------------------------------------------------------------ researchers


RELEASES = {
    "timed_out": (StudyParticipant.TIMED_OUT, "timed_out"),
    "screened_out": (StudyParticipant.SCREENED_OUT, "screened_out"),
    "failed_checks": (StudyParticipant.SCREENED_OUT, "failed_checks"),
}


@researcher_required
@require_POST
def release_participant(request, experiment_id, participant_id):
    """The monitor's release: ends someone's study with the chosen outcome's code (e.g. a person
    who waited too long gets the completed code and leaves; one who failed checks is screened out)."""
    experiment = owned_experiment(request.user, experiment_id)
    participant = get_object_or_404(StudyParticipant, pk=participant_id, experiment=experiment)
    choice = RELEASES.get(request.POST.get("outcome", ""))
    if choice is None:
        messages.error(request, "Choose how to release the participant.")
    else:
        try:
            crowd.finish(participant, *choice)
            messages.success(
                request, f"{participant.external_id} released ({request.POST['outcome'].replace('_', ' ')})."
            )
        except Refused as refused:
            messages.error(request, f"{participant.external_id}: {refused.message}.")
    return redirect("experiment_detail", experiment_id=experiment.pk)


@researcher_required
def study_monitor(request, experiment_id):
    return JsonResponse(crowd.monitor(owned_experiment(request.user, experiment_id)))


@researcher_required
@require_POST
def advance_participant(request, experiment_id, participant_id):
    """The monitor's advance: moves a qualified or waiting participant on now (seats them if a
    debate is free) instead of at their page's next check."""
    experiment = owned_experiment(request.user, experiment_id)
    participant = get_object_or_404(StudyParticipant, pk=participant_id, experiment=experiment)
    moved = crowd.progress(participant)
    messages.info(request, f"{participant.external_id}: {moved.get_status_display()}.")
    return redirect("experiment_detail", experiment_id=experiment.pk)


@researcher_required
def study_export(request, experiment_id):
    """Every participant with status, outcome, code, bonus, quality figures, practice and survey answers."""
    import csv
    import io
    import json

    from .quality import participant_quality

    experiment = owned_experiment(request.user, experiment_id)
    version = crowd.study_version(experiment)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "participant",
            "platform",
            "study_id",
            "session_id",
            "status",
            "outcome",
            "completion_code",
            "bonus",
            "bonus_file",
            "verdicts",
            "correct",
            "quiz_attempts",
            "practice_correct",
            "hidden_seconds",
            "fastest_verdict_seconds",
            "practice_json",
            "survey_json",
            "created_at",
            "finished_at",
        ]
    )
    for p in experiment.study_participants.order_by("id"):
        q = participant_quality(p, version)
        writer.writerow(
            [
                p.external_id,
                p.platform,
                p.study_id,
                p.session_id,
                p.status,
                p.outcome,
                p.completion_code,
                p.bonus if p.bonus is not None else "",
                p.bonus_batch or "",
                q["verdicts"],
                q["correct"],
                q["quiz_attempts"],
                "" if q["practice_correct"] is None else q["practice_correct"],
                q["hidden_seconds"],
                q["fastest_verdict_seconds"] or "",
                json.dumps(p.responses.get("practice"), ensure_ascii=False) if p.responses.get("practice") else "",
                json.dumps(p.responses.get("survey"), ensure_ascii=False) if p.responses.get("survey") else "",
                p.created_at.isoformat(),
                p.finished_at.isoformat() if p.finished_at else "",
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-participants.csv"'
    return response


@researcher_required
@require_POST
def make_invitation(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    try:
        uses = max(1, min(10_000, int(request.POST.get("uses", "100"))))
    except ValueError:
        uses = 100
    invitation = Invitation.objects.create(
        role=JUDGE_ROLE,
        created_by=request.user,
        experiment=experiment,
        uses_left=uses,
        note=request.POST.get("note", "")[:200],
    )
    messages.success(
        request,
        f"Invitation link made ({uses} sign-ups): "
        f"{request.build_absolute_uri(reverse('join', args=[invitation.token]))}",
    )
    return redirect("experiment_detail", experiment_id=experiment.pk)


@researcher_required
@require_POST
def make_bonus_file(request, experiment_id):
    experiment = owned_experiment(request.user, experiment_id)
    batch = crowd.make_bonus_batch(experiment)
    if batch is None:
        messages.info(request, "Nobody is owed a bonus that is not already in a bonus file.")
    else:
        messages.success(
            request,
            f"Bonus file {batch} made. Upload it to Prolific's bulk bonus; "
            f"the people in it will not appear in a later file.",
        )
    return redirect("experiment_detail", experiment_id=experiment.pk)


@researcher_required
def bonus_file(request, experiment_id, batch):
    experiment = owned_experiment(request.user, experiment_id)
    text = crowd.bonus_csv(experiment, batch)
    if not text:
        raise Http404("No such bonus file.")
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-bonus-{batch}.csv"'
    return response


def _refusal_message(request, refused: Refused) -> None:
    """A refusal shown on the next page as a sentence."""
    messages.error(request, refused.message[:1].upper() + refused.message[1:] + ".")
