"""Parts shared by the chat servers and the routers: configuration, tokens, home regions,
circuit breakers, retries, mechanism events and metrics."""
