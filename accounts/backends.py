"""Django's ModelBackend, with the signed-in person read by a prepared query on every request.

Every request loads its person from the session's user id; through the ORM that query cost about
10 % of a web process's time under load (most of it compiling the same SQL again). Here it is
compiled once per process (webmail/mail/prepared.py).

A failed sign-in is final (PermissionDenied, which Django treats as "stop asking other backends"):
Django's own ModelBackend stays listed after this one only so that sessions made before it keep
working, and it must not check a wrong password a second time.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from webmail.mail.prepared import PreparedQuery

PATH = "accounts.backends.ModelBackend"

_user_by_id: PreparedQuery[Any] = PreparedQuery(
    lambda pk: get_user_model()._default_manager.filter(pk=pk)[:1]
)


class ModelBackend(DjangoModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            raise PermissionDenied
        return user

    def get_user(self, user_id: Any) -> Any:
        try:
            found = _user_by_id(int(user_id))
        except (TypeError, ValueError):
            return None
        user = found[0] if found else None
        return user if user is not None and self.user_can_authenticate(user) else None
