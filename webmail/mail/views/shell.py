"""What every mail page shares: the person's time zone, the folder tree and the listing in the middle pane."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount, Profile
from webmail.mail import fulltext, search
from webmail.mail.models import Folder, FolderNaming, SpecialUse, SyncProgress, SyncState
from webmail.mail.prepared import PreparedQuery
from webmail.middleware import APP_CSP

# Mail HTML keeps its style="" attributes; its sandboxed srcdoc iframe inherits this page's policy.
# Only attributes: <style> elements stay forbidden, and no mail markup reaches this page outside
# the iframe.
MAIL_CSP = APP_CSP + "; style-src-attr 'unsafe-inline'"
TZ_COOKIE = "tz"
SPECIAL_ORDER = ["inbox", "flagged", "drafts", "sent", "archive", "all", "junk", "trash", ""]


def with_person_time(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render in the person's time zone (reported by mail.js in a cookie) and under the mail CSP."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        name = request.COOKIES.get(TZ_COOKIE, "")
        try:
            zone = zoneinfo.ZoneInfo(name) if name and len(name) < 64 else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is not None:
            timezone.activate(zone)
        try:
            response = view(request, *args, **kwargs)
        finally:
            timezone.deactivate()
        response.headers.setdefault("Content-Security-Policy", MAIL_CSP)
        return response

    return wrapper


@dataclass(slots=True)
class TreeAccount:
    pk: int
    name: str
    email: str


@dataclass(slots=True)
class TreeSync(SyncProgress):
    progress_done: int
    progress_total: int


@dataclass(slots=True)
class TreeFolder(FolderNaming):
    """A folder as the tree and the "move to" menus show it."""

    pk: int
    account_id: int
    name: str
    delimiter: str
    special_use: str
    unread_count: int
    total_count: int
    selectable: bool


@dataclass
class AccountTree:
    account: TreeAccount
    folders: list[TreeFolder]
    sync: TreeSync | None


@functools.cache
def _tree_sql() -> str:
    """Every page draws the tree: one plain query (no ORM compilation, no model instances)."""

    def columns(alias: str, model: type, *fields: str) -> list[str]:
        return [f"{alias}.{model._meta.get_field(name).column}" for name in fields]

    account, sync, folder = (m._meta.db_table for m in (MailAccount, SyncState, Folder))
    names = ", ".join(
        columns("a", MailAccount, "id", "name", "email")
        + columns("s", SyncState, "progress_done", "progress_total")
        + columns(
            "f", Folder, "id", "name", "delimiter", "special_use", "unread_count", "total_count", "selectable"
        )
    )
    (s_account,) = columns("s", SyncState, "account")
    (f_account,) = columns("f", Folder, "account")
    a_id, a_name, a_user = columns("a", MailAccount, "id", "name", "user")
    return (  # names from the models; the person's id is bound
        f"SELECT {names} FROM {account} a LEFT JOIN {sync} s ON {s_account} = {a_id} "  # noqa: S608
        f"LEFT JOIN {folder} f ON {f_account} = {a_id} WHERE {a_user} = %s ORDER BY {a_name}, {a_id}"
    )


def _folder_order(folder: TreeFolder) -> tuple[int, str]:
    use = folder.special_use
    return (SPECIAL_ORDER.index(use) if use in SPECIAL_ORDER else 99, folder.name.lower())


def folder_tree(user: AbstractBaseUser) -> list[AccountTree]:
    """Return the person's accounts with their folders, special folders first (one query)."""
    trees: list[AccountTree] = []
    with connection.cursor() as cursor:
        cursor.execute(_tree_sql(), [user.pk])
        rows = cursor.fetchall()
    for account_id, name, email, done, total, *folder in rows:
        if not trees or trees[-1].account.pk != account_id:
            sync = TreeSync(done, total) if done is not None else None
            trees.append(AccountTree(TreeAccount(account_id, name, email), [], sync))
        if folder[0] is not None:
            fid, fname, delimiter, use, unread, count, selectable = folder
            trees[-1].folders.append(
                TreeFolder(fid, account_id, fname, delimiter, use, unread, count, bool(selectable))
            )
    for tree in trees:
        tree.folders.sort(key=_folder_order)
    return trees


