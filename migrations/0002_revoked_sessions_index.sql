-- Sessions ended recently, per user and overall: the access tokens they issued may still be
-- alive, so their revocation marks are rebuilt from here (a retried logout-all, a Redis that
-- came back empty).
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at, user_id) WHERE revoked_at IS NOT NULL;
