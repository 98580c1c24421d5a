"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from webmail.mail.views import home
from webmail.ops import views as ops_views

urlpatterns = [
    path("", home.home, name="home"),
    path("mail/", include("webmail.mail.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("settings/", include("accounts.urls")),
    path("compose/", include("webmail.compose.urls")),
    path("dashboard/", include("webmail.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("healthz", ops_views.healthz, name="healthz"),
    path("metrics", ops_views.metrics, name="metrics"),
]
