"""The SIP edge runner of tools/sipedge.py for tests: a missing kamailio or sipp fails the test
under CI and skips it elsewhere (tests/support), naming the package to install."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.support import system_tool
from tools import sipedge
from tools.sipedge import DOMAIN, EDGE, ROOT, free_port, ha1, render, wait_for

__all__ = ["DOMAIN", "EDGE", "ROOT", "Edge", "free_port", "ha1", "render", "sipp", "wait_for"]


def _tools() -> None:
    system_tool("kamailio", "kamailio")
    system_tool("sipp", "sip-tester")


class Edge(sipedge.Edge):
    def start(self, agent: bool = True) -> Edge:
        _tools()
        super().start(agent)
        return self


def sipp(
    folder: Path,
    edge_port: int,
    scenario: str,
    final: int | None = None,
    *extra: str,
    **options: Any,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    _tools()
    return sipedge.sipp(folder, edge_port, scenario, final, *extra, **options)
