"""Tests of the SIP edge (edge_sip/): rendered Kamailio configuration, image, live SIP."""
