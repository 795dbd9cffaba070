import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from .pixel.board import SIDE
from .protocol import JUDGE, Action, DebateEngine, Protocol

RESEARCHER, DEBATER, JUDGE_ROLE = "researcher", "debater", "judge"
ROLE_GROUPS = (RESEARCHER, DEBATER, JUDGE_ROLE)


def has_role(user, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()


class Story(models.Model):
    """A passage many questions are asked about (a QuALITY article), stored once; its questions
    point at it instead of holding a copy in hidden_material."""

    source = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "stories"
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="story_unique_external_id")]

    def __str__(self):
        return self.title or f"{self.source} {self.external_id}"


class Question(models.Model):
    KIND_TEXT, KIND_IMAGE = "text", "image"

    kind = models.CharField(max_length=10, choices=[(KIND_TEXT, "text"), (KIND_IMAGE, "image")], default=KIND_TEXT)
    text = models.TextField()
    answers = models.JSONField(help_text="Two or more answer options, in their canonical order.")
    correct_index = models.PositiveSmallIntegerField()
    hidden_material = models.TextField(
        blank=True, help_text="What only the debaters see (a passage); empty when the passage is a shared story."
    )
    story = models.ForeignKey(
        Story,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="questions",
        help_text="The shared story that is this question's passage, if any.",
    )
    hidden_image = models.JSONField(null=True, blank=True, help_text="Image debates: 28x28 grey levels 0..255.")
    public_material = models.TextField(blank=True, help_text="What the judge may see.")
    title = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Dataset or author.")
    external_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=~Q(external_id=""), name="question_unique_external_id"
            ),
        ]

    def __str__(self):
        return self.title or self.text[:80]

    @property
    def passage(self) -> str:
        """What only the debaters see: the shared story, or the question's own hidden material."""
        return self.story.text if self.story_id else self.hidden_material

    def revealable_pixels(self) -> frozenset | None:
        """Image questions: the nonzero pixels (row * SIDE + column), the only ones a debater may reveal."""
        if self.kind != self.KIND_IMAGE or not self.hidden_image:
            return None
        return frozenset(r * SIDE + c for r, row in enumerate(self.hidden_image) for c, v in enumerate(row) if v)

    def pixel_value(self, pixel: int) -> int:
        row, column = divmod(pixel, SIDE)
        return int(self.hidden_image[row][column])

    def clean(self):
        from django.core.exceptions import ValidationError

        if (
            not isinstance(self.answers, list)
            or len(self.answers) < 2
            or not all(isinstance(a, str) and a.strip() for a in self.answers)
        ):
            raise ValidationError({"answers": "give two or more non-empty answer options"})
        if self.correct_index is None or self.correct_index >= len(self.answers):
            raise ValidationError({"correct_index": "the correct answer must be one of the options"})


class Experiment(models.Model):
    """A named study. Its definition lives in versions: once a version starts it is frozen, and an
    edit makes a new version, so every debate and verdict can be traced to the exact definition."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="experiments")
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="shared_experiments",
        help_text="Researchers who may see and run this experiment like its owner.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="experiment_name_per_owner")]

    def __str__(self):
        return self.name

    def latest_version(self):
        return self.versions.order_by("-number").first()

    @classmethod
    def visible_to(cls, user):
        """A researcher's space: the experiments they own or were given; a platform administrator
        (superuser) sees them all."""
        if not user.is_authenticated:
            return cls.objects.none()
        if user.is_superuser:
            return cls.objects.all()
        if not has_role(user, RESEARCHER):
            return cls.objects.none()
        return cls.objects.filter(Q(owner=user) | Q(shared_with=user)).distinct()


class ExperimentVersion(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The validated, normalised definition (debates.experiment_spec).")
    source_text = models.TextField(blank=True, help_text="The YAML/JSON as written.")
    source_name = models.CharField(max_length=300, blank=True)
    frozen_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the version starts; never edited after."
    )
    code_version = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="experiment_version_number")]

    def __str__(self):
        return f"{self.experiment} v{self.number}"


class Debate(models.Model):
    SCHEDULED, LIVE, AWAITING_VERDICT, COMPLETE, ABANDONED = (
        "scheduled",
        "live",
        "awaiting_verdict",
        "complete",
        "abandoned",
    )
    STATUSES = [(s, s.replace("_", " ")) for s in (SCHEDULED, LIVE, AWAITING_VERDICT, COMPLETE, ABANDONED)]

    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="debates")
    experiment_version = models.ForeignKey(
        ExperimentVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="debates"
    )
    protocol_name = models.CharField(max_length=100, blank=True, help_text="Which of the experiment's protocols.")
    protocol = models.JSONField(help_text="Frozen copy of the protocol; later edits never change it.")
    status = models.CharField(max_length=20, choices=STATUSES, default=SCHEDULED)
    answer_order = models.JSONField(
        default=list, blank=True, help_text="Order in which answers are shown (indices into question.answers)."
    )
    last_seq = models.PositiveIntegerField(default=0, help_text="Sequence number of the last event.")
    engine_state = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The protocol engine's state after the last turn (empty: replay the turns).",
    )
    turn_deadline = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Imported debates: the dataset they came from.")
    external_id = models.CharField(max_length=200, blank=True)
    provenance = models.JSONField(
        default=dict, blank=True, help_text="What produced this debate: code version, seeds, models, prompts, importer."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Debate {self.pk}: {self.question}"

    def get_protocol(self) -> Protocol:
        return Protocol.from_dict(self.protocol)

    def shown_answer_order(self) -> list[int]:
        return self.answer_order or list(range(len(self.question.answers)))

    def engine(self) -> DebateEngine:
        """The protocol engine where the debate stands: restored from the state stored with the
        debate by the last action, or replayed from the turns for debates stored without one."""
        revealable = self.question.revealable_pixels()
        if self.engine_state is not None:
            return DebateEngine.from_state(
                self.get_protocol(), len(self.question.answers), self.engine_state, revealable=revealable
            )
        return self.replayed_engine()

    def replayed_engine(self) -> DebateEngine:
        actions = [t.as_action() for t in self.turns.order_by("id")]
        return DebateEngine.replay(
            self.get_protocol(), len(self.question.answers), actions, revealable=self.question.revealable_pixels()
        )

    def seat_of(self, user):
        """The user's seat; reads the participants once (or uses them when prefetched)."""
        if not user.is_authenticated:
            return None
        return next((p for p in self.participants.all() if p.user_id == user.pk), None)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=~Q(external_id=""), name="debate_unique_external_id"
            ),
        ]


