"""A call arrives: attribution, enrichment, blocklist, duplicates, IVR, then routing."""

from __future__ import annotations

import random
from datetime import datetime

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.bidding.auction import PricedBid
from chalicelib.callflow.offers import MAX_SIMULTANEOUS
from chalicelib.callflow.state import RoutingState
from chalicelib.campaigns import CampaignConfig, load_campaign
from chalicelib.clock import utcnow
from chalicelib.dni.sessions import attribution_for_call
from chalicelib.edge import phones
from chalicelib.observability import bind_call, logger
from chalicelib.phone import parse_e164
from chalicelib.routing import CallFacts, Ineligible, route_call
from chalicelib.routing.callers import call_facts, caller_tags
from chalicelib.rtb.ringtree import read_state, run_ring_tree
from chalicelib.store import calls, keys, numbers, reservations, routing_steps
from chalicelib.store import rtb as rtb_store
from chalicelib.store.models import CallItem
from chalicelib.store.transactions import Refused
from chalicelib.voice import ivr, twiml
from chalicelib.voice.dialing import AlreadyHandled, Arrival, advance, fallback_twiml
from chalicelib.voice.params import VoiceParams


def answer_inbound(form: dict[str, str]) -> VoiceResponse | str:
    params = VoiceParams.model_validate(form)
    route = numbers.route_for_number(params.to)
    if route is None:
        logger.info("call to an unknown number", extra={"to": params.to})
        return twiml.say_and_hang_up(twiml.NOT_IN_SERVICE)
    bind_call(call_sid=params.call_sid, account_id=route.account_id)
    now = utcnow()
    tags = caller_tags(
        params.from_,
        {
            "from_city": params.from_city,
            "from_state": params.from_state,
            "from_zip": params.from_zip,
            "from_country": params.from_country,
        },
    )
    if route.pool_id:
        tags = {**_visitor_of(route.account_id, route.pool_id, params.to, now), **tags}
    new = calls.NewCall(
        call_sid=params.call_sid,
        account_id=route.account_id,
        direction="inbound",
        from_number=params.from_,
        to_number=params.to,
        status=params.call_status,
        tags=tags,
    )
    if route.campaign_id is None:
        # A number not (yet) in a campaign answers with its greeting.
        if not calls.record_new_call(new, at=now):
            logger.info("repeated inbound webhook; call record kept as it was")
        return twiml.say_and_hang_up(route.greeting or twiml.DEFAULT_GREETING)
    item = calls.new_call_item(new, now)
    item.campaign_id = route.campaign_id
    item.publisher_id = route.publisher_id
    item.source = route.source
    try:
        return _route_new_call(params, route.campaign_id, item, now)
    except AlreadyHandled:
        return replay(params.call_sid)
    except Exception:  # noqa: BLE001 - the caller still gets the campaign's fallback
        logger.exception("routing failed; sending the call to the fallback")
        return _fallback_after_error(item)


def _visitor_of(account_id: str, pool_id: str, number: str, now: datetime) -> dict[str, str]:
    """The web visit a pool number's call comes from (DNI), as call tags; {} if unknown."""
    try:
        return attribution_for_call(account_id, pool_id, number, now) or {}
    except Exception:  # noqa: BLE001 - attribution is worth less than answering the call
        logger.exception("DNI attribution failed; the call is routed without it")
        return {}


def _fallback_after_error(item: CallItem) -> VoiceResponse | str:
    """Keep the call on record if the store allows it, and send it to the fallback."""
    config = None
    try:
        config = load_campaign(item.account_id, item.campaign_id or "")
        return _record_only(
            item, config, RoutingState(fallback=True), "error", fallback_twiml(config)
        )
    except Exception:  # noqa: BLE001 - nothing more can be saved; the caller still hears it
        logger.exception("could not record the call after a routing failure")
        return fallback_twiml(config)


def fallback_for(form: dict[str, str]) -> VoiceResponse:
    """The CPaaS's fallback URL: the dialled campaign's fallback, from cached configuration.

    Called when our primary webhook failed, so it reads as little as it can and gives up
    on the generic message at the first problem.
    """
    try:
        route = numbers.route_for_number(parse_e164(form.get("To", "")))
        config = (
            load_campaign(route.account_id, route.campaign_id)
            if route and route.campaign_id
            else None
        )
    except Exception:  # noqa: BLE001 - the fallback of the fallback is the polite message
        logger.exception("fallback could not load the campaign")
        config = None
    return fallback_twiml(config)


def replay(call_sid: str) -> VoiceResponse | str:
    """A retried or late webhook gets the answer the call's current step gave."""
    item = calls.call_by_sid(call_sid)
    if item is None:
        return twiml.fallback()
    logger.info("repeated webhook; replaying the answer already given")
    return RoutingState.from_json(item.routing).twiml or twiml.fallback()


def _route_new_call(
    params: VoiceParams, campaign_id: str, item: CallItem, now: datetime
) -> VoiceResponse | str:
    config = load_campaign(item.account_id, campaign_id)
    if config is None or not config.active:
        reason = "campaign_missing" if config is None else "campaign_paused"
        return _record_only(
            item, config, RoutingState(fallback=True), reason, fallback_twiml(config)
        )
    if config.settings.blocks(params.from_):
        response = VoiceResponse()
        response.reject(reason="rejected")
        item.status = "blocked"
        return _record_only(item, config, RoutingState(), "blocked", response)
    window = config.settings.duplicates.window_days
    tree = config.settings.ivr
    if tree:
        state = RoutingState(ivr_node=tree.start)
        response = ivr.prompt(tree, tree.start, tries=0)
        state.twiml = str(response)
        _record_arrival(item, config, state, window, now)
        return response
    reads = None
    if config.bidders:
        reads = read_state(config, item.call_sid, item.to_number, item.from_number, now)
        if reads.call_exists:
            # A retried webhook: answer as before, without pinging every buyer again.
            raise AlreadyHandled(item.call_sid)
    state = plan_for(config, item, now, reads)
    return advance(config, item, state, at=now, arrival=Arrival(item, window))


