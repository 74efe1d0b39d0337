"""The CDK app synthesised once per stage: the templates' guarantees, and cfn-lint on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk starts its jsii runtime: a region for the env-agnostic stack and for
# `chalice package`, and quiet about the machine's Node.js release.
os.environ.setdefault("CDK_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

from aws_cdk.assertions import Match, Template

from chalicelib.store.tables import APP_TABLE_KEYS, TTL_ATTRIBUTE
from infra.app import build
from infra.chalice_api import name_functions
from infra.stack import API_PATH_PATTERNS
from infra.stages import STAGES

DATA_SERVICES = ("dynamodb", "cognito-idp", "ssm", "s3", "secretsmanager", "sqs", "sns", "kms")


@dataclass
class Synth:
    stage: str
    path: Path
    template: Template
    raw: dict[str, Any]
    seconds: float


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    out: dict[str, Synth] = {}
    for stage, settings in STAGES.items():
        started = time.perf_counter()
        outdir = tmp_path_factory.mktemp(f"cdk-{stage}")
        build(outdir, {"stage": stage}).synth()
        path = outdir / f"{settings.stack_name}.template.json"
        raw = json.loads(path.read_text())
        out[stage] = Synth(stage, path, Template.from_json(raw), raw, time.perf_counter() - started)
    return out


@pytest.fixture(params=sorted(STAGES))
def synth(request: pytest.FixtureRequest, synths: dict[str, Synth]) -> Synth:
    return synths[request.param]


def _resources(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == kind}


def _table(synth: Synth, name: str) -> dict[str, Any]:
    for resource in _resources(synth.raw, "AWS::DynamoDB::Table").values():
        if resource["Properties"]["TableName"] == name:
            return resource
    raise AssertionError(f"no table {name}")


def test_tables_are_on_demand_with_pitr_ttl_and_the_store_schema(synth: Synth) -> None:
    settings = STAGES[synth.stage]
    app_table = _table(synth, settings.app_table_name)["Properties"]
    assert app_table["BillingMode"] == "PAY_PER_REQUEST"
    assert app_table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert app_table["TimeToLiveSpecification"] == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert app_table["KeySchema"] == APP_TABLE_KEYS["KeySchema"]
    assert sorted(app_table["AttributeDefinitions"], key=str) == sorted(
        APP_TABLE_KEYS["AttributeDefinitions"], key=str
    )
    assert app_table["GlobalSecondaryIndexes"] == APP_TABLE_KEYS["GlobalSecondaryIndexes"]

    idempotency = _table(synth, settings.idempotency_table_name)["Properties"]
    assert idempotency["BillingMode"] == "PAY_PER_REQUEST"
    assert idempotency["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert idempotency["TimeToLiveSpecification"] == {
        "AttributeName": "expiration",
        "Enabled": True,
    }
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_prod_tables_are_protected_and_retained_dev_tables_are_not(
    synths: dict[str, Synth],
) -> None:
    for stage, protected in (("prod", True), ("dev", False)):
        tables = _resources(synths[stage].raw, "AWS::DynamoDB::Table")
        assert len(tables) == 2
        for table in tables.values():
            assert table["Properties"].get("DeletionProtectionEnabled", False) is protected
            assert (table["DeletionPolicy"] == "Retain") is protected
    synths["prod"].template.has_resource("AWS::Cognito::UserPool", {"DeletionPolicy": "Retain"})


def _statements(raw: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in raw["Resources"].values():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            found += document["Statement"]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_dynamodb_and_no_data_action_on_every_resource(synth: Synth) -> None:
    statements = _statements(synth.raw)
    assert statements, "the functions' role has no policy"
    for statement in statements:
        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        assert "*" not in actions
        assert not any(a.endswith(":*") for a in actions), statement
        if "*" in resources:
            data = [a for a in actions if a.split(":")[0] in DATA_SERVICES]
            assert not data, f"data actions on Resource '*': {statement}"
    # The Chalice functions do not bring their own policies (no autogen, no managed role).
    for function in _resources(synth.raw, "AWS::Serverless::Function").values():
        assert "Policies" not in function["Properties"]


def _role_statements(synth: Synth, role_id: str) -> dict[str, Any]:
    role = synth.raw["Resources"][role_id]["Properties"]
    return {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}


def test_each_function_role_grants_only_what_that_function_needs(synth: Synth) -> None:
    settings = STAGES[synth.stage]
    roles = set(_resources(synth.raw, "AWS::IAM::Role"))
    (api_role,) = {k for k in roles if k.startswith("APIHandlerRole")}
    (sweep_role,) = {k for k in roles if k.startswith("SweepRole")}
    (pixels_role,) = {k for k in roles if k.startswith("RetryPixelsRole")}
    (replay_role,) = {k for k in roles if k.startswith("ReplayDeferredRole")}
    api = _role_statements(synth, api_role)
    tables = api["Tables"]
    assert "dynamodb:Scan" not in tables["Action"]
    assert "dynamodb:TransactWriteItems" not in tables["Action"]  # granted per item action
    assert len(tables["Resource"]) == 3  # app table, its indexes, the idempotency table
    assert all(a.startswith("cognito-idp:Admin") for a in api["UserAdmin"]["Action"])
    assert api["UserAdmin"]["Resource"] == {
        "Fn::GetAtt": [_logical_id(synth, "AWS::Cognito::UserPool"), "Arn"]
    }
    token = json.dumps(api["CpaasToken"])
    assert settings.twilio_auth_token_parameter in token
    assert api["CpaasToken"]["Action"] == "ssm:GetParameter"
    # The sweep and the pixel retrier sign nobody in and read no CPaaS token.
    assert set(_role_statements(synth, sweep_role)) == {"Tables", "Logs", "Tracing"}
    assert set(_role_statements(synth, pixels_role)) == {"Tables", "Logs", "Tracing"}
    # The API keeps callbacks it could not apply; only the replay reads and removes them.
    queue = {"Fn::GetAtt": [_logical_id_of_queue(synth, settings.deferred_queue_name), "Arn"]}
    assert api["DeferredCallbacks"]["Action"] == "sqs:SendMessage"
    assert api["DeferredCallbacks"]["Resource"] == queue
    replay = _role_statements(synth, replay_role)
    assert set(replay) == {"Tables", "DeferredCallbacks", "Logs", "Tracing"}
    assert replay["DeferredCallbacks"]["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
    assert replay["DeferredCallbacks"]["Resource"] == queue
    functions = _resources(synth.raw, "AWS::Serverless::Function")
    assert {json.dumps(f["Properties"]["Role"]) for f in functions.values()} == {
        json.dumps({"Fn::GetAtt": [api_role, "Arn"]}),
        json.dumps({"Fn::GetAtt": [sweep_role, "Arn"]}),
        json.dumps({"Fn::GetAtt": [pixels_role, "Arn"]}),
        json.dumps({"Fn::GetAtt": [replay_role, "Arn"]}),
    }


def _logical_id(synth: Synth, kind: str) -> str:
    (logical_id,) = _resources(synth.raw, kind)
    return logical_id


def test_cloudfront_is_https_only_with_oac_and_the_api_paths(synth: Synth) -> None:
    (distribution,) = _resources(synth.raw, "AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert set(behaviors) == set(API_PATH_PATTERNS)
    caching_disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    all_viewer_except_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    for behavior in behaviors.values():
        assert behavior["ViewerProtocolPolicy"] == "https-only"
        assert behavior["CachePolicyId"] == caching_disabled
        assert behavior["OriginRequestPolicyId"] == all_viewer_except_host
        assert "POST" in behavior["AllowedMethods"]
    origins = {o["Id"]: o for o in config["Origins"]}
    s3_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert "OriginAccessControlId" in s3_origin
    api_origin = origins[behaviors["/api/*"]["TargetOriginId"]]
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api_origin["OriginPath"] == "/api"
    synth.template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {"OriginAccessControlConfig": Match.object_like({"OriginAccessControlOriginType": "s3"})},
    )
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": Match.any_value(),
        },
    )


def test_alarms_cover_5xx_lambda_errors_and_throttles_and_table_throttles(synth: Synth) -> None:
    alarms = _resources(synth.raw, "AWS::CloudWatch::Alarm").values()
    plain = [a["Properties"] for a in alarms if "MetricName" in a["Properties"]]
    names = sorted((p["Namespace"], p["MetricName"]) for p in plain)
    assert names == [
        ("AWS/ApiGateway", "5XXError"),
        *[("AWS/Lambda", "Errors")] * 4,  # the API, the sweep, the pixel retrier, the replay
        *[("AWS/Lambda", "Throttles")] * 4,
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),  # kept callbacks given up
    ]
    table_alarms = [a["Properties"] for a in alarms if "Metrics" in a["Properties"]]
    assert len(table_alarms) == 2
    for alarm in table_alarms:
        metrics = json.dumps(alarm["Metrics"])
        assert "ThrottledRequests" in metrics and "AWS/DynamoDB" in metrics
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"], "every alarm notifies the topic"
    assert not _resources(synth.raw, "AWS::StepFunctions::StateMachine")  # dialer not landed


def test_functions_carry_the_environment_and_the_schedules(synth: Synth) -> None:
    settings = STAGES[synth.stage]
    functions = _resources(synth.raw, "AWS::Serverless::Function")
    assert {f["Properties"]["FunctionName"] for f in functions.values()} == {
        settings.api_function_name,
        settings.sweep_function_name,
        settings.pixels_function_name,
        settings.replay_function_name,
    }
    app_table = _logical_id_of_table(synth, settings.app_table_name)
    distribution = _logical_id(synth, "AWS::CloudFront::Distribution")
    for function in functions.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["APP_TABLE_NAME"] == {"Ref": app_table}
        assert env["IDEMPOTENCY_TABLE_NAME"] == {
            "Ref": _logical_id_of_table(synth, settings.idempotency_table_name)
        }
        assert env["PUBLIC_BASE_URL"] == {
            "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]
        }
        assert env["STAGE"] == synth.stage
        assert env["TWILIO_AUTH_TOKEN_PARAM"] == settings.twilio_auth_token_parameter
        assert env["DEFERRED_QUEUE_URL"] == {
            "Ref": _logical_id_of_queue(synth, settings.deferred_queue_name)
        }
        for key in (
            "COGNITO_USER_POOL_ID",
            "COGNITO_CLIENT_ID",
            "TWILIO_ACCOUNT_SID",
            "POWERTOOLS_SERVICE_NAME",
        ):
            assert key in env
    (sweep,) = [f for f in functions.values() if f["Properties"]["Handler"].endswith(".sweep")]
    (event,) = sweep["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(10 minutes)"}}
    # A failed pixel waits for the next run of its retrier: at most a minute.
    (retrier,) = [
        f for f in functions.values() if f["Properties"]["Handler"].endswith(".retry_pixels")
    ]
    assert retrier["Properties"]["FunctionName"] == settings.pixels_function_name
    (event,) = retrier["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    # A callback kept while the table did not answer is applied within a minute of it
    # answering again.
    (replayer,) = [
        f for f in functions.values() if f["Properties"]["Handler"].endswith(".replay_deferred")
    ]
    assert replayer["Properties"]["FunctionName"] == settings.replay_function_name
    (event,) = replayer["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    # The API names its handler by ARN, not by reference: no API -> function -> CDN cycle.
    assert "APIHandler.Arn" not in json.dumps(synth.raw["Resources"]["RestAPI"])


def _logical_id_of_queue(synth: Synth, name: str) -> str:
    for logical_id, queue in _resources(synth.raw, "AWS::SQS::Queue").items():
        if queue["Properties"]["QueueName"] == name:
            dead_letters = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
            assert dead_letters, "a kept callback that never applies must not loop forever"
            return logical_id
    raise AssertionError(name)


def _logical_id_of_table(synth: Synth, name: str) -> str:
    for logical_id, table in _resources(synth.raw, "AWS::DynamoDB::Table").items():
        if table["Properties"]["TableName"] == name:
            return logical_id
    raise AssertionError(name)


def test_cognito_custom_claims_are_not_writable_by_the_app_client(synth: Synth) -> None:
    (pool,) = _resources(synth.raw, "AWS::Cognito::UserPool").values()
    schema = {a["Name"] for a in pool["Properties"]["Schema"]}
    assert {"account_id", "role"} <= schema
    (client,) = _resources(synth.raw, "AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert props.get("GenerateSecret", False) is False
    assert set(props["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert not [a for a in props["WriteAttributes"] if a.startswith("custom:")]


def test_cfn_lint_finds_no_errors(synths: dict[str, Synth]) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    paths = [str(s.path) for s in synths.values()]
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = result.stdout.splitlines()
    errors = [line for line in findings if ":E" in line or line.split(":")[-2:-1] == ["error"]]
    for line in findings:  # warnings are allowed; show them in the test output
        print(line)
    assert result.returncode & 2 == 0 and not errors, result.stdout + result.stderr
    assert result.returncode & ~(2 | 4 | 8) == 0, result.stderr  # no crash


def test_an_unknown_chalice_function_fails_the_synth() -> None:
    template = {
        "Resources": {"NewHandler": {"Type": "AWS::Serverless::Function", "Properties": {}}}
    }
    with pytest.raises(ValueError, match="NewHandler"):
        name_functions(template, {"APIHandler": "x-api"})
