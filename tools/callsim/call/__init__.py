"""The call's life: an inbound call's TwiML run verb by verb, its child legs and callbacks.

run.py drives the call; each verb family has its own module (verbs, record, dial, enqueue).
"""
