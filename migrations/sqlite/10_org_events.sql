-- An organization's events (the ones its webhooks and the live stream carry), in order: `seq`
-- is the stream's event id (resume with Last-Event-ID). Written in the transaction of the
-- change's audit record; kept a week.

CREATE TABLE org_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT    NOT NULL,
    org_id   BLOB    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    type     TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    payload  TEXT    NOT NULL
);
CREATE INDEX org_events_org ON org_events (org_id, seq);
CREATE INDEX org_events_at ON org_events (at);
