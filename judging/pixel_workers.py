"""Entry points of the local self-play worker processes (manage.py pixel_selfplay --workers N).

Spawned processes unpickle these functions before Django is set up, so this module imports
nothing from Django or the apps at import time."""


def init_worker_process(database_name: str) -> None:
    """A spawned worker: Django on the command's database, one torch thread (the processes share the cores)."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database_name  # before any connection is made
    django.setup()
    import torch

    torch.set_num_threads(1)


def run_units(run: dict, units: list) -> int:
    from judging import pixel_selfplay

    return pixel_selfplay.run_units(pixel_selfplay.SelfPlayRun.from_dict(run), units)
