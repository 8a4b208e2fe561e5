-- A retried refresh gets the very same successor pair: the scope of the access token issued
-- with the current refresh token is kept (its ids and times are derived or already here).
ALTER TABLE sessions ADD COLUMN rotated_scope text;

-- The scopes of `a` that `b` also has, in `a`'s order; all of `a` when `b` is NULL. PL/pgSQL,
-- not SQL: it runs on every refresh, and a plan cached once beats a subquery planned per call.
CREATE FUNCTION scope_intersect(a text, b text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    scope text;
    kept text[] := '{}';
    allowed text[];
BEGIN
    IF b IS NULL OR a = b THEN
        RETURN a;
    END IF;
    allowed := string_to_array(b, ' ');
    FOREACH scope IN ARRAY string_to_array(a, ' ') LOOP
        IF scope <> '' AND scope = ANY (allowed) THEN
            kept := kept || scope;
        END IF;
    END LOOP;
    RETURN array_to_string(kept, ' ');
END
$$;
