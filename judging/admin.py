from django.contrib import admin

from .models import ApiToken, Verdict


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ("debate", "judge", "judge_kind", "chosen_index", "correct", "score", "created_at")
    list_filter = ("judge_kind", "correct", "live")
    readonly_fields = [f.name for f in Verdict._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens of every user: the platform administrator can see when they were used and revoke them
    (keys cannot be read: only their hash is stored)."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "expires_at", "revoked_at", "status")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("user", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False  # keys are made on the API tokens page or with create_api_token

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset):
        for token in queryset:
            token.revoke()
