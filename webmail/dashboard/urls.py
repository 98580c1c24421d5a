"""URLs of the operator dashboard (staff only)."""

from django.urls import path

from webmail.dashboard.views import admin_pages, mail_accounts, overview, people

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("system", overview.system, name="system"),
    path("people/", people.person_list, name="people"),
    path("people/<int:user_id>/", people.person_detail, name="person"),
    path("lockouts/", people.lockouts, name="lockouts"),
    path("lockouts/unlock", people.unlock, name="unlock"),
    path("accounts/<int:account_id>/", mail_accounts.account_detail, name="account"),
    path("accounts/<int:account_id>/resync", mail_accounts.resync, name="account_resync"),
    path("accounts/<int:account_id>/enabled", mail_accounts.set_enabled, name="account_enabled"),
    path("accounts/<int:account_id>/reset-lock", mail_accounts.reset_lock, name="account_reset_lock"),
    path("limits/", admin_pages.limits, name="limits"),
    path("invites/", admin_pages.invites, name="invites"),
    path("invites/<int:invite_id>/revoke", admin_pages.invite_revoke, name="invite_revoke"),
    path("audit/", admin_pages.audit_log, name="audit"),
]
