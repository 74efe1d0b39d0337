"""Parse and validate voice TwiML documents into an immutable node tree."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.callsim.transcript import Transcript

SUPPORTED_VERBS = frozenset(
    {
        "Say",
        "Play",
        "Pause",
        "Gather",
        "Dial",
        "Record",
        "Redirect",
        "Hangup",
        "Reject",
        "Enqueue",
        "Leave",
    }
)
# Real Twilio verbs this simulator does not model: reported differently from typos.
UNSUPPORTED_VERBS = frozenset(
    {"Connect", "Start", "Stop", "Refer", "Pay", "Echo", "Sms", "Message", "Prompt"}
)
SUPPORTED_NOUNS = frozenset({"Number", "Sip", "Client", "Queue"})
UNSUPPORTED_NOUNS = frozenset({"Conference", "Sim", "Application", "WhatsApp"})
MAX_DIAL_NOUNS = 10
_SSML = frozenset(
    {
        "break",
        "emphasis",
        "lang",
        "p",
        "phoneme",
        "prosody",
        "s",
        "say-as",
        "sub",
        "w",
        "amazon:effect",
    }
)
_GATHER_CHILDREN = frozenset({"Say", "Play", "Pause"})
_CLIENT_CHILDREN = frozenset({"Identity", "Parameter"})
_SIP_CHILDREN = frozenset({"Parameter"})
_NO_CHILDREN = frozenset({"Play", "Pause", "Record", "Redirect", "Hangup", "Reject", "Leave"})
_DTMF_KEYS = frozenset("0123456789*#")


class TwimlError(Exception):
    """The app returned TwiML the CPaaS cannot execute; names the offending element.

    `transcript` is the (finished) call transcript when raised from `place_call`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.transcript: Transcript | None = None


class LoopError(TwimlError):
    """The call fetched more TwiML documents than the loop guard allows."""


@dataclass(frozen=True)
class Node:
    """One TwiML element: tag, attributes, text and children, with a locating path."""

    tag: str
    attrs: Mapping[str, str]
    text: str  # all text inside, SSML-wrapped words included, whitespace-normalised
    own_text: str  # text directly inside this element, not inside its children
    children: tuple[Node, ...]
    path: str

    def where(self) -> str:
        return f"<{self.tag}> at {self.path}"


@dataclass(frozen=True)
class Document:
    """A parsed <Response>, remembering the (public) URL it was fetched from."""

    url: str
    verbs: tuple[Node, ...]


def parse_document(body: str, url: str) -> Document:
    """Parse and validate a TwiML body; raise TwimlError naming the offending element."""
    if "<!DOCTYPE" in body or "<!ENTITY" in body:
        # No DTDs in TwiML; refusing them also keeps entity-expansion bombs out of expat.
        raise TwimlError(f"DOCTYPE/ENTITY declarations are not allowed in TwiML (from {url})")
    try:
        root = ET.fromstring(body.strip())  # noqa: S314 - DTDs are refused above
    except ET.ParseError as exc:
        raise TwimlError(f"malformed XML from {url}: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, expected <Response> (from {url})")
    verbs = tuple(_node(child, f"/Response[{i}]") for i, child in enumerate(root, start=1))
    for verb in verbs:
        _validate_verb(verb)
    return Document(url=url, verbs=verbs)


def _node(elem: ET.Element, path: str) -> Node:
    tag = str(elem.tag)
    children = tuple(_node(child, f"{path}/{tag}[{i}]") for i, child in enumerate(elem, start=1))
    # itertext() keeps SSML-wrapped words (<Say>Hi <emphasis>there</emphasis></Say>).
    text = " ".join(" ".join(elem.itertext()).split())
    own = " ".join(" ".join([elem.text or "", *(child.tail or "" for child in elem)]).split())
    return Node(
        tag=tag, attrs=dict(elem.attrib), text=text, own_text=own, children=children, path=path
    )


def _validate_verb(verb: Node) -> None:
    if verb.tag in UNSUPPORTED_VERBS:
        raise TwimlError(f"unsupported verb {verb.where()} (not simulated)")
    if verb.tag not in SUPPORTED_VERBS:
        raise TwimlError(f"unknown verb {verb.where()}")
    if verb.tag in _NO_CHILDREN:
        _only_children(verb, frozenset())
    elif verb.tag == "Say":
        _validate_say(verb)
    elif verb.tag == "Gather":
        _only_children(verb, _GATHER_CHILDREN)
        for child in verb.children:
            if child.tag == "Say":
                _validate_say(child)
            else:
                _only_children(child, frozenset())
    elif verb.tag == "Dial":
        _validate_dial(verb)
    elif verb.tag == "Enqueue":
        _only_children(verb, frozenset({"Task"}))
        if not verb.text:
            raise TwimlError(f"<Enqueue> needs a queue name at {verb.path}")


