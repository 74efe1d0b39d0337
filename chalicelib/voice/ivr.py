"""IVR qualification: prompts from the campaign's tree; answers become call tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Gather, VoiceResponse

from chalicelib.campaigns.settings import Ivr, IvrChoice, IvrNode
from chalicelib.config import absolute_url

RETRY_PREFIX = "Sorry, I did not get that."


@dataclass(frozen=True)
class Answer:
    """What the caller's input means at one node: the tag value (None: not understood)."""

    value: str | None
    next_node: str | None


def prompt(tree: Ivr, node_name: str, tries: int) -> VoiceResponse:
    node = tree.nodes[node_name]
    options: dict[str, Any] = {
        "input": node.input,
        "action": absolute_url(f"/voice/ivr/{node_name}/{tries}"),
        "method": "POST",
        "timeout": node.timeout_seconds,
        "action_on_empty_result": True,
        "language": tree.language,
    }
    digits = node.num_digits or _choice_width(node)
    if digits:
        options["num_digits"] = digits
    gather = Gather(**options)
    text = node.prompt if tries == 0 else f"{RETRY_PREFIX} {node.prompt}"
    gather.say(text, voice=tree.voice, language=tree.language)
    response = VoiceResponse()
    response.append(gather)
    return response


def _choice_width(node: IvrNode) -> int | None:
    widths = {len(c.digits) for c in node.choices if c.digits}
    return widths.pop() if len(widths) == 1 else None


def _chosen(node: IvrNode, choice: IvrChoice) -> Answer:
    return Answer(choice.value, choice.next or node.next)


def interpret(node: IvrNode, digits: str, speech: str) -> Answer:
    """Match keys pressed or words said against the node's choices (or take free input)."""
    said = speech.strip().lower()
    for choice in node.choices:
        if digits and choice.digits == digits:
            return _chosen(node, choice)
        words = [w.lower() for w in choice.speech]
        if said and any(w in said for w in words):
            return _chosen(node, choice)
    if not node.choices and (digits or said):
        return Answer(digits or said, node.next)
    return Answer(None, None)


def after_no_match(node: IvrNode, tries: int) -> Answer | None:
    """None to ask again; otherwise the default branch (or move on without a tag)."""
    if tries < node.retries:
        return None
    if node.default:
        return _chosen(node, node.default)
    return Answer(None, node.next)
