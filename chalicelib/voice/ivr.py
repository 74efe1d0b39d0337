"""IVR qualification: prompts from the campaign's tree; answers become call tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Gather, VoiceResponse

from chalicelib.voice.signature import absolute_url

RETRY_PREFIX = "Sorry, I did not get that."


@dataclass(frozen=True)
class Answer:
    """What the caller's input means at one node: the tag value (None: not understood)."""

    value: str | None
    next_node: str | None


def prompt(tree: dict[str, Any], node_name: str, tries: int) -> VoiceResponse:
    node = tree["nodes"][node_name]
    options: dict[str, Any] = {
        "input": node.get("input", "dtmf"),
        "action": absolute_url(f"/voice/ivr/{node_name}/{tries}"),
        "method": "POST",
        "timeout": int(node.get("timeout_seconds", 5)),
        "action_on_empty_result": True,
        "language": tree.get("language", "en-US"),
    }
    digits = node.get("num_digits") or _choice_width(node)
    if digits:
        options["num_digits"] = digits
    gather = Gather(**options)
    text = node["prompt"] if tries == 0 else f"{RETRY_PREFIX} {node['prompt']}"
    gather.say(text, voice=tree.get("voice"), language=tree.get("language", "en-US"))
    response = VoiceResponse()
    response.append(gather)
    return response


def _choice_width(node: dict[str, Any]) -> int | None:
    widths = {len(c["digits"]) for c in node.get("choices", []) if c.get("digits")}
    return widths.pop() if len(widths) == 1 else None


def interpret(node: dict[str, Any], digits: str, speech: str) -> Answer:
    """Match keys pressed or words said against the node's choices (or take free input)."""
    choices = node.get("choices", [])
    said = speech.strip().lower()
    for choice in choices:
        if digits and choice.get("digits") == digits:
            return Answer(choice["value"], choice.get("next") or node.get("next"))
        words = [w.lower() for w in choice.get("speech", [])]
        if said and any(w in said for w in words):
            return Answer(choice["value"], choice.get("next") or node.get("next"))
    if not choices and (digits or said):
        return Answer(digits or said, node.get("next"))
    return Answer(None, None)


def after_no_match(node: dict[str, Any], tries: int) -> Answer | None:
    """None to ask again; otherwise the default branch (or move on without a tag)."""
    if tries < int(node.get("retries", 2)):
        return None
    default = node.get("default")
    if default:
        return Answer(default["value"], default.get("next") or node.get("next"))
    return Answer(None, node.get("next"))
