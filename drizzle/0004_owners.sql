CREATE TABLE "portal_sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
DROP INDEX "endpoints_event_types_active_idx";--> statement-breakpoint
ALTER TABLE "endpoints" ADD COLUMN "owner_id" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "owner_id" text;--> statement-breakpoint
CREATE INDEX "portal_sessions_owner_idx" ON "portal_sessions" USING btree ("owner_id","expires_at");--> statement-breakpoint
CREATE INDEX "endpoints_owner_idx" ON "endpoints" USING btree ("owner_id","id") WHERE "endpoints"."owner_id" is not null;--> statement-breakpoint
CREATE INDEX "messages_owner_created_at_idx" ON "messages" USING btree ("owner_id","created_at") WHERE "messages"."owner_id" is not null;--> statement-breakpoint
CREATE INDEX "endpoints_event_types_active_idx" ON "endpoints" USING gin ("event_types") WHERE "endpoints"."active" and "endpoints"."owner_id" is null;