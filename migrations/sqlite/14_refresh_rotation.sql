-- A refresh token rotated in one statement: the successor is inserted with the token it
-- replaces (`rotated_from`), selected only while that token is unused and unexpired, and this
-- trigger spends the parent in the same statement. If the parent was spent meanwhile (by a
-- concurrent rotation) the statement is aborted, so one token never has two successors.
ALTER TABLE refresh_tokens ADD COLUMN rotated_from TEXT;

CREATE TRIGGER refresh_tokens_rotate AFTER INSERT ON refresh_tokens
WHEN NEW.rotated_from IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.created_at, replaced_by = NEW.token_hash
    WHERE token_hash = NEW.rotated_from AND used_at IS NULL;
    SELECT RAISE(ABORT, 'refresh token already rotated')
    WHERE NOT EXISTS (
        SELECT 1 FROM refresh_tokens WHERE token_hash = NEW.rotated_from AND replaced_by = NEW.token_hash
    );
END;
