"""The accounts imported data is attached to: inactive, with no usable password, so nobody can log
in as a dataset's judge or debater."""

from django.contrib.auth import get_user_model


class LoginAccountInTheWay(Exception):
    """An account of that name exists and somebody can log in to it."""


def imported_account(username: str, refuse_login_accounts: bool = True):
    """(user, created): the account of this name, made inactive and password-less when new.
    Raises LoginAccountInTheWay when it exists with a password (unless told not to refuse it)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, is_active=False)
        user.set_unusable_password()
        user.save()
        return user, True
    if refuse_login_accounts and user.has_usable_password():
        raise LoginAccountInTheWay(
            f"user {username} exists with a password; imported data is never attached "
            f"to an account somebody can log in to"
        )
    return user, False
