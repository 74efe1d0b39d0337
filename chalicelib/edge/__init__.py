"""The SIP edge's side of the app: operators' SIP credentials and their phones' presence."""
