"""Crowd studies: people arrive by an experiment's study link (from Prolific, MTurk or an invitation),
consent, pass the instructions' quiz, are seated as the judge of a waiting debate, and finish with a
completion code and a bonus. The experiment file's optional `study:` section says what each step
shows (debates.experiment_spec). Pages call these functions; a status only ever moves forward
between the steps before judging, and a finished participant stays finished."""

import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from debates import live, presence, services
from debates.models import JUDGE_ROLE, Debate, Experiment, ExperimentVersion, Participant
from debates.protocol import JUDGE, Refused

from . import notices
from .models import Assignment, StudyParticipant, Verdict

log = logging.getLogger(__name__)
PROLIFIC_COMPLETION = "https://app.prolific.com/submissions/complete?cc="
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_STUDY = {
    "platform": StudyParticipant.LAB,
    "consent": None,
    "instructions": None,
    "quiz": [],
    "debates_per_judge": 1,
    "show_answer_after_verdict": True,
    "completion_codes": {},
    "bonus": {"per_correct": 0.0, "maximum": None},
    "practice": None,
    "survey": [],
    "wait_limit_seconds": None,
    "min_verdict_seconds": None,
    "judge_timeout_seconds": None,
    "on_wait_limit": "release",
    "exclusion": {"practice_must_be_right": False, "max_hidden_seconds": None, "min_gold_accuracy": None},
    "gold": None,
}
BEFORE_JUDGING = (StudyParticipant.ALLOCATED, StudyParticipant.CONSENTED, StudyParticipant.QUALIFIED)
UNFINISHED = (Debate.SCHEDULED, Debate.LIVE, Debate.AWAITING_VERDICT)


@dataclass(frozen=True)
class Entry:
    """Who is arriving, read from the study link's parameters."""

    platform: str
    external_id: str
    study_id: str = ""
    session_id: str = ""
    submit_to: str = ""


def study_version(experiment: Experiment) -> ExperimentVersion | None:
    """The version people join: the latest started one."""
    return experiment.versions.exclude(frozen_at=None).order_by("-number").first()


def study_settings(version: ExperimentVersion | None) -> dict:
    return dict(DEFAULT_STUDY, **((version.definition or {}).get("study") or {})) if version else dict(DEFAULT_STUDY)


def study_link(request, experiment: Experiment) -> tuple[str, str]:
    """(platform, the full study link to paste into the crowd platform, with its placeholders)."""
    version = study_version(experiment) or experiment.latest_version()
    platform = study_settings(version)["platform"]
    base = request.build_absolute_uri(reverse("study", args=[experiment.pk]))
    if platform == StudyParticipant.PROLIFIC:
        base += "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    return platform, base


def entry_from(params) -> Entry | None:
    """An Entry from Prolific's or MTurk's link parameters; None when there are none. An MTurk
    preview (assignmentId ASSIGNMENT_ID_NOT_AVAILABLE) raises Refused('preview'). Bad ids are refused."""
    if "PROLIFIC_PID" in params:
        entry = Entry(
            StudyParticipant.PROLIFIC,
            params.get("PROLIFIC_PID", ""),
            params.get("STUDY_ID", ""),
            params.get("SESSION_ID", ""),
        )
    elif "assignmentId" in params or "workerId" in params:
        if params.get("assignmentId") == MTURK_PREVIEW:
            raise Refused("preview", "this is a preview: accept the HIT to take part")
        submit_to = params.get("turkSubmitTo", "")
        if submit_to and not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/?$", submit_to):
            raise Refused("bad_entry", "turkSubmitTo must be an https address")
        entry = Entry(
            StudyParticipant.MTURK,
            params.get("workerId", ""),
            params.get("hitId", ""),
            params.get("assignmentId", ""),
            submit_to.rstrip("/"),
        )
    else:
        return None
    for name, value in (
        ("participant id", entry.external_id),
        ("study id", entry.study_id),
        ("session id", entry.session_id),
    ):
        if (value or name == "participant id") and not ID_PATTERN.match(value):
            raise Refused("bad_entry", f"the link's {name} is missing or not a valid id")
    return entry


