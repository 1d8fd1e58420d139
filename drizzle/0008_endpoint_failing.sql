ALTER TABLE "endpoints" ADD COLUMN "failing_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "endpoints" ADD COLUMN "failing_warned_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "endpoints" ADD COLUMN "failing_disable_after_hours" integer;--> statement-breakpoint
CREATE INDEX "endpoints_failing_since_active_idx" ON "endpoints" USING btree ("failing_since") WHERE "endpoints"."active" and "endpoints"."failing_since" is not null;