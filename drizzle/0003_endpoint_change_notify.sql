-- Workers cache endpoint rows (src/worker/endpointCache.ts). Each change to what a delivery reads
-- from the row, and each deletion, is announced on the channel hookfleet_endpoint_changed with
-- the endpoint id as payload, so workers drop their copy at once instead of re-reading every row
-- they use every HOOKFLEET_ENDPOINT_CACHE_MS. NOTIFY is sent at commit, in commit order.
-- The column list is what src/worker/deliveryProcessor.ts reads; the success recorder's UPDATE
-- names none of these columns, so it never fires the trigger (nor pays for it).
CREATE FUNCTION "hookfleet_notify_endpoint_changed"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hookfleet_endpoint_changed', OLD.id);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "endpoints_notify_changed"
AFTER UPDATE OF "url", "secret", "previous_secret", "previous_secret_expires_at", "active", "deactivation_reason"
ON "endpoints" FOR EACH ROW EXECUTE FUNCTION "hookfleet_notify_endpoint_changed"();
--> statement-breakpoint
CREATE TRIGGER "endpoints_notify_deleted"
AFTER DELETE ON "endpoints" FOR EACH ROW EXECUTE FUNCTION "hookfleet_notify_endpoint_changed"();
