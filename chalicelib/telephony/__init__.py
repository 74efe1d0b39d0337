"""The outbound CPaaS REST client interface (Twilio implementation and a fake for tests)."""
