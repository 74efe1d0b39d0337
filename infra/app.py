"""CDK entry point: `python -m infra.app -c stage=prod` synthesises one stage offline.

`make synth` runs it for every stage; `cdk synth`/`cdk deploy` run it through cdk.json.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk

from infra.stack import PlatformStack
from infra.stages import stage_settings

DEFAULT_OUTDIR = Path(__file__).resolve().parent / "cdk.out"


def build(outdir: Path | None = None, context: Mapping[str, str] | None = None) -> cdk.App:
    """An app holding the one stack of the context's `stage` (default dev).

    Without `outdir`, the CDK CLI's `CDK_OUTDIR` applies, else `infra/cdk.out/`.
    """
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = DEFAULT_OUTDIR
    app = cdk.App(outdir=str(outdir) if outdir else None, context=dict(context or {}))
    settings = stage_settings(str(app.node.try_get_context("stage") or "dev"))
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    PlatformStack(
        app,
        settings.stack_name,
        stage=settings,
        twilio_account_sid=app.node.try_get_context("twilioAccountSid"),
        alarm_email=app.node.try_get_context("alarmEmail"),
        chalice_work_dir=Path(app.outdir),
        env=cdk.Environment(account=account, region=region) if account or region else None,
        description=f"Pay-per-call platform ({settings.name})",
    )
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context"
    )
    parser.add_argument("--outdir", type=Path, help="cloud assembly directory")
    args = parser.parse_args(argv)
    context = dict(item.split("=", 1) for item in args.context)
    build(args.outdir, context).synth()


if __name__ == "__main__":
    main()
