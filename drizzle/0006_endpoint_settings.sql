ALTER TABLE "endpoints" ADD COLUMN "payload_format" text DEFAULT 'envelope' NOT NULL;--> statement-breakpoint
ALTER TABLE "endpoints" ADD COLUMN "headers" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "endpoints" ADD COLUMN "retry_schedule_ms" integer[];--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "envelope" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- Hand-written from here on (drizzle-kit cannot express it).
-- Endpoints that existed before the envelope keep receiving the bare payload their receivers
-- parse today; new endpoints get the envelope by the column default. Run before the trigger
-- below lists payload_format, so this update announces nothing.
UPDATE "endpoints" SET "payload_format" = 'raw';
--> statement-breakpoint
-- The workers' endpoint cache must hear of changes to the new columns a delivery reads too
-- (see 0003_endpoint_change_notify.sql).
DROP TRIGGER "endpoints_notify_changed" ON "endpoints";
--> statement-breakpoint
CREATE TRIGGER "endpoints_notify_changed"
AFTER UPDATE OF "url", "secret", "previous_secret", "previous_secret_expires_at", "active", "deactivation_reason", "payload_format", "headers", "retry_schedule_ms"
ON "endpoints" FOR EACH ROW EXECUTE FUNCTION "hookfleet_notify_endpoint_changed"();
