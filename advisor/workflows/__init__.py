"""The library entry points that hand plans and data to the engine (run, search, use...)."""