def enter(experiment: Experiment, entry: Entry) -> StudyParticipant:
    """The participant for this id: created on the first visit (with an account that has no password),
    returned as it is on every later one."""
    found = (
        StudyParticipant.objects.filter(experiment=experiment, platform=entry.platform, external_id=entry.external_id)
        .select_related("user")
        .first()
    )
    if found:
        return found
    User = get_user_model()
    banned = StudyParticipant.objects.filter(
        experiment__owner=experiment.owner,
        platform=entry.platform,
        external_id=entry.external_id,
        outcome="failed_checks",
    ).exists()
    try:
        with transaction.atomic():
            username = f"{entry.platform}-{experiment.pk}-{entry.external_id}"
            user = User.objects.filter(username=username).first() or User.objects.create_user(username=username)
            user.groups.add(Group.objects.get_or_create(name=JUDGE_ROLE)[0])
            participant = StudyParticipant.objects.create(
                experiment=experiment,
                user=user,
                platform=entry.platform,
                external_id=entry.external_id,
                study_id=entry.study_id,
                session_id=entry.session_id,
                submit_to=entry.submit_to,
            )
            if banned:  # failed this researcher's checks in an earlier study: screened out at once
                return _finish(participant, StudyParticipant.SCREENED_OUT, "screened_out")
            return participant
    except IntegrityError:  # the same person opened the link twice at once: the other request made it
        return StudyParticipant.objects.select_related("user").get(
            experiment=experiment, platform=entry.platform, external_id=entry.external_id
        )


def join_as_user(experiment: Experiment, user) -> StudyParticipant:
    """People with an account (invitation sign-ups) join the experiment's study under their username."""
    found = StudyParticipant.objects.filter(experiment=experiment, user=user).first()
    if found:
        return found
    try:
        with transaction.atomic():
            return StudyParticipant.objects.create(
                experiment=experiment, user=user, platform=StudyParticipant.LAB, external_id=user.get_username()[:100]
            )
    except IntegrityError:
        return StudyParticipant.objects.get(experiment=experiment, user=user)


def _move(participant: StudyParticipant, status: str) -> None:
    if participant.status in StudyParticipant.FINISHED:
        raise Refused("finished", "you have already finished this study")
    if status in BEFORE_JUDGING and BEFORE_JUDGING.index(status) < _step_index(participant.status):
        raise Refused("no_restart", "a study cannot be started again")
    participant.status = status
    participant.status_changed_at = timezone.now()
    participant.save(update_fields=["status", "status_changed_at"])


def _step_index(status: str) -> int:
    return BEFORE_JUDGING.index(status) if status in BEFORE_JUDGING else len(BEFORE_JUDGING)


def _locked(participant: StudyParticipant) -> StudyParticipant:
    return StudyParticipant.objects.select_for_update().get(pk=participant.pk)


def give_consent(participant: StudyParticipant, agreed: bool) -> StudyParticipant:
    with transaction.atomic():
        participant = _locked(participant)
        if participant.status != StudyParticipant.ALLOCATED:
            raise Refused("no_restart", "you have already answered the consent form")
        if not agreed:
            return _finish(participant, StudyParticipant.RETURNED, "no_consent")
        _move(participant, StudyParticipant.CONSENTED)
        return participant


def answer_quiz(participant: StudyParticipant, answers: list) -> tuple[StudyParticipant, list[int]]:
    """answers: the chosen option per quiz question (None when unanswered). Returns the participant and
    the questions answered wrong; with none wrong the participant is qualified."""
    with transaction.atomic():
        participant = _locked(participant)
        if participant.status != StudyParticipant.CONSENTED:
            raise Refused("not_now", "the quiz comes after the consent form, once")
        quiz = study_settings(study_version(participant.experiment))["quiz"]
        wrong = [i for i, q in enumerate(quiz) if i >= len(answers) or answers[i] != q["answer"]]
        participant.quiz_attempts += 1
        participant.save(update_fields=["quiz_attempts"])
        if not wrong:
            participant.responses = dict(participant.responses, quiz_passed=True)
            participant.save(update_fields=["responses"])
            if not study_settings(study_version(participant.experiment))["practice"]:
                _move(participant, StudyParticipant.QUALIFIED)
        return participant, wrong


def practice_due(participant: StudyParticipant, study: dict) -> bool:
    return (
        participant.status == StudyParticipant.CONSENTED
        and bool(study["practice"])
        and participant.responses.get("quiz_passed", False)
    )


