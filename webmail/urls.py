"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from webmail.mail.views import home

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("settings/", include("accounts.urls")),
    path("compose/", include("webmail.compose.urls")),
    path("admin/", admin.site.urls),
]
