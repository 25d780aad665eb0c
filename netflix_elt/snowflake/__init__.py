"""Snowflake: provisioning as code (``provision``), quoting (``sql``) and COPY INTO (``copy_into``)."""
