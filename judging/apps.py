from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "judging"

    def ready(self):
        from debates.signals import ai_judge_expected, debate_finished

        from .signals import ai_judge_turn, ai_judge_verdict, assign_offline_judges, give_pixel_verdict

        debate_finished.connect(give_pixel_verdict, dispatch_uid="judging.signals.give_pixel_verdict")
        debate_finished.connect(assign_offline_judges, dispatch_uid="judging.offline.assign_offline_judges")
        debate_finished.connect(ai_judge_verdict, dispatch_uid="judging.signals.ai_judge_verdict")
        ai_judge_expected.connect(ai_judge_turn, dispatch_uid="judging.signals.ai_judge_turn")
