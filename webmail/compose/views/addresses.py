"""Address suggestions for To/Cc/Bcc, from the people in the person's own cached mail."""

from __future__ import annotations

from collections import Counter

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from webmail.mail.models import Message, SpecialUse
from webmail.mailcore.addresses import Address

SCAN = 2000
LIMIT = 10


@login_required
@require_GET
def compose_addresses(request: HttpRequest) -> JsonResponse:
    q = (request.GET.get("q") or "").strip().lower()[:100]
    if len(q) < 2:
        return JsonResponse({"addresses": []})
    mine = Message.objects.filter(account__user=request.user)
    counts: Counter[tuple[str, str]] = Counter()
    names: dict[str, str] = {}
    received = mine.filter(Q(from_email__icontains=q) | Q(from_name__icontains=q)).order_by("-date")
    for name, addr in received.values_list("from_name", "from_email")[:SCAN]:
        counts[("", addr.lower())] += 1
        names.setdefault(addr.lower(), name)
    sent = mine.filter(folder__special_use=SpecialUse.SENT).order_by("-date").values_list("to", "cc")[:SCAN]
    for to, cc in sent:
        for pair in [*(to or []), *(cc or [])]:
            name, addr = (pair + ["", ""])[:2]
            if q in addr.lower() or q in (name or "").lower():
                counts[("", addr.lower())] += 3  # people one writes to rank first
                if name:
                    names[addr.lower()] = name
    best = [addr for (_n, addr), _c in counts.most_common(LIMIT)]
    return JsonResponse({"addresses": [Address(names.get(a, ""), a).formatted for a in best]})
