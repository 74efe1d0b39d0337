"""Bidding: bidders' wire format, the auction among their bids, and the ping client."""
