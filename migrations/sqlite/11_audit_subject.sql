-- The audit log read per organization (subject org:<id>), newest first, by the admin API.
CREATE INDEX audit_events_subject ON audit_events (subject, id);
