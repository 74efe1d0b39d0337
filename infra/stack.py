"""The platform's stack: API + functions (Chalice), tables, Cognito, dashboard hosting, alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from chalicelib.store.tables import (
    APP_TABLE_KEYS,
    IDEMPOTENCY_TABLE_KEYS,
    TTL_ATTRIBUTE,
)
from infra.chalice_api import API_HANDLER, ChaliceApi
from infra.stages import StageSettings

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Powertools' idempotency layer expires records through this attribute (its default).
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
#: The Chalice logical id of the scheduled sweep (`@bp.schedule` on `sweep` in sweep.py).
SWEEP_FUNCTION = "Sweep"
#: The Chalice logical id of the per-minute pixel retries (`retry_pixels` in sweep.py).
PIXELS_FUNCTION = "RetryPixels"
#: The Chalice logical id of the per-minute replay of kept callbacks (voice/replay.py).
REPLAY_FUNCTION = "ReplayDeferred"
#: A kept callback that fails this many replays goes to the dead-letter queue (a run a
#: minute, each stopping at its first failure: about 16 hours of a table not answering).
DEFERRED_MAX_RECEIVES = 1000
#: The API Gateway stage Chalice deploys (`api_gateway_stage` in .chalice/config.json).
API_STAGE = "api"
#: Paths CloudFront sends to API Gateway; everything else is the dashboard bundle.
API_PATH_PATTERNS = (
    "/api/*",
    "/dni/*",
    "/rtb/*",
    "/edge/*",
    "/voice/*",
    "/dni.js",
    "/openapi.json",
)

#: The only DynamoDB actions the app's code (PynamoDB, Powertools) issues.
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]
#: Cognito calls of chalicelib/auth/cognito.py that need IAM (InitiateAuth is public).
COGNITO_ACTIONS = [
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminSetUserPassword",
    "cognito-idp:AdminDeleteUser",
]

_RETENTION = {14: logs.RetentionDays.TWO_WEEKS, 90: logs.RetentionDays.THREE_MONTHS}


def _key(layout: dict[str, Any], key_schema: list[dict[str, str]], kind: str) -> dynamodb.Attribute:
    """The key attribute of `kind` (HASH/RANGE) from a boto3-style layout."""
    name = next(k["AttributeName"] for k in key_schema if k["KeyType"] == kind)
    types = {a["AttributeName"]: a["AttributeType"] for a in layout["AttributeDefinitions"]}
    attribute_type = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}
    return dynamodb.Attribute(name=name, type=attribute_type[types[name]])


def _has_range(key_schema: list[dict[str, str]]) -> bool:
    return any(k["KeyType"] == "RANGE" for k in key_schema)


class PlatformStack(cdk.Stack):  # type: ignore[misc]  # aws_cdk is skipped by mypy
    """One stage of the platform."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageSettings,
        twilio_account_sid: str | None = None,
        alarm_email: str | None = None,
        chalice_work_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stage = stage
        removal = cdk.RemovalPolicy.RETAIN if stage.protect_data else cdk.RemovalPolicy.DESTROY

        # --- data -------------------------------------------------------------------------
        self.app_table = self._table(
            "AppTable", stage.app_table_name, APP_TABLE_KEYS, TTL_ATTRIBUTE, removal
        )
        for gsi in APP_TABLE_KEYS["GlobalSecondaryIndexes"]:
            schema = gsi["KeySchema"]
            self.app_table.add_global_secondary_index(
                index_name=gsi["IndexName"],
                partition_key=_key(APP_TABLE_KEYS, schema, "HASH"),
                sort_key=_key(APP_TABLE_KEYS, schema, "RANGE") if _has_range(schema) else None,
                projection_type=dynamodb.ProjectionType[gsi["Projection"]["ProjectionType"]],
            )
        self.idempotency_table = self._table(
            "IdempotencyTable",
            stage.idempotency_table_name,
            IDEMPOTENCY_TABLE_KEYS,
            IDEMPOTENCY_TTL_ATTRIBUTE,
            removal,
        )

        # --- users ------------------------------------------------------------------------
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{stage.prefix}-users",
            self_sign_up_enabled=False,  # admins create users through /api/v1
            sign_in_aliases=cognito.SignInAliases(email=True),
            custom_attributes={
                "account_id": cognito.StringAttribute(mutable=True),
                "role": cognito.StringAttribute(mutable=True),
            },
            password_policy=cognito.PasswordPolicy(min_length=12),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal,
            deletion_protection=stage.protect_data,
        )
        self.user_pool_client = self.user_pool.add_client(
            "DashboardClient",
            user_pool_client_name=f"{stage.prefix}-dashboard",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=True),  # + refresh, always on
            # Users may not rewrite their own account or role claims: the app clients
            # may write only standard attributes; only admin calls set custom ones.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True),
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True, email_verified=True)
            .with_custom_attributes("account_id", "role"),
            prevent_user_existence_errors=True,
        )

        # --- CPaaS credentials ------------------------------------------------------------
        self.twilio_account_sid = ssm.StringParameter(
            self,
            "TwilioAccountSid",
            parameter_name=stage.twilio_account_sid_parameter,
            string_value=twilio_account_sid or "unconfigured",
            description="CPaaS account SID (not secret); set with -c twilioAccountSid=AC...",
        )
        # The auth token is an SSM SecureString that CloudFormation cannot create: the
        # operator puts it once (see infra/README.md); the app reads it by this name.
        token_parameter_arn = self.format_arn(
            service="ssm",
            resource="parameter",
            resource_name=stage.twilio_auth_token_parameter.lstrip("/"),
        )

        # --- callbacks kept while the table did not answer ---------------------------------
        # Their facts (a dial's result, a final status) wait here until the table answers;
        # one that still fails after many replays goes to the dead-letter queue (alarmed).
        self.deferred_dead_letters = sqs.Queue(
            self,
            "DeferredCallbacksDeadLetters",
            queue_name=f"{stage.deferred_queue_name}-dlq",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.deferred_queue = sqs.Queue(
            self,
            "DeferredCallbacks",
            queue_name=stage.deferred_queue_name,
            retention_period=cdk.Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.deferred_dead_letters, max_receive_count=DEFERRED_MAX_RECEIVES
            ),
        )

        # --- logs and the functions' role -------------------------------------------------
        retention = _RETENTION[stage.log_retention_days]
        function_names = {
            API_HANDLER: stage.api_function_name,
            SWEEP_FUNCTION: stage.sweep_function_name,
            PIXELS_FUNCTION: stage.pixels_function_name,
            REPLAY_FUNCTION: stage.replay_function_name,
        }
        log_groups = [
            logs.LogGroup(
                self,
                f"{logical_id}Logs",
                log_group_name=f"/aws/lambda/{name}",
                retention=retention,
                removal_policy=removal,
            )
            for logical_id, name in function_names.items()
        ]
        table_arns = [
            self.app_table.table_arn,
            f"{self.app_table.table_arn}/index/*",
            self.idempotency_table.table_arn,
        ]
        log_arns = {
            logical_id: group.log_group_arn
            for logical_id, group in zip(function_names, log_groups, strict=True)
        }

        def function_role(logical_id: str, extra: list[iam.PolicyStatement]) -> iam.Role:
            """One role per function, each with only what that function does."""
            return iam.Role(
                self,
                f"{logical_id}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{stage.prefix}: {function_names[logical_id]}",
                inline_policies={
                    "app": iam.PolicyDocument(
                        statements=[
                            iam.PolicyStatement(
                                sid="Tables", actions=TABLE_ACTIONS, resources=table_arns
                            ),
                            *extra,
                            iam.PolicyStatement(
                                sid="Logs",
                                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_arns[logical_id]],
                            ),
                            iam.PolicyStatement(
                                # X-Ray has no resource-level permissions.
                                sid="Tracing",
                                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                                resources=["*"],
                            ),
                        ]
                    )
                },
            )

        # The API handler signs users in and checks CPaaS signatures; the sweep only closes
        # stale calls and the pixel retrier only delivers stored pixels, so each gets the
        # tables and its own logs.
        self.function_roles = {
            API_HANDLER: function_role(
                API_HANDLER,
                [
                    iam.PolicyStatement(
                        sid="UserAdmin",
                        actions=COGNITO_ACTIONS,
                        resources=[self.user_pool.user_pool_arn],
                    ),
                    iam.PolicyStatement(
                        sid="CpaasToken",
                        actions=["ssm:GetParameter"],
                        resources=[token_parameter_arn],
                    ),
                    iam.PolicyStatement(
                        sid="DeferredCallbacks",
                        actions=["sqs:SendMessage"],
                        resources=[self.deferred_queue.queue_arn],
                    ),
                ],
            ),
            SWEEP_FUNCTION: function_role(SWEEP_FUNCTION, []),
            PIXELS_FUNCTION: function_role(PIXELS_FUNCTION, []),
            REPLAY_FUNCTION: function_role(
                REPLAY_FUNCTION,
                [
                    iam.PolicyStatement(
                        sid="DeferredCallbacks",
                        actions=["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                        resources=[self.deferred_queue.queue_arn],
                    )
                ],
            ),
        }
        self.function_role = self.function_roles[API_HANDLER]

        # --- API + functions --------------------------------------------------------------
        self.chalice = ChaliceApi(
            self,
            "Api",
            source_dir=str(REPO_ROOT),
            chalice_stage=stage.name,
            stage_config={
                "manage_iam_role": False,
                "iam_role_arn": self.function_role.role_arn,
                "autogen_policy": False,
                "api_gateway_endpoint_type": "REGIONAL",  # CloudFront is the edge
                "xray": True,
            },
            function_names=function_names,
            work_dir=chalice_work_dir,
        )
        self.rest_api = self.chalice.get_resource("RestAPI")
        self.rest_api.add_property_override("Name", f"{stage.prefix}-api")
        for logical_id, role in self.function_roles.items():
            self.chalice.get_resource(logical_id).add_property_override("Role", role.role_arn)

        # --- dashboard + one origin for the API -------------------------------------------
        self.dashboard_bucket = s3.Bucket(
            self,
            "DashboardBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
        )
        api_origin = origins.HttpOrigin(
            f"{self.rest_api.ref}.execute-api.{self.region}.{self.url_suffix}",
            origin_path=f"/{API_STAGE}",
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
        )
        api_behavior = cloudfront.BehaviorOptions(
            origin=api_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{stage.prefix}: dashboard and API on one origin",
            default_root_object="index.html",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.dashboard_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            additional_behaviors={pattern: api_behavior for pattern in API_PATH_PATTERNS},
        )
        self.public_base_url = f"https://{self.distribution.distribution_domain_name}"

        # --- the functions' environment ---------------------------------------------------
        environment = {
            "STAGE": stage.name,
            "APP_TABLE_NAME": self.app_table.table_name,
            "IDEMPOTENCY_TABLE_NAME": self.idempotency_table.table_name,
            "PUBLIC_BASE_URL": self.public_base_url,
            "COGNITO_USER_POOL_ID": self.user_pool.user_pool_id,
            "COGNITO_CLIENT_ID": self.user_pool_client.user_pool_client_id,
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid.string_value,
            "TWILIO_AUTH_TOKEN_PARAM": stage.twilio_auth_token_parameter,
            "POWERTOOLS_SERVICE_NAME": "ppc-platform",
            "POWERTOOLS_METRICS_NAMESPACE": "PayPerCall",
            "POWERTOOLS_LOG_LEVEL": stage.log_level,
            "DEFERRED_QUEUE_URL": self.deferred_queue.queue_url,
        }
        for logical_id in function_names:
            for key, value in environment.items():
                self.chalice.add_environment_variable(key, value, logical_id)

        # --- alarms -----------------------------------------------------------------------
        self.alarm_topic = sns.Topic(self, "AlarmTopic", topic_name=f"{stage.prefix}-alarms")
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._alarms(function_names)

        cdk.CfnOutput(self, "PublicBaseUrl", value=self.public_base_url)
        cdk.CfnOutput(self, "DashboardBucketName", value=self.dashboard_bucket.bucket_name)
        cdk.CfnOutput(self, "DistributionId", value=self.distribution.distribution_id)
        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    def _table(
        self,
        construct_id: str,
        name: str,
        layout: dict[str, Any],
        ttl_attribute: str,
        removal: cdk.RemovalPolicy,
    ) -> dynamodb.Table:
        schema = layout["KeySchema"]
        return dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=_key(layout, schema, "HASH"),
            sort_key=_key(layout, schema, "RANGE") if _has_range(schema) else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl_attribute,
            deletion_protection=self.stage.protect_data,
            removal_policy=removal,
        )

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, what: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.stage.prefix}-{construct_id}",
            alarm_description=what,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        return alarm

    def _alarms(self, function_names: dict[str, str]) -> None:
        five_minutes = cdk.Duration.minutes(5)
        self._alarm(
            "api-5xx",
            cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5XXError",
                dimensions_map={"ApiName": f"{self.stage.prefix}-api", "Stage": API_STAGE},
                statistic="Sum",
                period=five_minutes,
            ),
            self.stage.api_5xx_threshold,
            "API Gateway 5XX responses (voice webhooks must never answer 5xx)",
        )
        for logical_id, name in function_names.items():
            for metric_name in ("Errors", "Throttles"):
                self._alarm(
                    f"{logical_id.lower()}-{metric_name.lower()}",
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name=metric_name,
                        dimensions_map={"FunctionName": name},
                        statistic="Sum",
                        period=five_minutes,
                    ),
                    1,
                    f"Lambda {metric_name.lower()} of {name}",
                )
        operations = [
            dynamodb.Operation.GET_ITEM,
            dynamodb.Operation.PUT_ITEM,
            dynamodb.Operation.UPDATE_ITEM,
            dynamodb.Operation.DELETE_ITEM,
            dynamodb.Operation.QUERY,
            dynamodb.Operation.BATCH_GET_ITEM,
            dynamodb.Operation.BATCH_WRITE_ITEM,
            dynamodb.Operation.TRANSACT_WRITE_ITEMS,
        ]
        for label, table in (("app", self.app_table), ("idempotency", self.idempotency_table)):
            self._alarm(
                f"{label}-table-throttles",
                table.metric_throttled_requests_for_operations(
                    operations=operations, period=five_minutes
                ),
                1,
                f"DynamoDB throttled requests on the {label} table",
            )
        self._alarm(
            "deferred-callbacks-dead-letters",
            self.deferred_dead_letters.metric_approximate_number_of_messages_visible(
                period=five_minutes
            ),
            1,
            "Kept CPaaS callbacks that could not be applied after many replays",
        )
        # No Step Functions alarm yet: the dialer's state machine has not landed; its
        # ExecutionsFailed alarm belongs next to the state machine when it does.
