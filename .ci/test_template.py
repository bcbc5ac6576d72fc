"""The production pieces of template.yaml, checked on the template as AWS receives it:
translated by the SAM transform (aws-sam-translator, the library `sam deploy` uses).

Run: python3 -m pytest -q .ci/test_template.py   (make template-check runs it)
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
API_FUNCTIONS = ["Products", "Categories", "Users", "Cart", "Orders", "Payments", "Reviews"]
# Functions that serve files only: no database, no secrets.
STATIC_FUNCTIONS = {"DocsFunction"}


class NoManagedPolicies:
    """The translator asks for AWS managed policies only to expand policy names; the
    template names none."""

    def load(self):
        return {}


def source() -> dict:
    return yaml_parse(TEMPLATE.read_text())


def translate(parameters: dict | None = None) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(source())
    # What `sam package` does: code locations become S3 objects.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://bucket/{name}.zip"
    return transform(template, parameters or {}, NoManagedPolicies())


@pytest.fixture(scope="module")
def stack() -> dict:
    return translate()


def defaults() -> dict:
    return {name: p.get("Default") for name, p in source()["Parameters"].items()}


def resolve(value, parameters: dict, conditions: dict | None = None):
    """Evaluates the intrinsics the rules and conditions use, for given parameters."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return parameters[arg]
        if key == "Fn::Equals":
            a, b = (resolve(v, parameters, conditions) for v in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not resolve(arg[0], parameters, conditions)
        if key == "Fn::And":
            return all(resolve(v, parameters, conditions) for v in arg)
        if key == "Fn::Or":
            return any(resolve(v, parameters, conditions) for v in arg)
        if key == "Condition":
            return resolve(conditions[arg], parameters, conditions)
        if key == "Fn::If":
            name, yes, no = arg
            chosen = yes if resolve(conditions[name], parameters, conditions) else no
            return resolve(chosen, parameters, conditions)
    return value


def of_type(stack: dict, kind: str) -> dict:
    return {k: v for k, v in stack["Resources"].items() if v["Type"] == kind}


def env(stack: dict, function: str) -> dict:
    return stack["Resources"][f"{function}Function"]["Properties"]["Environment"]["Variables"]


# ------------------------------------------------------------------ concurrency


def test_the_functions_can_never_open_more_connections_than_the_budget(stack):
    params = defaults()
    pool = int(params["DbPoolSize"])
    total = 0
    for name, function in of_type(stack, "AWS::Lambda::Function").items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved is not None, f"{name} has no reserved concurrency: it could exhaust the database"
        if name in STATIC_FUNCTIONS:
            continue
        assert env(stack, name.removesuffix("Function"))["DB_MAX_CONNECTIONS"] == {"Ref": "DbPoolSize"}
        total += int(resolve(reserved, params)) * pool
    assert total <= int(params["DbConnectionBudget"]), (total, params["DbConnectionBudget"])
    # The arithmetic written in the parameter's description is the one that holds.
    described = source()["Parameters"]["ApiFunctionConcurrency"]["Description"]
    assert f"= {total}" in described, described


# ------------------------------------------------------------------ alarms


def test_every_alarm_goes_to_the_topic_and_the_email_is_optional(stack):
    alarms = of_type(stack, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = stack["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert source()["Parameters"]["AlarmEmail"]["Default"] == ""


def metrics_of(alarm: dict) -> set[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return {(props["Namespace"], props["MetricName"])}
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in props["Metrics"]
        if "MetricStat" in m
    }


def test_errors_throttles_durations_api_and_database_are_watched(stack):
    alarms = of_type(stack, "AWS::CloudWatch::Alarm")
    watched = set().union(*(metrics_of(a) for a in alarms.values()))
    for metric in [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/RDS", "DatabaseConnections"),
    ]:
        assert metric in watched, metric
    # Every function's throttles and p99 duration, every API function's and the sweep's errors.
    functions = set(of_type(stack, "AWS::Lambda::Function")) - {"MigrateFunction"}
    for metric, stat in [("Throttles", "Sum"), ("Duration", "p99")]:
        alarm = next(a for a in alarms.values() if ("AWS/Lambda", metric) in metrics_of(a))
        covered = {
            m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
            for m in alarm["Properties"]["Metrics"]
            if "MetricStat" in m and m["MetricStat"]["Stat"] == stat
        }
        assert covered == functions, (metric, covered)
    for name in [*API_FUNCTIONS, "Docs", "Sweep"]:
        dims = alarms[f"{name}ErrorsAlarm"]["Properties"]["Dimensions"]
        assert dims == [{"Name": "FunctionName", "Value": {"Ref": f"{name}Function"}}]
    assert alarms["DatabaseConnectionsAlarm"]["Properties"]["Threshold"] == {"Ref": "DbConnectionBudget"}


# ------------------------------------------------------------------ safe deploys


def test_api_functions_deploy_through_a_canary_that_alarms_roll_back(stack):
    groups = of_type(stack, "AWS::CodeDeploy::DeploymentGroup")
    for name in [*API_FUNCTIONS, "Docs"]:
        group = groups[f"{name}FunctionDeploymentGroup"]["Properties"]
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        alarms = [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]]
        assert alarms == [f"{name}ErrorsAlarm", "ApiServerErrorsAlarm"]
        assert "Canary10Percent5Minutes" in str(group["DeploymentConfigName"])
        alias = stack["Resources"][f"{name}FunctionAliaslive"]
        assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]


def test_the_api_calls_the_aliases_never_the_unpublished_code(stack):
    body = stack["Resources"]["HttpApi"]["Properties"]["Body"]
    uris = [
        op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in body["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "x-amazon-apigateway-integration" in op
    ]
    assert uris, "the API has integrations"
    for uri in uris:
        assert "FunctionAliaslive}" in uri, uri


# ------------------------------------------------------------------ the database user


def test_functions_connect_as_the_application_user_and_only_migrate_holds_the_master(stack):
    for name in [*API_FUNCTIONS, "Sweep"]:
        assert env(stack, name)["DB_SECRET_ARN"] == {"Ref": "AppDatabaseSecret"}, name
    migrate = env(stack, "Migrate")
    assert migrate["APP_DB_SECRET_ARN"] == {"Ref": "AppDatabaseSecret"}
    assert "MasterUserSecret" in str(migrate["DB_SECRET_ARN"])
    policies = {
        name: str(p["Properties"]["PolicyDocument"]["Statement"][0]["Resource"])
        for name, p in of_type(stack, "AWS::IAM::ManagedPolicy").items()
    }
    roles = of_type(stack, "AWS::IAM::Role")

    def readable(function: str) -> str:
        arns = roles[f"{function}FunctionRole"]["Properties"]["ManagedPolicyArns"]
        return " ".join(policies[a["Ref"]] for a in arns if isinstance(a, dict) and a.get("Ref") in policies)

    for name in API_FUNCTIONS:
        assert "MasterUserSecret" not in readable(name) and "JwtSigningKey" in readable(name)
    assert "JwtSigningKey" not in readable("Migrate"), "migrations never read the signing key"
    assert "JwtSigningKey" not in readable("Sweep") and "MasterUserSecret" not in readable("Sweep")
    generated = stack["Resources"]["AppDatabaseSecret"]["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "password" and generated["PasswordLength"] >= 32


# ------------------------------------------------------------------ TLS


@pytest.mark.parametrize(
    "mode, proxy, ssl_mode, ca",
    [
        ("create", "false", "verify_identity", "rds"),
        ("create", "true", "verify_identity", "system"),
        ("existing", "false", "required", "rds"),
    ],
)
def test_tls_is_verified_by_default_with_the_created_cluster(stack, mode, proxy, ssl_mode, ca):
    template = source()
    params = {**defaults(), "DatabaseMode": mode, "EnableRdsProxy": proxy}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    conditions = template["Conditions"]
    assert resolve(variables["DB_SSL_MODE"], params, conditions) == ssl_mode
    assert resolve(variables["DB_SSL_CA"], params, conditions) == ca


# ------------------------------------------------------------------ throttles, deletion, rules


def test_login_and_registration_are_throttled_tighter_than_the_rest(stack):
    stage = stack["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    params = defaults()
    for route in ["POST /users/login", "POST /users/register"]:
        settings = stage["RouteSettings"][route]
        assert settings["ThrottlingBurstLimit"] == {"Ref": "AuthBurstLimit"}
        assert settings["ThrottlingRateLimit"] == {"Ref": "AuthRateLimit"}
    assert int(params["AuthBurstLimit"]) < int(params["ApiBurstLimit"])
    assert int(params["AuthRateLimit"]) < int(params["ApiRateLimit"])


def test_the_cluster_is_protected_from_deletion(stack):
    cluster = stack["Resources"]["DatabaseCluster"]
    assert cluster["Properties"]["DeletionProtection"] == {"Ref": "DbDeletionProtection"}
    assert defaults()["DbDeletionProtection"] == "true"
    assert cluster["DeletionPolicy"] == "Snapshot"


@pytest.mark.parametrize(
    "proxy, min_capacity, accepted",
    [("true", "0", False), ("true", "0.5", True), ("false", "0", True)],
)
def test_a_proxy_with_a_cluster_that_should_pause_is_refused(proxy, min_capacity, accepted):
    rule = source()["Rules"]["ProxyKeepsTheClusterAwake"]
    params = {**defaults(), "EnableRdsProxy": proxy, "DbMinCapacity": min_capacity}
    applies = resolve(rule["RuleCondition"], params)
    holds = all(resolve(a["Assert"], params) for a in rule["Assertions"])
    assert (not applies or holds) == accepted


# ------------------------------------------------------------------ the rest


def test_the_request_id_header_is_readable_by_browsers(stack):
    cors = source()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert "x-request-id" in cors["ExposeHeaders"]


def test_the_sweep_runs_every_minute(stack):
    rule = of_type(stack, "AWS::Events::Rule")["SweepFunctionEveryMinute"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SweepFunction", "Arn"]}
    assert stack["Resources"]["SweepFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_the_architecture_is_a_parameter_defaulting_to_graviton(stack):
    assert defaults()["Architecture"] == "arm64"
    for name, function in of_type(stack, "AWS::Lambda::Function").items():
        assert function["Properties"]["Architectures"] == [{"Ref": "Architecture"}], name


# ------------------------------------------------------------------ the reference page


def test_the_reference_page_reads_no_secret(stack):
    role = stack["Resources"]["DocsFunctionRole"]["Properties"]
    policies = set(of_type(stack, "AWS::IAM::ManagedPolicy"))
    attached = {a["Ref"] for a in role["ManagedPolicyArns"] if isinstance(a, dict) and "Ref" in a}
    assert not attached & policies, attached
    assert "DependsOn" not in source()["Resources"]["DocsFunction"], "it needs no migrated database"
