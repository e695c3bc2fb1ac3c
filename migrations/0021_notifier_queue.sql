-- certward-notifier's delivery queue (docs/notifications.md, "Delivery").
--
-- A notifier claims a due delivery by pushing next_retry_at past its lease
-- and writing a token of its own into lease_token; the outcome it reports
-- counts only while the token is still there, so a notifier that lost its
-- lease (it stalled past it, another took the delivery) changes nothing.
-- A delivery held for a digest (digest true) is never claimed itself: the
-- digest that carries it names it in digest_id, and it is sent when that
-- digest is.
ALTER TABLE notifications
	ADD COLUMN lease_token text CHECK (char_length(lease_token) <= 64),
	ADD COLUMN digest_id text REFERENCES notifications (id) ON DELETE SET NULL;
CREATE INDEX notifications_digest_held ON notifications (channel_id, created_at)
	WHERE digest AND digest_id IS NULL AND status = 'pending';
CREATE INDEX notifications_digest_id ON notifications (digest_id) WHERE digest_id IS NOT NULL;

-- severities in order, for rules' min_severity
CREATE FUNCTION cw_severity_rank(p_severity text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_severity WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 END
$$;

-- text made safe for HTML element content and attribute values (the digest)
CREATE FUNCTION cw_html(p text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT replace(replace(replace(replace(replace(p, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
		'"', '&quot;'), '''', '&#39;')
$$;
