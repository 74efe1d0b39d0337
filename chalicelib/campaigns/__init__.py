"""A stored campaign parsed once into frozen typed settings, with its targets and bidders."""

from chalicelib.campaigns.loader import (
    CampaignConfig,
    CapOwner,
    PublisherTerms,
    forget_cached_config,
    load_campaign,
    publisher_terms,
)

__all__ = [
    "CampaignConfig",
    "CapOwner",
    "PublisherTerms",
    "forget_cached_config",
    "load_campaign",
    "publisher_terms",
]
