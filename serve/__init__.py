"""Ray Serve entry point: the recommendation service (`llara serve`)."""
