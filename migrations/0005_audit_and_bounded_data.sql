-- The audit trail: security events, newest first per user, purged after AUDIT_RETENTION days.
-- No token and no password is ever stored here.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,  -- NULL: a name no account has
    type        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    session_id  uuid,
    ip          text,
    user_agent  text,
    request_id  text,
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,  -- the administrator who acted
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_user_page_idx ON events (user_id, at DESC, id DESC);
-- The purge's: BRIN, since rows arrive in time order (a fraction of a B-tree's cost per insert).
CREATE INDEX events_at_idx ON events USING brin (at);

-- Pages of a user's sessions and notes, newest first.
CREATE INDEX sessions_user_page_idx ON sessions (user_id, created_at DESC, id DESC)
    WHERE revoked_at IS NULL;
DROP INDEX sessions_user_active_idx;
DROP INDEX notes_user_created_idx;
CREATE INDEX notes_user_page_idx ON notes (user_id, created_at DESC, id DESC);

-- The purge: a session can go once no token it issued can still be unexpired; its last
-- token was issued when it ended (or expired), whichever came first.
CREATE INDEX sessions_ended_idx ON sessions (least(coalesce(revoked_at, expires_at), expires_at));

-- Periodic jobs run by one worker of all hosts per interval: when each last ran.
CREATE TABLE maintenance (
    job      text PRIMARY KEY,
    last_run timestamptz NOT NULL
);
