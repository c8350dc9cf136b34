"""lab/commands."""
