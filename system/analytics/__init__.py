"""The analytics service (lambda architecture): a durable JetStream consumer counts every chat
event exactly once into per-second rollups (speed layer), a batch layer recomputes them from
the archived raw events, a serving layer merges both for the query API and the live
dashboard, and an alert fires when the error rate passes 5 % (docs/analytics.md)."""
