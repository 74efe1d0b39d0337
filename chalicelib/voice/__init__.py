"""CPaaS voice webhooks: signature check, parameter parsing, call handling and TwiML."""
