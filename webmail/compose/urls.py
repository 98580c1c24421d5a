"""URLs of composing and sending (the reading UI links to compose_new/_reply/_reply_all/_forward)."""

from django.urls import path

from webmail.compose.views import addresses, attachments, compose, outbox

urlpatterns = [
    path("new/", compose.compose_new, name="compose_new"),
    path("reply/<int:message_id>/", compose.compose_reply, name="compose_reply"),
    path("reply-all/<int:message_id>/", compose.compose_reply_all, name="compose_reply_all"),
    path("forward/<int:message_id>/", compose.compose_forward, name="compose_forward"),
    path(
        "forward/<int:message_id>/attached/",
        compose.compose_forward_attached,
        name="compose_forward_attached",
    ),
    path("draft/<int:message_id>/", compose.compose_open_draft, name="compose_open_draft"),
    path("save/", compose.compose_save, name="compose_save"),
    path("send/", compose.compose_send, name="compose_send"),
    path("addresses/", addresses.compose_addresses, name="compose_addresses"),
    path("outbox/", outbox.compose_outbox, name="compose_outbox"),
    path("<int:pk>/", compose.compose_edit, name="compose_edit"),
    path("<int:pk>/status/", outbox.compose_status, name="compose_status"),
    path("<int:pk>/undo/", outbox.compose_undo, name="compose_undo"),
    path("<int:pk>/edit/", outbox.compose_edit_again, name="compose_edit_again"),
    path("<int:pk>/discard/", outbox.compose_discard, name="compose_discard"),
    path("<int:pk>/attachments/", attachments.compose_attach, name="compose_attach"),
    path(
        "<int:pk>/attachments/<int:attachment_id>/remove/",
        attachments.compose_attachment_remove,
        name="compose_attachment_remove",
    ),
]
