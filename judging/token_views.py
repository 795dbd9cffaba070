"""The API tokens page: a researcher makes tokens for scripts (shown once), sees when each was
used and when it expires, and revokes them. Only a hash of each key is stored."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import ApiToken
from .pages import researcher_required

EXPIRY_CHOICES = (7, 30, 90, 365)
MAX_NAME = 100


@researcher_required
def api_tokens(request):
    new_key, errors = None, []
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        days = request.POST.get("days", "")
        if len(name) > MAX_NAME or "\x00" in name:
            errors.append(f"a name has at most {MAX_NAME} characters")
        if days not in {str(d) for d in EXPIRY_CHOICES}:
            errors.append("choose when the token expires")
        if not errors:
            _, new_key = ApiToken.issue(request.user, name, days=int(days))
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    return render(request, "judging/api_tokens.html", {
        "tokens": tokens, "new_key": new_key, "errors": errors, "expiry_choices": EXPIRY_CHOICES,
        "default_days": ApiToken.DEFAULT_DAYS}, status=400 if errors else 200)


@researcher_required
@require_POST
def revoke_api_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    messages.success(request, f"Revoked the token {token.prefix}…; scripts using it now get 401.")
    return redirect("api_tokens")
