"""Master-data proposals as an admin reads them: what gateways' statuses described otherwise
than master data (cloud/service_layer/gateway_status.py), newest first."""

from __future__ import annotations

from sqlalchemy import Select, select

from cloud.adapters.orm.readings import MasterDataProposal
from cloud.views.pages import where_given


def proposals(state: str | None, gateway_id: str | None) -> Select[MasterDataProposal]:
    """Proposals in `state` (any if None), of one gateway or all, last seen first."""
    table = MasterDataProposal
    query = where_given(select(table), table, state=state, gateway_id=gateway_id)
    return query.order_by(table.last_seen_at.desc(), table.id.desc())
