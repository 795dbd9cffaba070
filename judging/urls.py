from django.urls import path

from . import api, judge_views, researcher_views, study_views

urlpatterns = [
    path("experiments/", researcher_views.experiment_list, name="experiment_list"),
    path("experiments/new/", researcher_views.experiment_new, name="experiment_new"),
    path("experiments/<int:experiment_id>/", researcher_views.experiment_detail, name="experiment_detail"),
    path("experiments/<int:experiment_id>/edit/", researcher_views.experiment_edit, name="experiment_edit"),
    path("experiments/<int:experiment_id>/start/", researcher_views.experiment_start, name="experiment_start"),
    path("study/<int:experiment_id>/", study_views.study, name="study"),
    path("study/<int:experiment_id>/consent/", study_views.study_consent, name="study_consent"),
    path("study/<int:experiment_id>/quiz/", study_views.study_quiz, name="study_quiz"),
    path("study/<int:experiment_id>/practice/", study_views.study_practice, name="study_practice"),
    path("study/<int:experiment_id>/survey/", study_views.study_survey, name="study_survey"),
    path("study/<int:experiment_id>/status.json", study_views.study_status, name="study_status"),
    path(
        "experiments/<int:experiment_id>/participants/<int:participant_id>/release/",
        study_views.release_participant,
        name="study_release",
    ),
    path("experiments/<int:experiment_id>/participants.csv", study_views.study_export, name="study_export"),
    path("experiments/<int:experiment_id>/study.json", study_views.study_monitor, name="study_monitor"),
    path(
        "experiments/<int:experiment_id>/participants/<int:participant_id>/advance/",
        study_views.advance_participant,
        name="study_advance",
    ),
    path("experiments/<int:experiment_id>/invitations/", study_views.make_invitation, name="experiment_invitation"),
    path("experiments/<int:experiment_id>/bonuses/", study_views.make_bonus_file, name="experiment_bonus_batch"),
    path(
        "experiments/<int:experiment_id>/bonuses/<int:batch>.csv", study_views.bonus_file, name="experiment_bonus_file"
    ),
    path("judging/offline/<int:assignment_id>/", judge_views.offline_judging, name="offline_judging"),
    path("experiments/<int:experiment_id>/analysis/", researcher_views.experiment_analysis, name="experiment_analysis"),
    path(
        "experiments/<int:experiment_id>/analysis/stamp.json",
        researcher_views.experiment_analysis_stamp,
        name="experiment_analysis_stamp",
    ),
    path(
        "experiments/<int:experiment_id>/analysis/<slug:key>.csv",
        researcher_views.experiment_figure_csv,
        name="experiment_figure_csv",
    ),
    path(
        "experiments/<int:experiment_id>/export.<str:fmt>.zip",
        researcher_views.experiment_export,
        name="experiment_export",
    ),
    path(
        "experiments/<int:experiment_id>/datasheet.md",
        researcher_views.experiment_datasheet,
        name="experiment_datasheet",
    ),
    path("datasets/nyu/analysis/", researcher_views.nyu_analysis, name="nyu_analysis"),
    path("datasets/nyu/analysis/<slug:key>.csv", researcher_views.nyu_figure_csv, name="nyu_figure_csv"),
    path("account/api-tokens/", researcher_views.api_tokens, name="api_tokens"),
    path("account/api-tokens/<int:token_id>/revoke/", researcher_views.revoke_api_token, name="revoke_api_token"),
    path("api/schema.json", api.schema, name="api_schema"),
    path("api/experiments/", api.experiments, name="api_experiments"),
    path("api/experiments/<int:experiment_id>/", api.experiment, name="api_experiment"),
    path("api/experiments/<int:experiment_id>/analysis/", api.experiment_analysis, name="api_experiment_analysis"),
    path("api/experiments/<int:experiment_id>/verdicts/", api.experiment_verdicts, name="api_experiment_verdicts"),
    path(
        "api/experiments/<int:experiment_id>/export.<str:fmt>.zip", api.experiment_export, name="api_experiment_export"
    ),
    path("api/experiments/<int:experiment_id>/datasheet.md", api.experiment_datasheet, name="api_experiment_datasheet"),
]
