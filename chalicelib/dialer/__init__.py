"""Outbound dialing: leads, pacing, retries, calling windows, DNC and click-to-call."""
