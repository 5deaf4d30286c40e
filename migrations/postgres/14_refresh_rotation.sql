-- A refresh token rotated in one statement: the successor is inserted with the token it
-- replaces (`rotated_from`), selected only while that token is unused and unexpired, and this
-- trigger spends the parent in the same statement. If the parent was spent meanwhile (by a
-- concurrent rotation, which the row lock makes wait) the statement fails with SQLSTATE GU001,
-- so one token never has two successors.
ALTER TABLE refresh_tokens ADD COLUMN rotated_from TEXT;

CREATE FUNCTION refresh_tokens_spend_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.created_at, replaced_by = NEW.token_hash
    WHERE token_hash = NEW.rotated_from AND used_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh token already rotated' USING ERRCODE = 'GU001';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER refresh_tokens_rotate AFTER INSERT ON refresh_tokens
FOR EACH ROW WHEN (NEW.rotated_from IS NOT NULL)
EXECUTE FUNCTION refresh_tokens_spend_parent();
