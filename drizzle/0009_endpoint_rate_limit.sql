ALTER TABLE "endpoints" ADD COLUMN "rate_limit_per_second" integer;
--> statement-breakpoint
-- Hand-written (drizzle cannot express triggers): workers cache endpoint rows, so a change of the
-- rate limit is announced like a change of the URL (0003_endpoint_change_notify.sql; the column
-- list of 0006_endpoint_settings.sql plus rate_limit_per_second).
DROP TRIGGER "endpoints_notify_changed" ON "endpoints";
--> statement-breakpoint
CREATE TRIGGER "endpoints_notify_changed"
AFTER UPDATE OF "url", "secret", "previous_secret", "previous_secret_expires_at", "active", "deactivation_reason", "payload_format", "headers", "retry_schedule_ms", "rate_limit_per_second"
ON "endpoints" FOR EACH ROW EXECUTE FUNCTION "hookfleet_notify_endpoint_changed"();
