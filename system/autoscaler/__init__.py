"""The autoscaler: adds and removes chat replicas a region from the load a replica carries,
through the lab's runtime (``python -m system.autoscaler``)."""
