"""The SQL migrations, applied in name order; shipped inside the package as `app.migrations`."""
