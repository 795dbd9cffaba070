"""Template context that judging adds to every page, so pages outside the judging app can show
judging data without importing judging (debates never does): the lobby lists the user's offline
judging work from here."""

from django.utils.functional import SimpleLazyObject

from .models import Assignment


def offline_assignments(request) -> dict:
    """`offline_assignments`: the user's offline judging assignments that are not done yet, oldest
    first. Lazy: only a page that uses it runs the query."""

    def unfinished():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return []
        return list(
            Assignment.objects.filter(judge=user)
            .exclude(status=Assignment.DONE)
            .select_related("debate__question")
            .order_by("id")
        )

    return {"offline_assignments": SimpleLazyObject(unfinished)}
