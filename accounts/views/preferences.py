"""A person's settings page: name, language, time zone, theme and how mail is shown and sent."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import people, signals
from accounts.forms import ProfileForm
from accounts.middleware import TIME_ZONE_KEY
from accounts.models import AuditEvent, TrustedSender


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and "forget_sender" in request.POST:
        chosen = request.POST.get("forget_sender", "")
        if chosen.isdigit():
            TrustedSender.objects.filter(user=request.user, pk=int(chosen)).delete()
        messages.success(request, _("Remote content from that sender is blocked again."))
        return redirect("preferences")
    profile = people.profile_for(request.user)
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        request.session[TIME_ZONE_KEY] = profile.time_zone
        if form.changed_data:
            signals.record(
                AuditEvent.Kind.SETTINGS_CHANGED, request.user, request, fields=sorted(form.changed_data)
            )
        messages.success(request, _("Settings saved."))
        return redirect("preferences")
    trusted = TrustedSender.objects.filter(user=request.user)
    return render(request, "accounts/preferences.html", {"form": form, "trusted_senders": trusted})
