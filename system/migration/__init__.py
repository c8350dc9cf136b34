"""The migration service: a profiles API moving from pg-old (schema v1) to pg-new (schema v2)
through five guarded phases, with a resumable sync job and a verifier (docs/migration.md)."""
