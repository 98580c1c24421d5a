"""Admin for mail accounts, identities, connection checks and the audit log (passwords never shown)."""

from django.contrib import admin

from accounts.models import AuditEvent, ConnectionCheck, Identity, MailAccount


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "email",
        "user",
        "incoming_protocol",
        "incoming_host",
        "state",
        "state_changed_at",
    ]
    list_filter = ["state", "incoming_protocol", "incoming_security"]
    search_fields = ["name", "email", "user__username", "incoming_host", "smtp_host"]
    exclude = ["incoming_password_token", "smtp_password_token"]
    readonly_fields = ["state", "state_reason", "state_changed_at", "created_at", "updated_at"]
    inlines = [IdentityInline]


@admin.register(ConnectionCheck)
class ConnectionCheckAdmin(admin.ModelAdmin):
    list_display = ["account", "requested_at", "finished_at"]
    search_fields = ["account__email"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "kind", "user", "ip"]
    list_filter = ["kind"]
    search_fields = ["user__username", "ip"]
    readonly_fields = ["at", "kind", "user", "ip", "detail"]
