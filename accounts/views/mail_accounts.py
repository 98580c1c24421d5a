"""Pages for a person's mail accounts: list, add, edit, remove, test connection, presets."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts import actions
from accounts.access import access_connection_check, access_mail_account
from accounts.forms import MailAccountForm, PresetLookupForm
from accounts.limits import effective_limits
from accounts.models import MailAccount
from accounts.presets import preset_for


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = MailAccount.objects.filter(user=request.user).order_by("name", "id")
    return render(request, "accounts/mail_account_list.html", {"accounts": accounts})


@login_required
@sensitive_post_parameters("incoming_password", "smtp_password")
def account_add(request: HttpRequest) -> HttpResponse:
    count = MailAccount.objects.filter(user=request.user).count()
    if count >= effective_limits(request.user).max_accounts:
        messages.error(request, _("You already have the most mail accounts allowed (%d).") % count)
        return redirect("mail_account_list")
    initial = initial_from_preset(request.GET.get("email", ""))
    form = MailAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        account = actions.do_add_mail_account(request.user, form.save(commit=False), request)
        check = actions.do_request_connection_check(account)
        messages.success(request, _("Account added. Checking the connection now."))
        return redirect("mail_account_edit_check", account_id=account.pk, check_id=check.pk)
    return render(request, "accounts/mail_account_form.html", {"form": form, "account": None})


@login_required
@sensitive_post_parameters("incoming_password", "smtp_password")
def account_edit(request: HttpRequest, account_id: int, check_id: int | None = None) -> HttpResponse:
    account = access_mail_account(request.user, account_id)
    check = access_connection_check(request.user, account.pk, check_id) if check_id else None
    form = MailAccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        form.save(commit=False)
        actions.do_update_mail_account(account, form.changed_data, request)
        check = actions.do_request_connection_check(account)
        messages.success(request, _("Saved. Checking the connection now."))
        return redirect("mail_account_edit_check", account_id=account.pk, check_id=check.pk)
    return render(
        request, "accounts/mail_account_form.html", {"form": form, "account": account, "check": check}
    )


@login_required
def account_remove(request: HttpRequest, account_id: int) -> HttpResponse:
    account = access_mail_account(request.user, account_id)
    if request.method == "POST":
        actions.do_remove_mail_account(account, request)
        messages.success(
            request, _("The account %(name)s and its cached mail were removed.") % {"name": account.name}
        )
        return redirect("mail_account_list")
    return render(request, "accounts/mail_account_remove.html", {"account": account})


@login_required
@require_POST
def connection_check_start(request: HttpRequest, account_id: int) -> HttpResponse:
    account = access_mail_account(request.user, account_id)
    check = actions.do_request_connection_check(account)
    if request.htmx:
        return render(request, "accounts/_connection_check.html", {"account": account, "check": check})
    return redirect("mail_account_edit_check", account_id=account.pk, check_id=check.pk)


@login_required
@require_GET
def connection_check_status(request: HttpRequest, account_id: int, check_id: int) -> HttpResponse:
    check = access_connection_check(request.user, account_id, check_id)
    return render(request, "accounts/_connection_check.html", {"account": check.account, "check": check})


@login_required
@require_GET
def preset(request: HttpRequest) -> HttpResponse:
    """Return the server fieldsets filled in for the address typed so far (htmx), or redirect."""
    initial = initial_from_preset(request.GET.get("email", ""))
    if not request.htmx:
        return redirect(f"{reverse('mail_account_add')}?{urlencode({'email': request.GET.get('email', '')})}")
    form = MailAccountForm(
        initial={**initial, **{k: v for k, v in request.GET.items() if k in ("name", "display_name")}}
    )
    return render(
        request, "accounts/_server_fields.html", {"form": form, "preset_note": initial.get("_note", "")}
    )


def initial_from_preset(email: str) -> dict[str, object]:
    """Return initial form values for EMAIL: the address itself plus its provider's servers."""
    lookup = PresetLookupForm({"email": email})
    if not email or not lookup.is_valid():
        return {}
    address = lookup.cleaned_data["email"]
    initial: dict[str, object] = {
        "email": address,
        "incoming_username": address,
        "name": address.split("@")[1],
    }
    found = preset_for(address)
    if found:
        initial.update(
            incoming_protocol=found.incoming_protocol,
            incoming_host=found.incoming_host,
            incoming_port=found.incoming_port,
            incoming_security=found.incoming_security,
            smtp_host=found.smtp_host,
            smtp_port=found.smtp_port,
            smtp_security=found.smtp_security,
            _note=found.note or (_("Settings for %s filled in.") % found.provider if found.provider else ""),
        )
    return initial