def answer_practice(participant: StudyParticipant, probabilities: list[float]) -> StudyParticipant:
    """The practice debate's judgment (probabilities in the practice's answer order), scored with the
    study's scoring rule and stored with the participant; it qualifies them to judge."""
    from debates.protocol import validate_probabilities

    from . import scoring

    with transaction.atomic():
        participant = _locked(participant)
        version = study_version(participant.experiment)
        study = study_settings(version)
        if not practice_due(participant, study):
            raise Refused("not_now", "the practice debate comes after the quiz, once")
        practice = study["practice"]
        probabilities = list(validate_probabilities(probabilities, len(practice["answers"])))
        rule = version.definition["protocols"][0]["protocol"].get("scoring_rule") or "log"
        chosen = max(range(len(probabilities)), key=probabilities.__getitem__)
        if sum(abs(p - probabilities[chosen]) < 1e-9 for p in probabilities) > 1:
            raise Refused("no_choice", "a judgment must favour one answer: the top percentages are tied")
        participant.responses = dict(
            participant.responses,
            practice={
                "probabilities": probabilities,
                "chosen": chosen,
                "correct": chosen == practice["correct"],
                "score": round(scoring.score(rule, probabilities, practice["correct"]), 4),
                "scoring_rule": rule,
            },
        )
        participant.save(update_fields=["responses"])
        if study["exclusion"]["practice_must_be_right"] and chosen != practice["correct"]:
            return _finish(participant, StudyParticipant.SCREENED_OUT, "failed_checks")
        _move(participant, StudyParticipant.QUALIFIED)
        return participant


def survey_due(participant: StudyParticipant, study: dict) -> bool:
    return bool(study["survey"]) and "survey" not in participant.responses


def answer_survey(participant: StudyParticipant, answers: dict) -> StudyParticipant:
    """Stores the post-debate survey (every question answered; scales 1 to 5) and completes the study."""
    with transaction.atomic():
        participant = _locked(participant)
        study = study_settings(study_version(participant.experiment))
        if (
            participant.status != StudyParticipant.JUDGING
            or not survey_due(participant, study)
            or not _enough_verdicts(participant, study)
        ):
            raise Refused("not_now", "the survey comes once, after your last verdict")
        stored = {}
        for question in study["survey"]:
            value = (answers.get(question["id"]) or "").strip()
            if not value:
                raise Refused("survey_incomplete", f"answer “{question['question']}”")
            if question["kind"] == "scale" and value not in ("1", "2", "3", "4", "5"):
                raise Refused("bad_survey", f"“{question['question']}” takes a number from 1 to 5")
            if question["kind"] == "choice" and value not in question["options"]:
                raise Refused("bad_survey", f"choose one of the options for “{question['question']}”")
            if len(value) > 5000:
                raise Refused("too_long", "a survey answer may have at most 5000 characters")
            stored[question["id"]] = int(value) if question["kind"] == "scale" else value
        participant.responses = dict(participant.responses, survey=stored)
        participant.save(update_fields=["responses"])
        return _finish(participant, StudyParticipant.COMPLETED, "completed")


def _enough_verdicts(participant: StudyParticipant, study: dict) -> bool:
    """Gold judgments are checks, not part of the work: they do not count here."""
    version = study_version(participant.experiment)
    real = Verdict.objects.filter(debate__experiment_version=version, judge=participant.user)
    return real.exclude(debate_id__in=gold_ids(study)).count() >= study["debates_per_judge"]


def gold_ids(study: dict) -> list[int]:
    return (study.get("gold") or {}).get("debates") or []


def gold_verdicts(participant: StudyParticipant, study: dict):
    return Verdict.objects.filter(judge=participant.user, debate_id__in=gold_ids(study))


def gold_due(participant: StudyParticipant, version, study: dict) -> bool:
    """About one gold debate per 1/rate real judgments, the first after the first real one."""
    if not study.get("gold"):
        return False
    real = (
        Verdict.objects.filter(debate__experiment_version=version, judge=participant.user)
        .exclude(debate_id__in=gold_ids(study))
        .count()
    )
    return gold_verdicts(participant, study).count() < math.ceil(real * study["gold"]["rate"] - 1e-9)


def offer_gold(participant: StudyParticipant, study: dict) -> Assignment | None:
    """A gold debate this person may judge (never a question they have seen), all at once."""
    from . import offline

    for debate_id in gold_ids(study):
        try:
            return offline.assign(debate_id, participant.user, Assignment.ALL_AT_ONCE)
        except (Refused, IntegrityError, Debate.DoesNotExist):
            continue
    return None