def plan_for(
    config: CampaignConfig,
    item: CallItem,
    now: datetime,
    reads: rtb_store.RingTreeReads | None = None,
) -> RoutingState:
    """The ordered targets to try for this call (eligibility + strategy), as a routing state;
    a ring tree's bids first. `reads`: the ring tree's reads, when the caller made them."""
    strategy = config.settings.strategy
    rotation = _next_rotation(config) if strategy == "round_robin" else 0
    attempts = config.settings.max_attempts
    facts = call_facts(item.from_number, calls.tags_of(item), now)
    targets, offline = config.targets, set[str]()
    if config.edge_phones:
        offline = phones.offline_targets(config.account_id, config.edge_phones, now)
        targets = tuple(t for t in targets if t.target_id not in offline)
    decision = route_call(
        targets,
        facts,
        strategy,
        # Seeded by the call, so a retried webhook would draw the same order.
        rng=random.Random(item.call_sid),  # noqa: S311 - load spreading, not security
        rotation=rotation,
        limit=attempts * (MAX_SIMULTANEOUS if strategy == "simultaneous" else 1),
    )
    state = RoutingState(
        plan=[t.target_id for t in decision.attempts],
        excluded={**dict.fromkeys(sorted(offline), Ineligible.PHONE_OFFLINE), **decision.excluded},
    )
    if config.bidders:
        if reads is None:
            reads = read_state(config, None, item.to_number, item.from_number, now)
        _put_bids_first(config, item, facts, state, attempts, reads)
    return state


def _put_bids_first(
    config: CampaignConfig,
    item: CallItem,
    facts: CallFacts,
    state: RoutingState,
    attempts: int,
    reads: rtb_store.RingTreeReads,
) -> None:
    """The ring tree's valid bids, best first, go before the static targets: the call's own
    auction, or the bid a publisher's ping got for this caller and number (held bid)."""
    held = _usable_held_bid(config, item, facts.at, reads.held)
    if held is not None:
        bids = {bid["target_id"]: PricedBid.from_json(bid) for bid in held.bids}
        state.held_bid = held.bid_id
    else:
        try:
            tree = run_ring_tree(
                config,
                facts,
                reads.counts,
                call_id=item.call_sid,
                publisher_id=item.publisher_id,
                call_sid=item.call_sid,
            )
        except Exception:  # noqa: BLE001 - the static targets still take the call
            logger.exception("ring tree failed; routing to the static targets")
            state.excluded["ring_tree"] = "auction failed"
            return
        if tree is None:
            return
        bids = tree.bids
        state.auction_id = tree.auction_id
        state.excluded.update(tree.excluded)
    # Reroute goes down the bids; each one is a <Dial> of its own, like a static attempt.
    ranked = [target_id for target_id in bids if config.owner_ids(target_id)][:attempts]
    state.bids = {target_id: bids[target_id] for target_id in ranked}
    state.plan = ranked + state.plan


def _usable_held_bid(
    config: CampaignConfig, item: CallItem, at: datetime, held: rtb_store.HeldBid | None
) -> rtb_store.HeldBid | None:
    """The caller's held bid on this number if it is for this campaign and still live (it is
    then marked used by this call), else None."""
    if held is None or (held.account_id, held.campaign_id) != (
        config.account_id,
        config.campaign_id,
    ):
        return None
    if held.used_by == item.call_sid:
        return held  # this call already took it (a webhook retried after the IVR, say)
    if held.live(at) and rtb_store.use_held_bid(held, item.call_sid, at):
        logger.info("call routed at a held bid", extra={"bid_id": held.bid_id})
        return held
    return None


def _next_rotation(config: CampaignConfig) -> int:
    return reservations.next_in_rotation(
        keys.counter_pk(config.account_id, "CAMP", config.campaign_id)
    )


def _record_only(
    item: CallItem,
    config: CampaignConfig | None,
    state: RoutingState,
    outcome: str,
    response: VoiceResponse,
) -> VoiceResponse | str:
    state.twiml = str(response)
    item.tags = {**calls.tags_of(item), "outcome": outcome}
    # A blocked or unrouted call does not open a duplicate window for the caller.
    _record_arrival(item, config, state, 0, item.started_at)
    return response


def _record_arrival(
    item: CallItem,
    config: CampaignConfig | None,
    state: RoutingState,
    window_days: int,
    now: datetime,
) -> None:
    """Write the call record (once) and, with a duplicate window, mark repeat callers."""
    item.routing = state.to_json()
    item.attempt, item.step = state.attempt, 1
    check = window_days > 0 and config is not None and item.from_number.startswith("+")
    duplicate = (
        routing_steps.DuplicateCheck(config.campaign_id, window_days, bool(item.duplicate))
        if check and config is not None
        else None
    )
    try:
        routing_steps.record_arrival(item, duplicate, now)
    except Refused as refusal:
        raise AlreadyHandled(item.call_sid) from refusal
