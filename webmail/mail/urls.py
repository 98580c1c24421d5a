"""URLs of reading mail: real, bookmarkable addresses for folders, messages and searches."""

from django.urls import path

from webmail.mail.views import actions, folders, images, mailbox, message

urlpatterns = [
    path("inboxes/", mailbox.inboxes, name="mail_inboxes"),
    path("folder/<int:folder_id>/", mailbox.folder, name="mail_folder"),
    path("folder/<int:folder_id>/notify/", folders.toggle_notify, name="mail_folder_notify"),
    path("search/", mailbox.search, name="mail_search"),
    path("message/<int:message_id>/", message.message_view, name="mail_message"),
    path("message/<int:message_id>/body/", message.message_body, name="mail_message_body"),
    path("message/<int:message_id>/remote/", message.allow_remote, name="mail_allow_remote"),
    path("message/<int:message_id>/read/", actions.mark_read, name="mail_mark_read"),
    path("message/<int:message_id>/part/<str:part_id>/", message.part, name="mail_part"),
    path("message/<int:message_id>/original/", message.original, name="mail_original"),
    path("message/<int:message_id>/original.eml", message.original_download, name="mail_original_download"),
    path("actions/", actions.act, name="mail_actions"),
    path("image/", images.image_proxy, name="mail_image_proxy"),
    path("inline/", images.inline_part, name="mail_inline_part"),
]