def _failed_gold(participant: StudyParticipant, study: dict) -> bool:
    minimum = study["exclusion"].get("min_gold_accuracy")
    judged = gold_verdicts(participant, study)
    count = judged.count()
    return minimum is not None and count > 0 and judged.filter(correct=True).count() / count < minimum


def skip_empty_steps(participant: StudyParticipant, study: dict) -> StudyParticipant:
    """A study without a consent text or a quiz passes those steps at once."""
    if participant.status == StudyParticipant.ALLOCATED and not study["consent"]:
        participant = give_consent(participant, True)
    if participant.status == StudyParticipant.CONSENTED and not study["quiz"]:
        participant, _ = answer_quiz(participant, [])
    return participant


def judged_debates(participant: StudyParticipant, version: ExperimentVersion):
    return Debate.objects.filter(
        experiment_version=version, participants__user=participant.user, participants__seat=JUDGE
    )


def progress(participant: StudyParticipant) -> StudyParticipant:
    """Moves a qualified, waiting or judging participant on: seated in a debate that waits for a
    judge, back to waiting once their verdict is in, completed after enough verdicts. When someone
    joins or leaves the waiting room, the people in it hear so (tell_waiting_room)."""
    before = participant.status
    moved = _progress(participant)
    # Joining or leaving the room changes it; a judge moving on may have left a finished debate
    # that wants further judgments.
    if moved.status != before and (WAITING_ROOM & {before, moved.status} or before == StudyParticipant.JUDGING):
        tell_waiting_room(moved.experiment)
    return moved


WAITING_ROOM = {StudyParticipant.QUALIFIED, StudyParticipant.WAITING}


def tell_waiting_room(experiment: Experiment) -> None:
    """Sends everyone waiting for a debate the room as it is now (debates.live.notify_users): their
    page shows it at once, and asks to be seated only when there is work (a debate waiting for its
    judge, or a finished one wanting a further judgment)."""
    waiting = StudyParticipant.objects.filter(experiment=experiment, status__in=WAITING_ROOM)
    user_ids = list(waiting.values_list("user_id", flat=True))
    if user_ids:
        room = waiting_room(experiment)
        version = study_version(experiment)
        work = room["open_debates"] + (wanting_further_judgments(version).count() if version else 0)
        notices.waiting_room_changed(user_ids, room_text(room), work)


def room_text(room: dict) -> str:
    people = "1 person is" if room["waiting"] == 1 else f"{room['waiting']} people are"
    debates = "1 debate" if room["open_debates"] == 1 else f"{room['open_debates']} debates"
    return f"{people} waiting (the longest for {room['longest_wait']} s); {debates} waiting for a judge."


def _progress(participant: StudyParticipant) -> StudyParticipant:
    version = study_version(participant.experiment)
    if version is None or participant.status not in (
        StudyParticipant.QUALIFIED,
        StudyParticipant.WAITING,
        StudyParticipant.JUDGING,
    ):
        return participant
    study = study_settings(version)
    if _hid_too_long(participant, version, study) or _failed_gold(participant, study):
        return finish(participant, StudyParticipant.SCREENED_OUT, "failed_checks")
    seated = list(judged_debates(participant, version))
    done = [d for d in seated if d.status in (Debate.COMPLETE, Debate.ABANDONED)]
    open_seat = [d for d in seated if d not in done] or open_offline_assignment(participant, version)
    if open_seat:
        if participant.status != StudyParticipant.JUDGING:
            with transaction.atomic():
                _move(_locked(participant), StudyParticipant.JUDGING)
            participant.refresh_from_db()
        return participant
    if gold_due(participant, version, study) and offer_gold(participant, study):
        with transaction.atomic():
            _move(_locked(participant), StudyParticipant.JUDGING)
        participant.refresh_from_db()
        return participant
    if _enough_verdicts(participant, study):
        with transaction.atomic():
            locked = _locked(participant)
            if locked.status in StudyParticipant.FINISHED:  # a second tab's request finished it meanwhile
                return locked
            if survey_due(locked, study):  # the survey page comes next; completing waits for it
                if locked.status != StudyParticipant.JUDGING:
                    _move(locked, StudyParticipant.JUDGING)
                return locked
            return _finish(locked, StudyParticipant.COMPLETED, "completed")
    free_dropped_seats(version, study)
    debate = seat_judge(participant, version) or offer_further_judgment(participant, version)
    if debate is None and _waited_too_long(participant, study):  # never released while work waits
        if study["on_wait_limit"] == "offline" and offer_offline_judging(participant, version):
            with transaction.atomic():
                _move(_locked(participant), StudyParticipant.JUDGING)
            participant.refresh_from_db()
            return participant
        return finish(participant, StudyParticipant.TIMED_OUT, "timed_out")
    wanted = StudyParticipant.JUDGING if debate else StudyParticipant.WAITING
    with transaction.atomic():
        locked = _locked(participant)
        # A waiting participant keeps the time they started waiting; a judge seated again (their next
        # debate) is timed from this seat, or free_dropped_seats would count the earlier debates.
        if locked.status != wanted or debate:
            _move(locked, wanted)
    participant.refresh_from_db()
    return participant


