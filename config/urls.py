from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from debates import views as debate_views
from judging import judge_views

urlpatterns = [
    path("", debate_views.lobby, name="lobby"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("join/<str:token>/", debate_views.join, name="join"),
    path("debates/<int:debate_id>/", debate_views.debate_room, name="debate_room"),
    path("debates/<int:debate_id>/start/", debate_views.start, name="debate_start"),
    path("debates/<int:debate_id>/verdict/", judge_views.verdict_form, name="verdict_form"),
    path("api/debates/<int:debate_id>/state/", debate_views.debate_state, name="api_debate_state"),
    path("api/debates/<int:debate_id>/actions/", debate_views.debate_action, name="api_debate_action"),
    path("healthz", debate_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("judging.urls")),
]
