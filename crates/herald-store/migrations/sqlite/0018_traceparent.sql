-- The W3C trace context an event was accepted in (`traceparent`), so each attempt to deliver
-- it, in whatever process and however much later, continues that trace and hands it on to
-- the receiver.
ALTER TABLE events ADD COLUMN traceparent TEXT;
