-- Incident response (`revoke-all`): every access token issued before `not_before` is
-- refused, on every host; the row is read back when Redis loses its revocation state.
CREATE TABLE global_cut_off (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    not_before timestamptz NOT NULL
);
