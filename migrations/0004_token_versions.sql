-- Cut-offs by version, not by clock: every access token carries its user's token version
-- (claim `ver`), and a cut-off (log out everywhere, a password change, a disable, a scope
-- removed) raises it, refusing every token below. No clock of any host decides what a
-- cut-off catches, and no token is dated ahead of time.
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 0;
-- The version in the pair issued with a session's current refresh token (a retry reissues it).
ALTER TABLE sessions ADD COLUMN rotated_version bigint;
-- Tokens from before versions carry none (version 0): a user cut off lately refuses them all.
UPDATE users SET token_version = 1 WHERE tokens_valid_after > now() - interval '1 day';
-- The revocation state rebuilt from here reads the users cut off lately.
CREATE INDEX users_cut_off_idx ON users (tokens_valid_after) WHERE tokens_valid_after IS NOT NULL;