class Participant(models.Model):
    """A seat in a debate: a debater (bound to an answer), the live judge, or an observer."""

    OBSERVER = "observer"

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="participants")
    seat = models.CharField(max_length=20, help_text="A debater's letter, 'judge' or 'observer'.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="seats"
    )
    answer_index = models.PositiveSmallIntegerField(null=True, blank=True)
    alias = models.CharField(max_length=60, blank=True, help_text="Name shown to others.")
    agent = models.JSONField(null=True, blank=True, help_text="AI seat: back-end and parameters.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["debate", "seat"], condition=~Q(seat="observer"), name="one_person_per_seat"
            ),
            models.UniqueConstraint(fields=["debate", "user"], name="one_seat_per_person"),
        ]

    def __str__(self):
        return f"{self.seat} in debate {self.debate_id}"

    @property
    def is_debater(self) -> bool:
        return self.seat not in (JUDGE, self.OBSERVER)

    @property
    def display_name(self) -> str:
        return self.alias or (f"Debater {self.seat}" if self.is_debater else self.seat.title())


class Turn(models.Model):
    """One action in a debate, in order: a speech, a judge's probability report, or a timed-out turn."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="turns")
    round_index = models.PositiveSmallIntegerField()
    seat = models.CharField(max_length=20)
    kind = models.CharField(max_length=10)  # speech, feedback, timeout
    text = models.TextField(blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    end_debate = models.BooleanField(default=False)
    private_note = models.TextField(blank=True, help_text="A debater's note to self; never shown to anyone else.")
    payload = models.JSONField(default=dict, blank=True)
    client_id = models.CharField(max_length=64, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["debate", "seat", "client_id"], condition=~Q(client_id=""), name="turn_idempotent_client_id"
            ),
        ]

    def as_action(self) -> Action:
        return Action(
            seat=self.seat,
            kind=self.kind,
            text=self.text,
            probabilities=tuple(self.probabilities) if self.probabilities else None,
            end_debate=self.end_debate,
            reveal=(self.payload or {}).get("reveal", {}).get("pixel"),
        )


class DebateEvent(models.Model):
    """Everything broadcast about a debate, saved first, numbered per debate so clients never miss one."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=40)
    audience = models.CharField(max_length=20, default="all")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["debate", "seq"], name="event_seq_unique")]


def new_invitation_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """A sign-up link: whoever opens it may create an account with the given role."""

    token = models.CharField(max_length=64, unique=True, default=new_invitation_token)
    role = models.CharField(max_length=20, choices=[(r, r) for r in ROLE_GROUPS], default=JUDGE_ROLE)
    # Set by whoever makes it (admin or experiment page), never typed in a form.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="invitations",
        help_text="People who sign up with this link join this experiment's study.",
    )
    uses_left = models.PositiveIntegerField(default=100)
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.role} invitation ({self.uses_left} uses left)"
