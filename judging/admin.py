from django.contrib import admin

from .models import Verdict


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ("debate", "judge", "judge_kind", "chosen_index", "correct", "score", "created_at")
    list_filter = ("judge_kind", "correct", "live")
    readonly_fields = [f.name for f in Verdict._meta.fields]

    def has_add_permission(self, request):
        return False