def _hid_too_long(participant: StudyParticipant, version, study: dict) -> bool:
    limit = study["exclusion"]["max_hidden_seconds"]
    return (
        limit is not None
        and Verdict.objects.filter(
            debate__experiment_version=version, judge=participant.user, hidden_seconds__gt=limit
        ).exists()
    )


def _untouched_judge_seats(version: ExperimentVersion):
    """Judge seats in the version's unfinished debates where the judge has not acted yet."""
    return Participant.objects.filter(
        debate__experiment_version=version, seat=JUDGE, debate__status__in=UNFINISHED
    ).exclude(debate__turns__seat=JUDGE)


def _untouched_judges(version: ExperimentVersion):
    """Study participants judging with an untouched seat: the only ones who may count as dropped out
    (the rest are never locked or looked at by free_dropped_seats)."""
    return StudyParticipant.objects.filter(
        experiment=version.experiment,
        status=StudyParticipant.JUDGING,
        user__in=_untouched_judge_seats(version).values("user_id"),
    )


def free_dropped_seats(version: ExperimentVersion, study: dict) -> int:
    """Judges who have done nothing in their debate yet and have been away from it (neither in its
    room nor on its verdict page) for judge_timeout_seconds since they were seated or last left
    count as dropped out: their seat is freed for the next person waiting and their study ends
    with the timed_out code. (A judge who has already given feedback keeps the seat: the next judge
    would inherit their reports. The researcher can release them.) Nothing is freed while the
    presence store cannot say who is there. Returns how many."""
    limit = study.get("judge_timeout_seconds")
    if not limit:
        return 0
    cutoff = timezone.now() - timedelta(seconds=limit)
    stale = _untouched_judges(version).filter(status_changed_at__lt=cutoff)
    freed = 0
    for participant in stale:
        with transaction.atomic():
            participant = _locked(participant)
            if participant.status != StudyParticipant.JUDGING:
                continue
            seats = Participant.objects.select_for_update().filter(
                debate__experiment_version=version,
                seat=JUDGE,
                user=participant.user,
                debate__status__in=UNFINISHED,
            )
            try:
                away = [s for s in seats if _away_since_before(s.debate_id, cutoff)]
            except Exception:  # noqa: BLE001 - presence unknown (Redis down): nobody is judged absent
                log.warning("judge timeouts wait: the presence store cannot be reached", exc_info=True)
                break
            idle = [
                s
                for s in away
                if not s.debate.turns.filter(seat=JUDGE).exists()
                and not Verdict.objects.filter(debate=s.debate, judge=participant.user).exists()
            ]
            if not idle:
                continue
            Participant.objects.filter(pk__in=[s.pk for s in idle]).delete()
            _finish(participant, StudyParticipant.TIMED_OUT, "timed_out")
            freed += len(idle)
    if freed:
        tell_waiting_room(version.experiment)
    return freed


def _away_since_before(debate_id: int, cutoff) -> bool:
    """The debate's judge has no connection to it now, and its last one closed before `cutoff`."""
    store = presence.store()
    if JUDGE in store.online(debate_id):
        return False
    left = store.last_departure(debate_id, JUDGE)
    return left is None or left < cutoff.timestamp()


def open_offline_assignment(participant: StudyParticipant, version):
    """An unfinished transcript to judge: a debate of the study, or one of its gold debates."""
    gold = gold_ids(study_settings(version))
    return (
        Assignment.objects.filter(Q(debate__experiment_version=version) | Q(debate_id__in=gold), judge=participant.user)
        .exclude(status=Assignment.DONE)
        .order_by("id")
        .first()
    )


