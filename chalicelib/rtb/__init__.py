"""Real-time bidding: ring trees, the bidder client and the publisher bid API (`/rtb/v1`)."""
