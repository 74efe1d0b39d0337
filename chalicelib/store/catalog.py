"""Campaigns, buyers, targets and pools: the tenant's routing configuration."""

from __future__ import annotations

from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import utcnow
from chalicelib.store import keys
from chalicelib.store.cache import forget_configuration
from chalicelib.store.models import BuyerItem, CampaignItem, PoolItem, TargetItem
from chalicelib.store.tables import connection

Item = TypeVar("Item", CampaignItem, BuyerItem, TargetItem, PoolItem)

_SK_PREFIX = {CampaignItem: "CAMP#", BuyerItem: "BUY#", TargetItem: "TGT#", PoolItem: "POOL#"}
_ID_PREFIX = {CampaignItem: "cmp", BuyerItem: "buy", TargetItem: "tgt", PoolItem: "pool"}
_ID_FIELD = {
    CampaignItem: "campaign_id",
    BuyerItem: "buyer_id",
    TargetItem: "target_id",
    PoolItem: "pool_id",
}


def sort_key(model: type[Item], item_id: str) -> str:
    return _SK_PREFIX[model] + item_id


def new(model: type[Item], account_id: str, name: str, **fields: Any) -> Item:
    """A new item with a fresh id, not yet written."""
    item_id = keys.new_id(_ID_PREFIX[model])
    now = utcnow()
    attributes: dict[str, Any] = {
        "account_id": account_id,
        "name": name,
        "created_at": now,
        "updated_at": now,
        _ID_FIELD[model]: item_id,
        **fields,
    }
    return model(keys.account_pk(account_id), sort_key(model, item_id), **attributes)


def create(model: type[Item], account_id: str, name: str, **fields: Any) -> Item:
    item = new(model, account_id, name, **fields)
    item.save(condition=model.pk.does_not_exist())
    forget_configuration()
    return item


def get(model: type[Item], account_id: str, item_id: str) -> Item | None:
    """One item of this account; another tenant's id reads as missing."""
    try:
        return model.get(keys.account_pk(account_id), sort_key(model, item_id))
    except DoesNotExist:
        return None


def list_all(model: type[Item], account_id: str) -> list[Item]:
    return list(model.query(keys.account_pk(account_id), model.sk.startswith(_SK_PREFIX[model])))


def replace(item: Item, name: str, **fields: Any) -> Item:
    """Overwrite an existing item's editable fields (the item must still exist)."""
    item.name = name
    for field, value in fields.items():
        setattr(item, field, value)
    item.updated_at = utcnow()
    item.save(condition=type(item).pk.exists())
    forget_configuration()
    return item


def load_targets_and_buyers(
    account_id: str, target_ids: list[str], buyer_ids: list[str]
) -> tuple[dict[str, TargetItem], dict[str, BuyerItem]]:
    """A campaign's targets and their buyers in one BatchGetItem (plus retries of leftovers)."""
    pk = keys.account_pk(account_id)
    wanted = [{"pk": {"S": pk}, "sk": {"S": sort_key(TargetItem, t)}} for t in set(target_ids)]
    wanted += [{"pk": {"S": pk}, "sk": {"S": sort_key(BuyerItem, b)}} for b in set(buyer_ids)]
    targets: dict[str, TargetItem] = {}
    buyers: dict[str, BuyerItem] = {}
    table = TargetItem.Meta.table_name
    while wanted:
        page, wanted = wanted[:100], wanted[100:]
        reply = connection().batch_get_item(table, page)  # type: ignore[arg-type]
        for raw in reply.get("Responses", {}).get(table, []):
            sk = raw["sk"]["S"]
            if sk.startswith(_SK_PREFIX[TargetItem]):
                target = TargetItem.from_raw_data(raw)
                targets[target.target_id] = target
            elif sk.startswith(_SK_PREFIX[BuyerItem]):
                buyer = BuyerItem.from_raw_data(raw)
                buyers[buyer.buyer_id] = buyer
        wanted += reply.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    return targets, buyers
