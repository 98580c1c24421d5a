"""The only way to load a person's mail accounts: missing and not-yours are the same 404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from accounts.models import ConnectionCheck, MailAccount


def access_mail_account(user: AbstractBaseUser, account_id: int) -> MailAccount:
    """Return USER's mail account ACCOUNT_ID, or raise Http404."""
    try:
        return MailAccount.objects.get(pk=account_id, user_id=user.pk)
    except MailAccount.DoesNotExist:
        raise Http404("No such mail account")


def access_connection_check(user: AbstractBaseUser, account_id: int, check_id: int) -> ConnectionCheck:
    """Return the connection check CHECK_ID of USER's account ACCOUNT_ID, or raise Http404."""
    try:
        return ConnectionCheck.objects.select_related("account").get(
            pk=check_id, account_id=account_id, account__user_id=user.pk
        )
    except ConnectionCheck.DoesNotExist:
        raise Http404("No such connection check")
