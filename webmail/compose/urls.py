"""URLs of composing and sending."""

urlpatterns: list = []
