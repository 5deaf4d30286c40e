-- Webhooks: an organization's callback URLs and the events each wants (secrets sealed), and
-- every delivery attempt (the delivery log; the event is kept for redelivery). Deliveries are
-- jobs of the durable outbox.

CREATE TABLE webhooks (
    id                      BLOB    PRIMARY KEY NOT NULL,
    org_id                  BLOB    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url                     TEXT    NOT NULL,
    events                  TEXT    NOT NULL, -- space-separated event types
    secret_sealed           TEXT    NOT NULL,
    previous_secret_sealed  TEXT,
    previous_until          INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   BLOB    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    payload      TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
