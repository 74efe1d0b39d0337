"""Pure routing decisions: eligibility (schedule, geo, caps), strategies, fall-through."""
