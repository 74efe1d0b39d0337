"""A routed call's life as pure decisions: the next offer, dial results, settlement."""
