"""Chalice app: create it, wire middleware and register the blueprints. Nothing else."""

import gc

# A cold start allocates a few hundred thousand long-lived objects (modules, classes,
# validators) and frees almost nothing; the collector's passes over them while importing
# are ≈10 % of the import. It is off until the app is built, then what the import made is
# frozen (never scanned again, so warm requests' collections stay small) and it is back on.
gc.disable()

from chalice.app import Chalice

from chalicelib.api import (
    accounts,
    auth_routes,
    bids,
    calls,
    catalog,
    dni,
    edge,
    meta,
    numbers,
    pools,
    publishers,
    reports,
    rtb,
    sip_edges,
)
from chalicelib.config import get_settings
from chalicelib.observability import http_middleware
from chalicelib.store.tables import configure
from chalicelib.voice import replay, sweep
from chalicelib.voice import routes as voice_routes

app = Chalice(app_name="ppc-platform")
configure(get_settings())
app.register_middleware(http_middleware, "http")

app.register_blueprint(meta.bp)
app.register_blueprint(voice_routes.bp, url_prefix="/voice")
for api_blueprint in (
    auth_routes.bp,
    accounts.bp,
    publishers.bp,
    numbers.bp,
    calls.bp,
    bids.bp,
    catalog.bp,
    pools.bp,
    reports.bp,
    sip_edges.bp,
):
    app.register_blueprint(api_blueprint, url_prefix="/api/v1")
app.register_blueprint(rtb.bp, url_prefix="/rtb/v1")
app.register_blueprint(dni.bp, url_prefix="/dni/v1")
app.register_blueprint(dni.script_bp)
app.register_blueprint(edge.bp, url_prefix="/edge/v1")
app.register_blueprint(sweep.bp)
app.register_blueprint(replay.bp)
gc.freeze()
gc.enable()
