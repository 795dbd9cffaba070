from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import experiment_spec, live, pixel_debates, services
from .agents.config import AgentConfig
from .agents.errors import AgentError
from .models import Debate, DebateEvent, Experiment, Invitation, Participant, Question, Story, Turn
from .protocol import Protocol, Refused


def _platform_administrator(request) -> bool:
    """The admin is for platform administrators (superusers) only: it shows every researcher's
    experiments, debates and verdicts, so researchers, even with staff status and model
    permissions, work through the platform's own pages, which keep each to their own space."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _platform_administrator


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("id", "__str__", "kind", "source", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("text", "title", "external_id")
    raw_id_fields = ("story",)


@admin.register(Story)
class StoryAdmin(admin.ModelAdmin):
    list_display = ("id", "__str__", "source", "external_id", "created_at")
    list_filter = ("source",)
    search_fields = ("title", "external_id")


class DebateForm(forms.ModelForm):
    class Meta:
        model = Debate
        fields = ("question", "protocol", "answer_order", "status")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.initial.setdefault("protocol", Protocol().to_dict())

    def clean_protocol(self):
        try:
            return Protocol.from_dict(self.cleaned_data["protocol"] or {}).to_dict()
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(f"Not a valid protocol: {error}") from None

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.instance.turns.exists() and "protocol" in self.changed_data:
            raise forms.ValidationError("The protocol of a debate with turns is frozen.")
        return cleaned


class ParticipantForm(forms.ModelForm):
    class Meta:
        model = Participant
        fields = ("seat", "user", "answer_index", "alias", "agent")

    def clean_agent(self):
        """The same check as experiment files: a back-end the operator configured and a model,
        never an address or a key variable."""
        agent = self.cleaned_data.get("agent")
        if agent in (None, ""):
            return None
        if isinstance(agent, dict) and agent.get("backend") in experiment_spec.PLAYED_ELSEWHERE:
            try:
                pixel_debates.PixelAgent.from_dict(agent)
            except (TypeError, ValueError) as error:
                raise forms.ValidationError(str(error)) from None
            return agent
        try:
            AgentConfig.from_dict(agent)
        except AgentError as error:
            raise forms.ValidationError(error.message) from None
        return agent


class ParticipantInline(admin.TabularInline):
    model = Participant
    form = ParticipantForm
    fields = ("seat", "user", "answer_index", "alias", "agent")
    extra = 3


class TurnInline(admin.TabularInline):
    model = Turn
    fields = ("round_index", "seat", "kind", "text", "probabilities", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Debate)
class DebateAdmin(admin.ModelAdmin):
    form = DebateForm
    list_display = ("id", "question", "status", "created_at", "room")
    list_filter = ("status",)
    inlines = [ParticipantInline, TurnInline]
    actions = ["start_debates"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Room")
    def room(self, debate):
        return format_html('<a href="{}">open</a>', reverse("debate_room", args=[debate.pk]))

    @admin.action(description="Start the selected debates")
    def start_debates(self, request, queryset):
        for debate in queryset:
            try:
                live.publish(debate.pk, services.start_debate(debate.pk))
            except Refused as refused:
                self.message_user(request, f"Debate {debate.pk}: {refused.message}", messages.WARNING)


@admin.register(DebateEvent)
class DebateEventAdmin(admin.ModelAdmin):
    list_display = ("debate", "seq", "kind", "audience", "created_at")
    list_filter = ("kind",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("role", "experiment", "uses_left", "expires_at", "note", "link")
    readonly_fields = ("token", "created_by")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Sign-up link")
    def link(self, invitation):
        return reverse("join", args=[invitation.token])


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Where a platform administrator gives an experiment to more researchers (shared_with): they
    then see and run it like its owner (docs/security.md)."""

    list_display = ("name", "owner", "created_at")
    search_fields = ("name", "owner__username")
    filter_horizontal = ("shared_with",)
    readonly_fields = ("owner", "created_at")
