"""Real-time bidding on calls: a campaign's ring tree on a call, and ping before post."""
