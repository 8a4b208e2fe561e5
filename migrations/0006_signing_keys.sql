-- Signing keys with ids, shared by every host of a deployment. A key is `next` (published,
-- not signing yet), `current` (signing) or `retired` (accepted until every token it signed
-- has expired), then deleted. The private half is encrypted (AES-256-GCM, key derived from
-- JWT_SECRET); `material` is NULL only for the legacy key, JWT_SECRET itself, which verifies
-- the tokens issued before keys had ids until they have expired.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    state text NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    material bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at timestamptz,
    CHECK (material IS NOT NULL OR (kid = '' AND state = 'retired'))
);
-- At most one key signs and at most one waits: the rotation's compare-and-set relies on it.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
-- The key that signed a rotation's pair, so that a retry reissues the same bytes after a
-- rotation of the keys too.
ALTER TABLE sessions ADD COLUMN rotated_kid text;
