"""The router: health-checks every chat server, maps users to a home region, fails regions
over, and hands out routes with a TTL (``python -m system.router``)."""