def further_judgments(version) -> tuple[str, int]:
    """(how further judgments are made: an offline mode or "none", K: judgments wanted per debate)."""
    judges = version.definition.get("judges") or {}
    return judges.get("offline", "none"), judges.get("per_debate", 1)


def wanting_further_judgments(version):
    """The finished debates of the version that still want an offline judgment, least judged first."""
    from . import offline

    mode, per_debate = further_judgments(version)
    if mode not in offline.MODES or per_debate <= 1:
        return Debate.objects.none()
    return (
        Debate.objects.filter(experiment_version=version, status=Debate.COMPLETE)
        .annotate(assigned=Count("offline_assignments", distinct=True))
        .filter(assigned__lt=per_debate - 1)
        .order_by("assigned", "id")
    )


def offer_further_judgment(participant: StudyParticipant, version) -> Assignment | None:
    """A finished debate of the study that still wants judgments (judges.per_debate, the live judge
    counting as one), judged offline as judges.offline says. The debate's row is locked while its
    judgments are counted and one is added, so racing participants never exceed the number."""
    from . import offline

    mode, per_debate = further_judgments(version)
    for candidate in wanting_further_judgments(version)[:50]:
        with transaction.atomic():
            debate = Debate.objects.select_for_update().get(pk=candidate.pk)
            if debate.offline_assignments.count() >= per_debate - 1:
                continue
            try:
                return offline.assign(debate.pk, participant.user, mode)
            except (Refused, IntegrityError):
                continue
    return None


def offer_offline_judging(participant: StudyParticipant, version) -> Assignment | None:
    """Instead of more waiting: judge a finished debate of the study from its transcript (step by
    step), the least judged first. None when there is no debate they may judge, and when the study
    asks for K judgments per debate (judges.per_debate > 1): the debates that still want one were
    offered already (offer_further_judgment), and no debate gets more than K."""
    from . import offline

    if further_judgments(version)[1] > 1:
        return None

    finished = (
        Debate.objects.filter(experiment_version=version, status=Debate.COMPLETE)
        .annotate(judgments=Count("verdicts"))
        .order_by("judgments", "id")
    )
    for debate in finished[:50]:
        try:
            return offline.assign(debate.pk, participant.user, Assignment.STEPWISE)
        except (Refused, IntegrityError):
            continue
    return None


def _waited_too_long(participant: StudyParticipant, study: dict) -> bool:
    limit = study["wait_limit_seconds"]
    return (
        limit is not None
        and participant.status == StudyParticipant.WAITING
        and (timezone.now() - participant.status_changed_at).total_seconds() > limit
    )


def seconds_to_next_check(participant: StudyParticipant) -> int | None:
    """How long until a waiting participant's page should ask again, since no notice comes for
    either moment: when the study's wait limit passes, or when a seated judge may have dropped out
    (their seat could then go to this person). None when nothing is due."""
    if participant.status != StudyParticipant.WAITING:
        return None
    version = study_version(participant.experiment)
    due = [s for s in (seconds_to_wait_limit(participant), seconds_to_judge_timeout(version)) if s is not None]
    return min(due) if due else None


def seconds_to_judge_timeout(version: ExperimentVersion | None) -> int | None:
    """Until the next seated judge who has not acted passes judge_timeout_seconds, counted from
    their seating or, once that is past, from their last departure from the debate. A judge past
    both who is still connected may leave at any time: then the check comes one timeout later."""
    limit = study_settings(version)["judge_timeout_seconds"] if version else None
    if version is None or not limit:
        return None
    now = timezone.now().timestamp()
    seated = dict(_untouched_judges(version).values_list("user_id", "status_changed_at"))
    seats = list(_untouched_judge_seats(version).filter(user_id__in=seated).values_list("user_id", "debate_id"))
    future = []
    for user_id, debate_id in seats:
        due = seated[user_id].timestamp() + limit - now
        if due <= 0:  # only these few cost a look at the presence store
            left = presence.last_departure(debate_id, JUDGE)
            due = left + limit - now if left is not None else 0
        if due > 0:
            future.append(due)
    if future:
        return math.ceil(min(future))
    return limit if seats else None


