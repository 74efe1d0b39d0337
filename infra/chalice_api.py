"""Chalice's CDK construct, adapted: the Chalice stage name, fixed function names, no cycle."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chalice import api as chalice_api
from chalice.cdk import Chalice
from constructs import Construct

#: The SAM function that serves the REST API (Chalice's logical id).
API_HANDLER = "APIHandler"


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class ChaliceApi(Chalice):
    """`chalice.cdk.Chalice` with three changes.

    - The app is packaged for the Chalice stage given here (`dev`, `prod`), so the stage
      blocks of `.chalice/config.json` apply; the stock construct uses the scope's path.
    - Every function gets the fixed name given in `function_names` (logical id -> name);
      a function Chalice generates that is not named there fails the synth, so a new
      handler cannot land without its name, permissions and alarms.
    - The REST API's integrations name the API handler by that fixed ARN instead of
      `${APIHandler.Arn}`. Otherwise the API depends on the function, the CloudFront
      distribution on the API, and the function (its `PUBLIC_BASE_URL`) on the
      distribution: a dependency cycle.

    Chalice's intermediate `chalice.out/` goes under `work_dir` (inside `infra/cdk.out/`)
    rather than the process's working directory.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: str,
        chalice_stage: str,
        stage_config: Mapping[str, Any],
        function_names: Mapping[str, str],
        work_dir: Path,
    ) -> None:
        self._chalice_stage = chalice_stage
        self._function_names = dict(function_names)
        with _working_directory(work_dir):
            super().__init__(
                scope, construct_id, source_dir=source_dir, stage_config=dict(stage_config)
            )

    def _package_app(self) -> None:
        chalice_api.package_app(
            project_dir=self.source_dir,
            output_dir=self._sam_package_dir,
            stage=self._chalice_stage,
            chalice_config=self.stage_config,
        )
        sam_path = Path(self._sam_package_dir) / "sam.json"
        template = json.loads(sam_path.read_text())
        sam_path.write_text(json.dumps(name_functions(template, self._function_names)))


def name_functions(template: dict[str, Any], function_names: Mapping[str, str]) -> dict[str, Any]:
    """Give each SAM function its fixed name and point the API at the handler by name."""
    resources: dict[str, Any] = template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        if logical_id not in function_names:
            raise ValueError(
                f"Chalice generated function {logical_id!r} that infra/ does not know: "
                "give it a name, permissions and alarms in infra/stack.py"
            )
        resource["Properties"]["FunctionName"] = function_names[logical_id]
    if API_HANDLER in function_names and "RestAPI" in resources:
        handler_arn = (
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
            + function_names[API_HANDLER]
        )
        body = json.dumps(resources["RestAPI"]["Properties"]["DefinitionBody"])
        body = body.replace("${" + API_HANDLER + ".Arn}", handler_arn)
        resources["RestAPI"]["Properties"]["DefinitionBody"] = json.loads(body)
    return template
