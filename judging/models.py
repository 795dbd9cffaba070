import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from debates.models import Debate


class Verdict(models.Model):
    """A judge's final judgment of a debate, stored with the context it was given in."""

    HUMAN, AI = "human", "ai"

    debate = models.ForeignKey(Debate, on_delete=models.PROTECT, related_name="verdicts")
    judge = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="verdicts"
    )
    judge_kind = models.CharField(max_length=10, choices=[(HUMAN, "human"), (AI, "AI")], default=HUMAN)
    ai_judge = models.CharField(max_length=200, blank=True, help_text="AI judges: which model, with parameters.")
    live = models.BooleanField(default=True, help_text="Given by the live judge (not offline from a transcript).")
    probabilities = models.JSONField(help_text="One per answer, in the question's canonical order; sums to 1.")
    chosen_index = models.PositiveSmallIntegerField()
    correct = models.BooleanField()
    reason = models.TextField()
    seconds_spent = models.FloatField(null=True, blank=True)
    after_turn = models.PositiveIntegerField(help_text="How many turns the debate had when the verdict was given.")
    after_seq = models.PositiveIntegerField(help_text="The last debate event the judge had seen.")
    scoring_rule = models.CharField(max_length=20, default="log")
    score = models.FloatField()
    client_id = models.CharField(max_length=64, blank=True)
    hidden_seconds = models.FloatField(
        null=True, blank=True, help_text="Time the judge's debate and verdict pages were hidden (quality)."
    )
    provenance = models.JSONField(
        default=dict, blank=True, help_text="What produced this verdict (AI judges, imports)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["debate", "judge"], condition=models.Q(judge__isnull=False), name="one_verdict_per_judge"
            ),
        ]
        permissions = [("export_identities", "Can export judge and debater identities without pseudonyms")]

    def __str__(self):
        return f"Verdict on debate {self.debate_id} by {self.judge or self.ai_judge}"


class ApiToken(models.Model):
    """A key for scripts (Authorization: Token <key>). Only a hash is stored: the key is shown once."""

    PREFIX_LENGTH = 8

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="After this the token is refused.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when the token is revoked.")

    DEFAULT_DAYS = 90
    MAX_DAYS = 365

    def __str__(self):
        return f"{self.prefix}… ({self.user}{', ' + self.name if self.name else ''})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @classmethod
    def usable(cls):
        """Tokens that are neither revoked nor expired."""
        return cls.objects.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "", days: int | None = DEFAULT_DAYS) -> tuple["ApiToken", str]:
        """A new token and its key, valid for `days` (None: until revoked); the key cannot be
        recovered later."""
        key = secrets.token_urlsafe(32)
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        token = cls.objects.create(
            user=user, name=name, prefix=key[: cls.PREFIX_LENGTH], key_hash=cls.hash_key(key), expires_at=expires_at
        )
        return token, key

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class Assignment(models.Model):
    """An offline judge's task: judge a finished debate from its transcript, either step by step
    (one debater turn revealed at a time, probabilities after each) or all at once, then give a
    final verdict (a Verdict with live=False). A person judges each question at most once and
    never a question they debated (judging.offline enforces both)."""

    STEPWISE, ALL_AT_ONCE = "stepwise", "all_at_once"
    MODES = [(STEPWISE, "step by step"), (ALL_AT_ONCE, "all at once")]
    ASSIGNED, IN_PROGRESS, DONE = "assigned", "in_progress", "done"
    STATUSES = [(ASSIGNED, "assigned"), (IN_PROGRESS, "in progress"), (DONE, "done")]

    debate = models.ForeignKey(Debate, on_delete=models.PROTECT, related_name="offline_assignments")
    judge = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="offline_assignments")
    mode = models.CharField(max_length=20, choices=MODES, default=STEPWISE)
    position = models.PositiveIntegerField(default=0, help_text="Step by step: debater turns revealed so far.")
    status = models.CharField(max_length=20, choices=STATUSES, default=ASSIGNED)
    verdict = models.OneToOneField(
        Verdict, null=True, blank=True, on_delete=models.PROTECT, related_name="offline_assignment"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["debate", "judge"], name="one_offline_assignment_per_judge")]
        ordering = ["id"]

    def __str__(self):
        return f"Offline judging of debate {self.debate_id} by {self.judge} ({self.mode})"


class StepReport(models.Model):
    """A step-by-step offline judge's probabilities after one more debater turn was revealed."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="reports")
    step = models.PositiveIntegerField(help_text="1 after the first debater turn, 2 after the second, ...")
    turns_shown = models.PositiveIntegerField(help_text="Transcript turns visible (judge feedback included).")
    probabilities = models.JSONField(help_text="One per answer, in the question's canonical order; sums to 1.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assignment", "step"]
        constraints = [models.UniqueConstraint(fields=["assignment", "step"], name="one_report_per_step")]


class StudyParticipant(models.Model):
    """A person taking part in an experiment's crowd study (Prolific, MTurk or an invitation link).
    One per person per experiment: reopening the study link returns them to where they were, and a
    status only moves forward (nobody restarts once started)."""

    PROLIFIC, MTURK, LAB = "prolific", "mturk", "lab"
    PLATFORMS = [(PROLIFIC, "Prolific"), (MTURK, "Amazon MTurk"), (LAB, "invitation link")]
    ALLOCATED, CONSENTED, QUALIFIED, WAITING, JUDGING = "allocated", "consented", "qualified", "waiting", "judging"
    COMPLETED, RETURNED, TIMED_OUT, SCREENED_OUT = "completed", "returned", "timed_out", "screened_out"
    STATUSES = [
        (s, s.replace("_", " "))
        for s in (ALLOCATED, CONSENTED, QUALIFIED, WAITING, JUDGING, COMPLETED, RETURNED, TIMED_OUT, SCREENED_OUT)
    ]
    FINISHED = (COMPLETED, RETURNED, TIMED_OUT, SCREENED_OUT)

    experiment = models.ForeignKey("debates.Experiment", on_delete=models.CASCADE, related_name="study_participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies")
    platform = models.CharField(max_length=20, choices=PLATFORMS)
    external_id = models.CharField(max_length=100, help_text="PROLIFIC_PID, MTurk workerId, or the username.")
    study_id = models.CharField(max_length=100, blank=True, help_text="Prolific STUDY_ID or MTurk hitId.")
    session_id = models.CharField(max_length=100, blank=True, help_text="Prolific SESSION_ID or MTurk assignmentId.")
    submit_to = models.URLField(blank=True, help_text="MTurk turkSubmitTo.")
    status = models.CharField(max_length=20, choices=STATUSES, default=ALLOCATED)
    outcome = models.CharField(max_length=20, blank=True, help_text="How the study ended: a completion code's key.")
    completion_code = models.CharField(max_length=100, blank=True)
    quiz_attempts = models.PositiveIntegerField(default=0)
    responses = models.JSONField(
        default=dict, blank=True, help_text="What the participant answered: quiz_passed, practice, survey."
    )
    bonus = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    bonus_batch = models.PositiveIntegerField(
        null=True, blank=True, help_text="The bonus file this person was paid in; never paid twice."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "platform", "external_id"], name="one_participant_per_id"),
            models.UniqueConstraint(fields=["experiment", "user"], name="one_participation_per_user"),
        ]
        ordering = ["id"]

    def __str__(self):
        return f"{self.get_platform_display()} {self.external_id} in {self.experiment_id} ({self.status})"
