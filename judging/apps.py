from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "judging"

    def ready(self):
        from debates.signals import debate_finished

        from .signals import assign_offline_judges, give_pixel_verdict

        debate_finished.connect(give_pixel_verdict, dispatch_uid="judging.signals.give_pixel_verdict")
        debate_finished.connect(assign_offline_judges, dispatch_uid="judging.offline.assign_offline_judges")