def _validate_say(say: Node) -> None:
    for child in say.children:
        if child.tag not in _SSML:
            raise TwimlError(f"<{child.tag}> is not allowed inside <Say> at {child.path}")
        _validate_say(child)


def _only_children(node: Node, allowed: frozenset[str]) -> None:
    for child in node.children:
        if child.tag not in allowed:
            raise TwimlError(
                f"<{child.tag}> is not allowed inside {node.where()} (at {child.path})"
            )


def _validate_dial(dial: Node) -> None:
    for noun in dial.children:
        if noun.tag in UNSUPPORTED_NOUNS:
            raise TwimlError(
                f"unsupported noun <{noun.tag}> in <Dial> at {noun.path} (not simulated)"
            )
        if noun.tag not in SUPPORTED_NOUNS:
            raise TwimlError(f"unknown noun <{noun.tag}> in <Dial> at {noun.path}")
        if noun.tag == "Client":
            _only_children(noun, _CLIENT_CHILDREN)
        elif noun.tag == "Sip":
            _only_children(noun, _SIP_CHILDREN)
            if not noun.text.lower().startswith(("sip:", "sips:")):
                raise TwimlError(f"<Sip> needs a sip: URI at {noun.path}, got {noun.text!r}")
        else:
            _only_children(noun, frozenset())
        if not noun_target(noun):
            raise TwimlError(f"empty <{noun.tag}> in <Dial> at {noun.path}")
    if dial.children and dial.own_text:
        raise TwimlError(f"<Dial> mixes a bare number with nouns at {dial.path}")
    if not dial.children and not dial.text:
        raise TwimlError(f"<Dial> has nothing to dial at {dial.path}")
    if len(dial.children) > MAX_DIAL_NOUNS:
        raise TwimlError(
            f"<Dial> at {dial.path} has {len(dial.children)} nouns; "
            f"at most {MAX_DIAL_NOUNS} allowed"
        )


def noun_target(noun: Node) -> str:
    """What a <Dial> noun rings: number, SIP URI, client identity or queue name."""
    if noun.tag == "Client":
        identity = [c.text for c in noun.children if c.tag == "Identity"]
        # <Parameter> children carry no text, so the identity is the element's own text.
        return identity[0] if identity else noun.own_text
    return noun.own_text


def attr_str(node: Node, name: str, default: str = "") -> str:
    return node.attrs.get(name, default).strip()


def attr_int(node: Node, name: str, default: int, minimum: int = 0) -> int:
    raw = node.attrs.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not re.fullmatch(r"\s*-?\d+\s*", raw):
        raise TwimlError(f"invalid {name}={raw!r} on {node.where()}")
    value = int(raw)
    if value < minimum:
        raise TwimlError(f"invalid {name}={raw!r} on {node.where()} (minimum {minimum})")
    return value


def attr_float(node: Node, name: str, default: float, minimum: float = 0.0) -> float:
    raw = node.attrs.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TwimlError(f"invalid {name}={raw!r} on {node.where()}") from None
    if value < minimum:
        raise TwimlError(f"invalid {name}={raw!r} on {node.where()} (minimum {minimum})")
    return value


def attr_bool(node: Node, name: str, default: bool) -> bool:
    raw = node.attrs.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"true", "false"}:
        return value == "true"
    raise TwimlError(f"invalid {name}={raw!r} on {node.where()} (true or false)")


def attr_choice(node: Node, name: str, default: str, choices: frozenset[str]) -> str:
    value = node.attrs.get(name, default).strip() or default
    if value not in choices:
        raise TwimlError(
            f"invalid {name}={value!r} on {node.where()} (one of {', '.join(sorted(choices))})"
        )
    return value


def attr_method(node: Node, name: str = "method") -> str:
    return attr_choice(node, name, "POST", frozenset({"GET", "POST"}))


def attr_keys(node: Node, name: str, default: str) -> str:
    value = node.attrs.get(name, default)
    bad = [k for k in value if k not in _DTMF_KEYS]
    if bad:
        raise TwimlError(f"invalid {name}={value!r} on {node.where()}")
    return value
