"""URLs of people's settings and mail accounts."""

from django.urls import path

from accounts.views import mail_accounts, signup

urlpatterns = [
    path("signup/", signup.signup, name="signup"),
    path("mail/", mail_accounts.account_list, name="mail_account_list"),
    path("mail/add", mail_accounts.account_add, name="mail_account_add"),
    path("mail/preset", mail_accounts.preset, name="mail_account_preset"),
    path("mail/<int:account_id>/", mail_accounts.account_edit, name="mail_account_edit"),
    path(
        "mail/<int:account_id>/check/<int:check_id>/",
        mail_accounts.account_edit,
        name="mail_account_edit_check",
    ),
    path("mail/<int:account_id>/remove", mail_accounts.account_remove, name="mail_account_remove"),
    path("mail/<int:account_id>/test", mail_accounts.connection_check_start, name="connection_check_start"),
    path(
        "mail/<int:account_id>/test/<int:check_id>",
        mail_accounts.connection_check_status,
        name="connection_check_status",
    ),
]