def seconds_to_wait_limit(participant: StudyParticipant) -> int | None:
    """How long until a waiting participant passes the study's wait limit (their page asks then,
    since no notice comes for it); None when nothing is due."""
    limit = study_settings(study_version(participant.experiment))["wait_limit_seconds"]
    if limit is None or participant.status != StudyParticipant.WAITING:
        return None
    waited = (timezone.now() - participant.status_changed_at).total_seconds()
    return max(0, math.ceil(limit - waited))


def waiting_room(experiment: Experiment) -> dict:
    """Who is waiting now and for how long (seconds), longest first."""
    now = timezone.now()
    waiting = StudyParticipant.objects.filter(
        experiment=experiment, status__in=(StudyParticipant.WAITING, StudyParticipant.QUALIFIED)
    ).order_by("status_changed_at")
    waits = [(p.external_id, round((now - p.status_changed_at).total_seconds())) for p in waiting]
    version = study_version(experiment)
    open_seats = (
        Debate.objects.filter(experiment_version=version, status__in=UNFINISHED)
        .exclude(participants__seat=JUDGE)
        .count()
        if version
        else 0
    )
    return {
        "waiting": len(waits),
        "longest_wait": waits[0][1] if waits else 0,
        "median_wait": sorted(w for _, w in waits)[len(waits) // 2] if waits else 0,
        "open_debates": open_seats,
        "people": waits,
    }


def seat_judge(participant: StudyParticipant, version: ExperimentVersion) -> Debate | None:
    """Seats the participant as the judge of the first debate of this version that has no judge yet,
    about a question they have neither debated nor judged. The database's one-person-per-seat
    constraint settles a race: whoever loses tries the next debate, so no debate gets two judges."""
    user = participant.user
    for debate in open_debates(version, user)[:50]:
        try:
            with transaction.atomic():
                Participant.objects.create(debate=debate, seat=JUDGE, user=user)
        except IntegrityError:
            continue
        _start_when_ready(debate)
        notices.you_can_judge_now(
            user,
            participant.experiment.name,
            settings.DEBATELAB_SITE_URL + reverse("study", args=[participant.experiment_id]),
            debate.pk,
        )
        return debate
    return None


def open_debates(version: ExperimentVersion, user):
    """Debates of the version still waiting for a judge, about questions this person has neither
    debated, observed nor judged, oldest first."""
    seen = set(Participant.objects.filter(user=user).values_list("debate__question_id", flat=True))
    seen |= set(Verdict.objects.filter(judge=user).values_list("debate__question_id", flat=True))
    # Live and finished-but-unjudged debates appear here only when their judge dropped out.
    return (
        Debate.objects.filter(experiment_version=version, status__in=UNFINISHED)
        .exclude(participants__seat=JUDGE)
        .exclude(question_id__in=seen)
        .order_by("id")
    )


def _start_when_ready(debate: Debate) -> None:
    if debate.status != Debate.SCHEDULED:
        return
    speaks = debate.get_protocol().has_speeches
    debaters = debate.participants.exclude(seat__in=(JUDGE, Participant.OBSERVER))
    if all(p.user_id or p.agent or not speaks for p in debaters):
        try:
            live.publish(debate.pk, services.start_debate(debate.pk))
        except Refused:
            pass  # started meanwhile


def _finish(participant: StudyParticipant, status: str, outcome: str) -> StudyParticipant:
    """Ends the participant's study with the outcome's code and, when completed, the bonus."""
    study = study_settings(study_version(participant.experiment))
    _move(participant, status)
    participant.outcome = outcome
    participant.completion_code = study["completion_codes"].get(outcome, "")
    participant.finished_at = timezone.now()
    if status == StudyParticipant.COMPLETED:
        participant.bonus = bonus_for(participant, study)
    participant.save(update_fields=["outcome", "completion_code", "finished_at", "bonus"])
    return participant


def finish(participant: StudyParticipant, status: str, outcome: str) -> StudyParticipant:
    """A researcher's or the platform's decision to end someone's study (returned, timed out, screened out)."""
    with transaction.atomic():
        locked = _locked(participant)
        was_waiting = locked.status in WAITING_ROOM
        finished = _finish(locked, status, outcome)
    if was_waiting:
        tell_waiting_room(finished.experiment)
    return finished


def bonus_for(participant: StudyParticipant, study: dict) -> Decimal:
    """The scoring rule's bonus: per_correct for each correct verdict in the study, at most maximum."""
    version = study_version(participant.experiment)
    correct = Verdict.objects.filter(debate__experiment_version=version, judge=participant.user, correct=True).count()
    amount = Decimal(str(study["bonus"]["per_correct"])) * correct
    if study["bonus"].get("maximum") is not None:
        amount = min(amount, Decimal(str(study["bonus"]["maximum"])))
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def completion_url(participant: StudyParticipant) -> str | None:
    """Where a Prolific participant goes at the end (Prolific's own host, with the outcome's code)."""
    if participant.platform == StudyParticipant.PROLIFIC and participant.completion_code:
        return PROLIFIC_COMPLETION + participant.completion_code
    return None


def mturk_submit_url(participant: StudyParticipant) -> str | None:
    if participant.platform == StudyParticipant.MTURK and participant.submit_to:
        return participant.submit_to + "/mturk/externalSubmit"
    return None


def make_bonus_batch(experiment: Experiment) -> int | None:
    """Puts every completed participant with an unpaid bonus above zero into a new numbered batch and
    returns its number (None when nobody is owed). A person is in one batch at most, so a bonus file
    can be downloaded again but nobody appears in two files."""
    with transaction.atomic():
        owed = list(
            StudyParticipant.objects.select_for_update().filter(
                experiment=experiment, status=StudyParticipant.COMPLETED, bonus__gt=0, bonus_batch=None
            )
        )
        if not owed:
            return None
        batch = (StudyParticipant.objects.filter(experiment=experiment).aggregate(n=Max("bonus_batch"))["n"] or 0) + 1
        StudyParticipant.objects.filter(pk__in=[p.pk for p in owed]).update(bonus_batch=batch)
        return batch


def bonus_csv(experiment: Experiment, batch: int) -> str:
    """Prolific's bulk-bonus format: `<participant id>,<amount>` per line, no header."""
    rows = StudyParticipant.objects.filter(experiment=experiment, bonus_batch=batch).order_by("id")
    return "".join(f"{p.external_id},{p.bonus:.2f}\n" for p in rows)


def status_counts(experiment: Experiment) -> list[tuple[str, str, int]]:
    counts = dict(
        StudyParticipant.objects.filter(experiment=experiment).values_list("status").annotate(n=Count("id")).order_by()
    )
    return [(status, label, counts.get(status, 0)) for status, label in StudyParticipant.STATUSES]


def monitor(experiment: Experiment) -> dict:
    """The researcher's live view of a study: people by status, the waiting room, dropouts and how
    many of the debates have their judgment."""
    version = study_version(experiment)
    debates = Debate.objects.filter(experiment_version=version) if version else Debate.objects.none()
    judged = Verdict.objects.filter(debate__in=debates, live=True).values("debate").distinct().count()
    counts = {status: count for status, _, count in status_counts(experiment)}
    return {
        "by_status": counts,
        "waiting_room": {k: v for k, v in waiting_room(experiment).items() if k != "people"},
        "dropouts": StudyParticipant.objects.filter(experiment=experiment, outcome="timed_out").count(),
        "debates": debates.count(),
        "debates_judged": judged,
        "debates_with_judge": debates.filter(participants__seat=JUDGE).distinct().count(),
    }


def latest_verdict_recap(participant: StudyParticipant) -> dict | None:
    """The participant's last verdict with the correct answer and score, where the study allows it."""
    version = study_version(participant.experiment)
    if not study_settings(version)["show_answer_after_verdict"]:
        return None
    verdict = (
        Verdict.objects.filter(debate__experiment_version=version, judge=participant.user)
        .select_related("debate__question")
        .order_by("-id")
        .first()
    )
    if verdict is None:
        return None
    question = verdict.debate.question
    return {
        "question": question.text,
        "correct_answer": question.answers[question.correct_index],
        "your_answer": question.answers[verdict.chosen_index],
        "correct": verdict.correct,
        "score": round(verdict.score, 3),
        "scoring_rule": verdict.scoring_rule,
    }


def history(participant: StudyParticipant) -> list[dict]:
    version = study_version(participant.experiment)
    show = study_settings(version)["show_answer_after_verdict"]
    verdicts = (
        Verdict.objects.filter(debate__experiment_version=version, judge=participant.user)
        .filter(Q(debate__status=Debate.COMPLETE))
        .select_related("debate__question")
        .order_by("id")
    )
    return [
        {
            "debate": v.debate_id,
            "question": v.debate.question.text,
            "correct": v.correct if show else None,
            "score": round(v.score, 3) if show else None,
        }
        for v in verdicts
    ]
