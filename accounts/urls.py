"""URLs of people's settings and mail accounts."""

from django.urls import path

from accounts.views import data, login, mail_accounts, preferences, security, signup

urlpatterns = [
    path("signup/", signup.signup, name="signup"),
    path("signup/verify/<str:token>/", signup.verify_email, name="signup_verify"),
    path("signup/invite/<str:token>/", signup.signup_invite, name="signup_invite"),
    path("login/code/", login.login_code, name="login_code"),
    path("", preferences.preferences, name="preferences"),
    path("security/", security.security, name="security"),
    path("security/2fa/setup/", security.two_factor_setup, name="two_factor_setup"),
    path("security/2fa/disable", security.two_factor_disable, name="two_factor_disable"),
    path("security/2fa/recovery-codes", security.recovery_codes, name="recovery_codes"),
    path(
        "security/sessions/sign-out-others", security.sign_out_other_sessions, name="sign_out_other_sessions"
    ),
    path("security/activity/", security.activity, name="activity"),
    path("data/", data.data, name="data"),
    path("data/export", data.export_mail, name="export_mail"),
    path("data/delete", data.delete_account, name="delete_account"),
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
