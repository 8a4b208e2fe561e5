-- A retried refresh gets the very same successor pair: the scope of the access token issued
-- with the current refresh token is kept (its ids and times are derived or already here).
ALTER TABLE sessions ADD COLUMN rotated_scope text;

-- The scopes of `a` that `b` also has, in `a`'s order; all of `a` when `b` is NULL.
CREATE FUNCTION scope_intersect(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_string(ARRAY(
        SELECT t FROM unnest(string_to_array(a, ' ')) WITH ORDINALITY AS x(t, i)
        WHERE t <> '' AND (b IS NULL OR t = ANY (string_to_array(b, ' ')))
        ORDER BY i
    ), ' ')
$$;
