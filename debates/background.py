"""Background work, started one way.

Every task that pages, services, signals' receivers and the sweep start goes through
`BackgroundTask.dispatch`: it is enqueued once the current transaction commits (at once outside
one), as pretix's TransactionAwareTask does, so a task never looks for rows that are not committed
yet or that a rollback removed. Where it runs:

- production (REDIS_URL set): on a Celery worker, through the broker;
- the embedded default (settings.RUN_TASKS_IN_PROCESS, no broker): on a daemon thread of the web
  process, started by `start_thread`. That is the one place the fallback is written. A task that
  retries through Celery names in `in_process` what the thread runs instead: one attempt, whose
  failure is recorded, or left for the sweep (debates.sweep) to pick up.

A module that the task module imports (services, the sweep, the pixel player) names the task,
`dispatch("debates.tasks.run_ai_turn", ...)`, instead of importing it, as Celery's own messages
do: imports then point one way, from the tasks to the services, never back. Work that needs this
process's objects (the analysis page's refresh holds a queryset) calls `start_thread` directly in
every mode.

Not here: pixel self-play (manage.py pixel_selfplay) is a batch job of hours that the operator
starts from a shell. It spreads its units over CPU cores with multiprocessing, or over Celery
workers with judging.tasks.pixel_selfplay_unit, and waits for every result to report Table 2;
there is no transaction to wait for and no web process to fall back to, and threads would share
one core (the tree search is pure Python and numpy)."""

import functools
import threading
from datetime import datetime

from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

# A timer may fire a moment early; work due at a deadline only acts once the deadline has passed.
DEADLINE_MARGIN_SECONDS = 0.05


class BackgroundTask(DjangoTask):
    """The base class of the project's tasks: `@shared_task(base=BackgroundTask, ...)`.

    `in_process`: a staticmethod the embedded default runs instead of the task (same arguments);
    None runs the task itself. Subclasses may override `start` to do bookkeeping before the task
    starts (debates.tasks.AITurnTask)."""

    in_process = None

    def dispatch(self, *args, **when) -> None:
        """Starts the task with `args` once the current transaction commits. `when`: countdown
        (seconds) or eta (a datetime), and whatever a subclass's `start` takes."""
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(functools.partial(self.start, *args, **when))
        else:  # as on_commit would, but without opening a connection just to ask
            self.start(*args, **when)

    def start(self, *args, countdown: float = 0.0, eta: datetime | None = None) -> None:
        """Starts the task now: a thread in the embedded default, the broker in production."""
        if settings.RUN_TASKS_IN_PROCESS:
            delay = seconds_until(eta) + DEADLINE_MARGIN_SECONDS if eta else countdown
            start_thread(self.in_process or self, *args, delay=delay, name=thread_name(self.name, args))
        else:
            self.apply_async(args=args, countdown=countdown or None, eta=eta)


def dispatch(task_name: str, *args, **when) -> None:
    """BackgroundTask.dispatch for the task called `task_name` (its dotted path)."""
    import_string(task_name).dispatch(*args, **when)


def start_thread(function, *args, delay: float = 0.0, name: str | None = None) -> threading.Timer:
    """Runs function(*args) on a daemon thread of this process `delay` seconds from now, and closes
    the database connections the thread opened when it ends."""
    timer = threading.Timer(max(0.0, delay), _closing_connections, args=(function, *args))
    timer.daemon = True
    if name:
        timer.name = name
    timer.start()
    return timer


def _closing_connections(function, *args) -> None:
    try:
        function(*args)
    finally:
        connections.close_all()  # this thread's own: Django's connections are per thread


def seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - timezone.now()).total_seconds())


def thread_name(task_name: str, args: tuple) -> str:
    return "-".join([task_name.rpartition(".")[2], *map(str, args)])
