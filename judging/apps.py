from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "judging"

    def ready(self):
        from debates.signals import debate_finished

        from .pixel_judge import on_debate_finished

        debate_finished.connect(on_debate_finished, dispatch_uid="judging.pixel_judge.on_debate_finished")

        from .signals import assign_offline_judges

        debate_finished.connect(assign_offline_judges, dispatch_uid="judging.offline.assign_offline_judges")
