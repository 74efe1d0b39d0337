#!/bin/sh
# Entrypoint of the SIP edge image: renders the Kamailio configuration from the environment
# (edge_sip/render.py refuses missing or invalid values, naming them), starts the agent that
# loads the operators' credentials from the app and sends it registration snapshots (it waits
# for Kamailio's RPC port), and runs Kamailio in the foreground (no init system here).
#
# Environment (defaults in the Dockerfile):
#   SIP_DOMAIN          SIP domain / digest realm the phones register to (required)
#   SIP_LISTEN          comma-separated udp:IP:PORT, tcp:IP:PORT, tls:IP:PORT listeners
#   SIP_ADVERTISE       public IP or host name put in Via/Record-Route (behind Docker's NAT)
#   APP_URL             base URL of the app, https (http only on loopback) (required)
#   EDGE_SHARED_SECRET  sent as X-Edge-Secret with every report to the app (required)
#   CPAAS_ALLOW         comma-separated CIDRs the CPaaS sends INVITEs from (required)
#   TLS_CERT            PEM certificate path; with TLS_KEY enables the tls: listeners
#   TLS_KEY             PEM private key path
#   MIN_EXPIRES         shortest registration accepted, seconds
#   MAX_EXPIRES         longest registration granted, seconds
#   RPC_PORT            loopback port of JSON-RPC over HTTP (ul.dump, htable.sets)
#   CREDENTIALS_INTERVAL  seconds between the agent's pulls of APP_URL/edge/v1/credentials
#   PRESENCE_INTERVAL   seconds between the agent's ul.dump snapshots to the app
set -eu

out=/run/edge
config=$(python3 /opt/edge/render.py --template /opt/edge/kamailio.cfg.tmpl --out "$out")
# The agent, started again if it ever stops (it logs why).
(while :; do python3 /opt/edge/agent.py || true; sleep 2; done) &
exec kamailio -DD -E -f "$config"
