"""The global chat service: WebSocket chat servers per region (``python -m system.chat``),
their storage, delivery and presence, and an asyncio client library (``client.py``)."""
