"""Forms of the dashboard: limits and invites."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Limits


class LimitsForm(forms.ModelForm):
    """Limits for one person or for everyone; blank means "the default"."""

    class Meta:
        model = Limits
        fields = ["max_accounts", "max_cache_mb", "max_sends_per_hour"]
        help_texts = {
            "max_accounts": _("Blank: the default."),
            "max_cache_mb": _("Blank: the default."),
            "max_sends_per_hour": _("Blank: the default."),
        }


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("For address (optional)"), required=False)
    note = forms.CharField(label=_("Note (who is it for?)"), max_length=200, required=False)
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=90, initial=7)
