from django.urls import path

from . import api, experiment_views, offline_views, pages, token_views

urlpatterns = [
    path("experiments/", pages.experiment_list, name="experiment_list"),
    path("experiments/new/", experiment_views.experiment_new, name="experiment_new"),
    path("experiments/<int:experiment_id>/", pages.experiment_detail, name="experiment_detail"),
    path("experiments/<int:experiment_id>/edit/", experiment_views.experiment_edit, name="experiment_edit"),
    path("experiments/<int:experiment_id>/start/", experiment_views.experiment_start, name="experiment_start"),
    path("judging/offline/<int:assignment_id>/", offline_views.offline_judging, name="offline_judging"),
    path("experiments/<int:experiment_id>/analysis/", pages.experiment_analysis, name="experiment_analysis"),
    path("experiments/<int:experiment_id>/analysis/stamp.json", pages.experiment_analysis_stamp,
         name="experiment_analysis_stamp"),
    path("experiments/<int:experiment_id>/analysis/<slug:key>.csv", pages.experiment_figure_csv,
         name="experiment_figure_csv"),
    path("experiments/<int:experiment_id>/export.<str:fmt>.zip", pages.experiment_export, name="experiment_export"),
    path("experiments/<int:experiment_id>/datasheet.md", pages.experiment_datasheet, name="experiment_datasheet"),
    path("datasets/nyu/analysis/", pages.nyu_analysis, name="nyu_analysis"),
    path("datasets/nyu/analysis/<slug:key>.csv", pages.nyu_figure_csv, name="nyu_figure_csv"),
    path("account/api-tokens/", token_views.api_tokens, name="api_tokens"),
    path("account/api-tokens/<int:token_id>/revoke/", token_views.revoke_api_token, name="revoke_api_token"),
    path("api/schema.json", api.schema, name="api_schema"),
    path("api/experiments/", api.experiments, name="api_experiments"),
    path("api/experiments/<int:experiment_id>/", api.experiment, name="api_experiment"),
    path("api/experiments/<int:experiment_id>/analysis/", api.experiment_analysis, name="api_experiment_analysis"),
    path("api/experiments/<int:experiment_id>/verdicts/", api.experiment_verdicts, name="api_experiment_verdicts"),
    path("api/experiments/<int:experiment_id>/export.<str:fmt>.zip", api.experiment_export,
         name="api_experiment_export"),
    path("api/experiments/<int:experiment_id>/datasheet.md", api.experiment_datasheet, name="api_experiment_datasheet"),
]
