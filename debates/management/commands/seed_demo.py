"""Demo data for a newcomer: users for every role, text questions and debates ready to play.

Idempotent: running it again creates nothing twice. The demo passages are written for DebateLab.
"""

import json
from pathlib import Path

from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand
from django.db import transaction

from debates import services
from debates.models import DEBATER, JUDGE_ROLE, RESEARCHER, Debate, Question
from debates.protocol import Protocol

DEMO_PASSWORD = "debatelab"
DEMO_USERS = [
    ("researcher", RESEARCHER),
    ("alice", DEBATER),
    ("bob", DEBATER),
    ("judy", JUDGE_ROLE),
    ("jules", JUDGE_ROLE),
]
QUESTIONS_FILE = Path(__file__).resolve().parents[2] / "demo_questions.json"
SOURCE = "debatelab-demo"


class Command(BaseCommand):
    help = "Create demo users, questions and ready debates (safe to run again)."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = {name: self.user(name, role) for name, role in DEMO_USERS}
            questions = [self.question(q) for q in json.loads(QUESTIONS_FILE.read_text())]
            self.debates(users, questions)
        self.image_debates(users)
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for name, role in DEMO_USERS:
            self.stdout.write(f"  {name:<11} {role}")

    def user(self, name: str, role: str) -> User:
        user, created = User.objects.get_or_create(username=name)
        if created:
            user.set_password(DEMO_PASSWORD)
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
        if role == RESEARCHER:  # no staff status: the admin is for platform administrators (docs/security.md)
            user.is_staff = False
            group.permissions.set(
                Permission.objects.filter(content_type__app_label="judging", codename="export_identities")
            )
        user.save()
        return user

    def question(self, data: dict) -> Question:
        question, _ = Question.objects.get_or_create(
            source=SOURCE,
            external_id=data["external_id"],
            defaults={
                k: data[k] for k in ("title", "text", "answers", "correct_index", "public_material", "hidden_material")
            },
        )
        return question

    def debates(self, users, questions):
        if Debate.objects.filter(question__source=SOURCE).exists():
            return
        two_rounds = Protocol(rounds=("simultaneous", "judge_feedback", "sequential", "judge_feedback"))
        timed = Protocol(rounds=("sequential", "judge_feedback", "sequential"), turn_seconds=90)
        live = services.create_debate(
            questions[0],
            two_rounds,
            {"A": (users["alice"], 1), "B": (users["bob"], 0)},
            judge=users["judy"],
            observers=[users["researcher"]],
            created_by=users["researcher"],
            seed=1,
        )
        services.start_debate(live.pk)
        # Timed debates start from the room (the researcher's Start button), so the clock starts then.
        services.create_debate(
            questions[1],
            timed,
            {"A": (users["bob"], 1), "B": (users["alice"], 0)},
            judge=users["jules"],
            observers=[users["researcher"]],
            created_by=users["researcher"],
            seed=2,
        )
        services.create_debate(
            questions[2],
            two_rounds,
            {"A": (users["alice"], 0), "B": (users["bob"], 1)},
            judge=users["judy"],
            created_by=users["researcher"],
            seed=3,
        )

    def image_debates(self, users):
        """Two MNIST pixel debates: tree search debaters judged by judy (starts when she opens it), and
        alice against bob judged by jules. Skipped, with a note, when MNIST cannot be fetched."""
        from debates import pixel_debates
        from debates.pixel.mnist import MnistError

        if Debate.objects.filter(provenance__pixel_debate__demo=True).exists():
            return
        try:
            pixel_debates.mnist_test_set()
        except (MnistError, OSError) as error:
            self.stdout.write(f"No image debates: MNIST is not available ({error}).")
            return
        with transaction.atomic():
            ai = pixel_debates.create_pixel_debate(
                "ai_vs_ai",
                4,
                lie=9,
                pixels=6,
                judge=users["judy"],
                observers=[users["researcher"]],
                rollouts=300,
                seed=1,
                move_delay=3.0,
                created_by=users["researcher"],
                start_when_judge_opens=True,
            )
            people = pixel_debates.create_pixel_debate(
                "human_vs_human",
                8,
                lie=8,
                humans=(users["alice"], users["bob"]),
                judge=users["jules"],
                observers=[users["researcher"]],
                rounds=4,
                seed=2,
                created_by=users["researcher"],
            )
            for debate in (ai, people):
                debate.provenance["pixel_debate"]["demo"] = True
                debate.save(update_fields=["provenance"])
            services.start_debate(people.pk)