@dataclass
class Listing:
    """The middle pane: which messages, in which order, and the URLs to page and re-sort them."""

    kind: str  # "folder", "inboxes" or "search"
    title: str
    base_url: str
    params: dict[str, str]
    page: search.Page
    folder: Folder | None = None
    query: str = ""
    query_errors: list[str] = field(default_factory=list)
    unindexed: int = 0  # search: the person's messages not yet in the full-text index
    sort: str = "date"
    conversations: bool = False

    def url(self, **changes: str | None) -> str:
        params = {**self.params, **changes}
        clean = {k: v for k, v in params.items() if v}
        return self.base_url + ("?" + urlencode(clean) if clean else "")

    @property
    def current_url(self) -> str:
        return self.url()

    @property
    def next_url(self) -> str | None:
        return self.url(after=self.page.next_cursor) if self.page.next_cursor else None

    @property
    def first_url(self) -> str:
        return self.url(after=None)

    @property
    def toggle_view_url(self) -> str:
        return self.url(view=None if self.conversations else "conversations", after=None)

    def sort_url(self, sort: str) -> str:
        return self.url(sort=None if sort == "date" else sort, after=None)

    @property
    def sort_links(self) -> list[tuple[str, str, bool]]:
        from django.utils.translation import gettext as _

        names = {"date": _("Date"), "from": _("Sender"), "subject": _("Subject"), "size": _("Size")}
        return [(names[s], self.sort_url(s), s == self.sort) for s in search.SORTS]


def _list_params(query: QueryDict, *, allow_sort: bool = True) -> dict[str, str]:
    params: dict[str, str] = {}
    sort = query.get("sort", "")
    if allow_sort and sort in search.SORTS and sort != "date":
        params["sort"] = sort
    if query.get("view") == "conversations":
        params["view"] = "conversations"
    if query.get("after"):
        params["after"] = query.get("after", "")[:200]
    return params


_page_size: PreparedQuery[int] = PreparedQuery(
    lambda user_id: Profile.objects.filter(user_id=user_id).values_list("messages_per_page", flat=True)[:1]
)


def page_size_for(user_id: int) -> int:
    """The person's "messages per page" setting (10-200), or the default."""
    chosen = _page_size(user_id)
    return min(200, max(10, chosen[0])) if chosen and chosen[0] else search.PAGE_SIZE


def folder_listing(folder: Folder, query: QueryDict) -> Listing:
    params = _list_params(query)
    sort = params.get("sort", "date")
    conversations = params.get("view") == "conversations"
    page = search.list_page(
        [search.folder_scope(folder)],
        sort=sort,
        cursor=params.get("after"),
        conversations=conversations,
        page_size=page_size_for(folder.account.user_id),
    )
    return Listing(
        kind="folder",
        title=folder.display_name,
        base_url=reverse("mail_folder", args=[folder.pk]),
        params=params,
        page=page,
        folder=folder,
        sort=sort,
        conversations=conversations,
    )


def inboxes_listing(user: AbstractBaseUser, query: QueryDict) -> Listing:
    from django.utils.translation import gettext as _

    params = _list_params(query)
    sort = params.get("sort", "date")
    conversations = params.get("view") == "conversations"
    page = search.list_page(
        search.all_inboxes_scopes(user),
        sort=sort,
        cursor=params.get("after"),
        conversations=conversations,
        page_size=page_size_for(user.pk),
    )
    return Listing(
        kind="inboxes",
        title=_("All inboxes"),
        base_url=reverse("mail_inboxes"),
        params=params,
        page=page,
        sort=sort,
        conversations=conversations,
    )


def _lazy_account_ids(user_id: int) -> Iterator[int]:
    yield from search.account_ids(user_id)


def search_listing(user: AbstractBaseUser, query: QueryDict, folder: Folder | None) -> Listing:
    from django.utils.translation import gettext as _

    text = query.get("q", "")[:1000]
    params = {"q": text}
    if folder is not None:
        params["folder"] = str(folder.pk)
    if query.get("after"):
        params["after"] = query.get("after", "")[:200]
    parsed, page = search.search_page(user, text, folder=folder, cursor=params.get("after"))
    # Read only when something waits to be indexed (a generator: nothing runs until then).
    accounts = iter([folder.account_id]) if folder is not None else _lazy_account_ids(user.pk)
    return Listing(
        kind="search",
        title=_("Search"),
        base_url=reverse("mail_search"),
        params=params,
        page=page,
        folder=folder,
        query=text,
        query_errors=parsed.errors,
        unindexed=fulltext.pending_count(accounts) if parsed.terms else 0,
    )


def listing_for_url(request: HttpRequest, url: str) -> Listing | None:
    """Rebuild the listing a page was showing from its URL (after an action), or None."""
    from urllib.parse import urlsplit

    from django.urls import Resolver404, resolve

    from webmail.mail.access import access_folder

    parts = urlsplit(url or "")
    if parts.scheme or parts.netloc:
        return None
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    query = QueryDict(parts.query)
    if match.url_name == "mail_folder":
        return folder_listing(access_folder(request.user, match.kwargs["folder_id"]), query)
    if match.url_name in ("mail_inboxes", "home"):
        return inboxes_listing(request.user, query)
    if match.url_name == "mail_search":
        folder = access_folder(request.user, query["folder"]) if query.get("folder") else None
        return search_listing(request.user, query, folder)
    return None


def special_use_label(use: str) -> str:
    return str(SpecialUse(use).label) if use in SpecialUse.values else use
