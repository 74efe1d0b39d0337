#!/bin/sh
# Entrypoint of the SIP edge image: renders the Kamailio configuration from the environment
# (edge_sip/render.py refuses missing or invalid values, naming them) and runs Kamailio in the
# foreground (no init system in the container).
#
# Environment (defaults in the Dockerfile):
#   SIP_DOMAIN          SIP domain / digest realm the phones register to (required)
#   SIP_LISTEN          comma-separated udp:IP:PORT, tcp:IP:PORT, tls:IP:PORT listeners
#   APP_URL             base URL of the app; registrations go to APP_URL/edge/v1/registrations (required)
#   EDGE_SHARED_SECRET  sent as X-Edge-Secret with every report to the app (required)
#   CPAAS_ALLOW         comma-separated CIDRs the CPaaS sends INVITEs from (required)
#   TLS_CERT            PEM certificate path; with TLS_KEY enables the tls: listeners
#   TLS_KEY             PEM private key path
#   MIN_EXPIRES         shortest registration accepted, seconds
#   MAX_EXPIRES         longest registration granted, seconds
#   RPC_PORT            loopback port of JSON-RPC over HTTP (ul.dump, htable.sets)
#   SIP_CREDENTIALS     initial credentials, comma-separated EXTENSION:HA1 (optional)
set -eu

out=/run/edge
config=$(python3 /opt/edge/render.py --template /opt/edge/kamailio.cfg.tmpl --out "$out")
exec kamailio -DD -E -f "$config"
