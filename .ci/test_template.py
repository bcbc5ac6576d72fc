"""The production pieces of template.yaml, checked on the template as AWS receives it:
translated by the SAM transform (aws-sam-translator, the library `sam deploy` uses).

Run: python3 -m pytest -q .ci/test_template.py   (make template-check runs it)
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import sys
from pathlib import Path

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).resolve().parent / "deployed"))
import deploy  # noqa: E402  (make deploy's checks, the same code)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
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


DATABASE_SECRETS = ("ApiSecretsReadPolicy", "AppUserReadPolicy", "MigrationSecretsReadPolicy")


def reads_a_database_secret(stack: dict, function: str) -> bool:
    role = stack["Resources"][f"{function}Role"]["Properties"]
    return any(isinstance(a, dict) and a.get("Ref") in DATABASE_SECRETS for a in role["ManagedPolicyArns"])


def test_every_function_that_reaches_the_database_reserves_concurrency_and_no_other(stack):
    for name, function in of_type(stack, "AWS::Lambda::Function").items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        if reads_a_database_secret(stack, name):
            assert reserved is not None, f"{name} has no reserved concurrency: it could exhaust the database"
            assert env(stack, name.removesuffix("Function"))["DB_MAX_CONNECTIONS"] == {"Ref": "DbPoolSize"}
        else:
            assert reserved is None, f"{name} opens no connection and needs no reserved concurrency"
    assert "ReservedConcurrentExecutions" not in stack["Resources"]["DocsFunction"]["Properties"]


def test_the_connections_retiring_instances_keep_are_counted_within_the_budget(stack):
    params = defaults()
    reserved = deploy.reservations(source(), params)
    # Nine API functions at ApiFunctionConcurrency, the sweep, migrations and webhook relay
    # at one each, webhook delivery at two.
    assert sorted(n for n, _ in reserved.values()) == [1, 1, 1, 2, *[int(params["ApiFunctionConcurrency"])] * 9]
    bound = deploy.connection_bound(source(), params)
    assert bound == 2 * int(params["DbPoolSize"]) * (9 * int(params["ApiFunctionConcurrency"]) + 5)
    assert bound <= int(params["DbConnectionBudget"]), (bound, params["DbConnectionBudget"])
    # The arithmetic written in the parameter's description is the one that holds.
    described = source()["Parameters"]["ApiFunctionConcurrency"]["Description"]
    assert f"= {bound} with the defaults" in described, described
    assert f"= {sum(n for n, _ in reserved.values()) + 100} with the defaults" in described


def db_rs() -> str:
    return (ROOT / "shared/platform/src/db.rs").read_text()


def test_the_server_ends_a_retired_environments_sockets_soon_after_the_pool_would(stack):
    idle = int(re.search(r"IDLE_TIMEOUT: Duration = Duration::from_secs\((\d+)\)", db_rs()).group(1))
    assert "SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(2 * IDLE_TIMEOUT.as_secs())" in db_rs()
    server = 2 * idle
    parameters = stack["Resources"]["DatabaseClusterParameters"]["Properties"]["Parameters"]
    assert parameters["wait_timeout"] == parameters["interactive_timeout"] == str(server)
    # A frozen client's pinned proxy session (and its database connection) ends as soon.
    assert source()["Resources"]["DatabaseProxy"]["Properties"]["IdleClientTimeout"] == server
    assert "120 s" in source()["Parameters"]["ApiFunctionConcurrency"]["Description"]


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
    dims = alarms["SweepErrorsAlarm"]["Properties"]["Dimensions"]
    assert dims == [{"Name": "FunctionName", "Value": {"Ref": "SweepFunction"}}]
    assert alarms["DatabaseConnectionsAlarm"]["Properties"]["Threshold"] == {"Ref": "DbConnectionBudget"}


def test_each_deployed_function_is_judged_on_the_errors_of_the_version_its_alias_runs(stack):
    alarms = of_type(stack, "AWS::CloudWatch::Alarm")
    for name in [*API_FUNCTIONS, "Docs"]:
        alias = stack["Resources"][f"{name}FunctionAliaslive"]["Properties"]
        version = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert stack["Resources"][version]["Type"] == "AWS::Lambda::Version"
        dims = {d["Name"]: d["Value"] for d in alarms[f"{name}ErrorsAlarm"]["Properties"]["Dimensions"]}
        assert dims == {
            "FunctionName": {"Ref": f"{name}Function"},
            "Resource": {"Fn::Sub": f"${{{name}Function}}:live"},
            # The version this deploy publishes: during a canary, the new code alone.
            "ExecutedVersion": {"Fn::GetAtt": [version, "Version"]},
        }, name


def test_the_api_wide_5xx_alarm_is_a_rate_that_pages_and_blocks_no_deploy(stack):
    alarm = stack["Resources"]["ApiServerErrorsAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    assert metrics["rate"]["Expression"] == "IF(requests >= 20, 100 * errors / requests, 0)"
    assert metrics["errors"]["MetricStat"]["Period"] == 300
    assert alarm["Threshold"] == 5 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    for name, group in of_type(stack, "AWS::CodeDeploy::DeploymentGroup").items():
        names = [a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]]
        assert "ApiServerErrorsAlarm" not in names, name


# ------------------------------------------------------------------ safe deploys


def test_api_functions_deploy_through_a_canary_that_alarms_roll_back(stack):
    groups = of_type(stack, "AWS::CodeDeploy::DeploymentGroup")
    for name in [*API_FUNCTIONS, "Docs"]:
        group = groups[f"{name}FunctionDeploymentGroup"]["Properties"]
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        alarms = [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]]
        assert alarms == [f"{name}ErrorsAlarm"], "its own errors only"
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


# ------------------------------------------------------------------ TLS and the database user


@pytest.mark.parametrize(
    "mode, proxy, ssl_mode, ca",
    [
        ("create", "false", "verify_identity", "rds"),
        ("create", "true", "verify_identity", "system"),
        # An existing server is verified too: DbSslCa always names the authorities.
        ("existing", "false", "verify_identity", "rds"),
    ],
)
def test_tls_is_verified_by_default_in_every_mode(stack, mode, proxy, ssl_mode, ca):
    template = source()
    params = {**defaults(), "DatabaseMode": mode, "EnableRdsProxy": proxy}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    conditions = template["Conditions"]
    assert resolve(variables["DB_SSL_MODE"], params, conditions) == ssl_mode
    assert resolve(variables["DB_SSL_CA"], params, conditions) == ca
    assert resolve(variables["DB_SSL_MODE"], {**params, "DbSslMode": "required"}, conditions) == "required"


def test_the_application_user_connects_only_from_the_functions_subnets(stack):
    template = source()
    host = template["Resources"]["MigrateFunction"]["Properties"]["Environment"]["Variables"]["APP_DB_HOST"]
    conditions = template["Conditions"]
    auto = resolve(host, {**defaults(), "DatabaseMode": "create"}, conditions)
    address, mask = auto.split("/")
    allowed = ipaddress.ip_network(f"{address}/{mask}")
    subnets = [ipaddress.ip_network(template["Resources"][s]["Properties"]["CidrBlock"])
               for s in ("PrivateSubnetA", "PrivateSubnetB", "EgressSubnetA", "EgressSubnetB")]
    assert all(subnet.subnet_of(allowed) for subnet in subnets), (allowed, subnets)
    assert allowed.subnet_of(ipaddress.ip_network(template["Resources"]["Vpc"]["Properties"]["CidrBlock"]))
    assert resolve(host, {**defaults(), "DbAppUserHost": "10.1.%"}, conditions) == "10.1.%"
    pattern = re.compile(template["Parameters"]["DbAppUserHost"]["AllowedPattern"])
    assert pattern.match("auto") and pattern.match("10.1.0.0/255.255.0.0") and pattern.match("10.1.%")
    assert not pattern.match("%"), "any host is what the parameter exists to avoid"
    assert not pattern.match("10.%' OR 1=1")


@pytest.mark.parametrize("host, accepted", [("auto", False), ("10.1.%", True)])
def test_an_existing_database_needs_the_functions_host_pattern(host, accepted):
    rule = source()["Rules"]["ExistingDatabaseIsDescribed"]
    params = {**defaults(), "DatabaseMode": "existing", "ExistingDbSecretArn": "arn", "ExistingDbHost": "db",
              "ExistingVpcId": "vpc-1", "ExistingSubnetIds": "subnet-1", "DbAppUserHost": host}
    holds = [resolve(a["Assert"], params) for a in rule["Assertions"]
             if "DbAppUserHost" in str(a["Assert"])]
    assert holds == [accepted]


# ------------------------------------------------------------------ throttles, deletion, rules


def test_login_and_registration_are_throttled_tighter_than_the_rest(stack):
    stage = stack["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    params = defaults()
    for route in ["POST /users/login", "POST /users/register"]:
        settings = stage["RouteSettings"][route]
        assert settings["ThrottlingBurstLimit"] == {"Ref": "AuthBurstLimit"}
        assert settings["ThrottlingRateLimit"] == {"Ref": "AuthRateLimit"}
    assert int(params["AuthBurstLimit"]) <= int(params["ApiBurstLimit"])
    assert int(params["AuthRateLimit"]) < int(params["ApiRateLimit"])


def test_the_cluster_is_created_unprotected_and_protected_from_the_next_deploy_on(stack):
    cluster = stack["Resources"]["DatabaseCluster"]
    assert cluster["Properties"]["DeletionProtection"] == {"Ref": "DbDeletionProtection"}
    # A plain `sam deploy` of a new stack cannot strand a protected cluster either.
    assert defaults()["DbDeletionProtection"] == "false"
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert deploy.protection_steps(deploy.Stack()) == ["false", "true"]
    assert deploy.protection_steps(deploy.Stack(exists=True)) == ["true"]


def test_a_changed_setting_reaches_the_version_each_alias_serves(stack):
    template = source()
    settings = deploy.settings_parameters(template)
    for name in ["OrderHoldSeconds", "MaxPendingOrders", "TokenTtlSeconds", "FunctionMemorySize",
                 "DbPoolSize", "DbSslMode", "DatabaseName", "EnableRdsProxy", "ExistingDbHost"]:
        assert name in settings, name
    # Not settings of a function version: protection, reservations, throttles, alarms.
    for name in ["DbDeletionProtection", "ApiFunctionConcurrency", "ApiBurstLimit", "AlarmEmail"]:
        assert name not in settings, name
    params = {k: str(v) for k, v in defaults().items()}
    digest = deploy.settings_digest(template, params)
    assert digest != deploy.settings_digest(template, {**params, "MaxPendingOrders": "11"})
    assert digest == deploy.settings_digest(template, {**params, "DbDeletionProtection": "true"})

    def versions(parameters: dict) -> dict:
        translated = translate(parameters)
        return {k: v for k, v in translated["Resources"].items() if v["Type"] == "AWS::Lambda::Version"}

    before, after = versions({"FunctionSettings": digest}), versions({"FunctionSettings": "0" * 16})
    for name in [*API_FUNCTIONS, "Docs"]:
        old = [k for k in before if k.startswith(f"{name}FunctionVersion")]
        new = [k for k in after if k.startswith(f"{name}FunctionVersion")]
        assert old and new and old != new, name
        assert stack["Resources"][f"{name}Function"]["Properties"].get("Description"), name


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


# ------------------------------------------------------------------ route throttles


def test_one_route_never_admits_more_requests_than_its_function_has_instances(stack):
    stage = stack["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}, "ThrottlingRateLimit": {"Ref": "ApiRateLimit"}}
    params = defaults()
    assert deploy.capacity_problems(source(), params) == []
    instances = int(params["ApiFunctionConcurrency"])
    assert int(params["ApiBurstLimit"]) + int(params["ApiRateLimit"]) * deploy.ROUTE_SECONDS <= instances
    assert int(params["AuthBurstLimit"]) + int(params["AuthRateLimit"]) * deploy.AUTH_SECONDS <= instances
    # The reference page reserves nothing and a page load asks for four files at once.
    for route in ["GET /docs", "GET /docs/{asset}"]:
        assert stage["RouteSettings"][route]["ThrottlingBurstLimit"] >= 4
    # What make deploy refuses: more admitted at once than instances.
    problems = deploy.capacity_problems(source(), {**params, "ApiBurstLimit": "4"})
    assert len(problems) == 1 and "500, not 429" in problems[0]


# ------------------------------------------------------------------ make deploy's checks


def account(quota: int, unreserved: int) -> dict:
    return {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": unreserved}}


CONFIG = deploy.SamConfig("shop-api", "us-east-1", None, {}, beta_features=True)


@pytest.mark.parametrize("quota, unreserved, refused", [
    (10, 10, True), (50, 50, True), (131, 131, True), (132, 132, False), (1000, 1000, False),
    # Others already reserve 900 of 1000.
    (1000, 100, True),
])
def test_a_quota_that_cannot_hold_the_reservations_is_refused(quota, unreserved, refused):
    problems = deploy.check(source(), defaults(), CONFIG, account(quota, unreserved), deploy.Stack())
    assert bool(problems) == refused, problems
    if refused:
        assert "L-B99A9384" in problems[0] and "Nothing has been created" in problems[0]


def test_an_update_counts_the_stacks_own_reservations_as_replaced_not_added():
    # The stack's 32 are reserved already: 1000 - 32 left unreserved, which must not count twice.
    stack = deploy.Stack(exists=True, parameters=defaults(), reserved={f"f{i}": 1 for i in range(32)})
    assert deploy.check(source(), defaults(), CONFIG, account(132, 100), stack) == []
    more = {**defaults(), "ApiFunctionConcurrency": "6", "DbConnectionBudget": "236"}
    lower = deploy.check(source(), more, CONFIG, account(140, 110), stack)
    assert len(lower) == 1 and "lower ApiFunctionConcurrency to 4" in lower[0], lower


def test_the_beta_opt_in_the_architecture_and_the_database_name_are_checked():
    samconfig = deploy.SamConfig.read()
    assert samconfig.beta_features, "samconfig.toml opts sam build into rust-cargolambda"
    no_beta = deploy.SamConfig("shop-api", None, None, {}, beta_features=False)
    assert "beta_features" in deploy.check(source(), defaults(), no_beta, account(1000, 1000), deploy.Stack())[0]
    previous = {**defaults(), "DatabaseName": "shop"}
    stack = deploy.Stack(exists=True, parameters=previous)
    renamed = deploy.effective_parameters(source(), {"DatabaseName": "shop2"}, stack)
    problems = deploy.check(source(), renamed, CONFIG, account(1000, 1000), stack)
    assert len(problems) == 1 and "replaces the created cluster" in problems[0]
    # What sam deploy sends: previous values for what is not overridden.
    kept = deploy.effective_parameters(source(), {}, deploy.Stack(exists=True, parameters={"Architecture": "x86_64"}))
    assert kept["Architecture"] == "x86_64"
    assert deploy.parse_overrides('A=1 B="x,y"') == {"A": "1", "B": "x,y"}


def test_a_failed_first_create_is_explained():
    failed = deploy.Stack(exists=True, status="ROLLBACK_COMPLETE")
    problems = deploy.check(source(), defaults(), CONFIG, account(1000, 1000), failed)
    assert "sam delete" in problems[0]


# ------------------------------------------------------------------ the rest of issue's list


def test_readers_sit_in_other_zones_than_the_writer_and_follow_its_capacity(stack):
    template = source()
    writer = template["Resources"]["DatabaseInstance"]["Properties"]
    readers = [template["Resources"][r] for r in ("DatabaseReader1", "DatabaseReader2")]
    assert writer["PromotionTier"] == 0
    zones = [writer["AvailabilityZone"]["Fn::Select"][0]]
    for reader in readers:
        assert reader["Properties"]["PromotionTier"] == 1
        assert reader["Properties"]["DBClusterIdentifier"] == {"Ref": "DatabaseCluster"}
        zones.append(reader["Properties"]["AvailabilityZone"]["Fn::Select"][0])
    assert zones[0] != zones[1], "the first reader is in another zone than the writer"
    conditions = template["Conditions"]
    for count, wanted in [("0", (False, False)), ("1", (True, False)), ("2", (True, True))]:
        params = {**defaults(), "DbReaderInstances": count}
        got = tuple(resolve({"Condition": r["Condition"]}, params, conditions) for r in readers)
        assert got == wanted, count
    assert readers[1]["DependsOn"] == "DatabaseReader1"


def test_the_sweep_is_not_retried_into_the_next_run(stack):
    config = of_type(stack, "AWS::Lambda::EventInvokeConfig")["SweepFunctionEventInvokeConfig"]["Properties"]
    assert config["MaximumRetryAttempts"] == 0
    assert config["MaximumEventAgeInSeconds"] <= 60


def test_secrets_say_what_happens_to_them(stack):
    for name in ["JwtSigningKey", "AppDatabaseSecret"]:
        secret = stack["Resources"][name]
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Delete", name


def test_each_function_writes_to_a_log_group_made_before_it(stack):
    functions = set(of_type(stack, "AWS::Lambda::Function"))
    for name in functions:
        group = stack["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = stack["Resources"][group]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        # Its name must not wait for the function (a Ref to it would make it come after).
        assert not any(f in str(log_group["Properties"]["LogGroupName"]) for f in functions), group
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_api_function_is_told_the_pending_order_cap(stack):
    for name in API_FUNCTIONS:
        assert env(stack, name)["MAX_PENDING_ORDERS"] == {"Ref": "MaxPendingOrders"}
        assert env(stack, name)["ORDER_HOLD_SECONDS"] == {"Ref": "OrderHoldSeconds"}
    assert int(defaults()["MaxPendingOrders"]) == 10


def test_an_idle_cluster_can_pause_with_the_defaults():
    params = {**defaults(), "DbMinCapacity": "0"}
    assert deploy.notes(params) == []
    assert deploy.notes({**params, "OrderHoldSeconds": "300"}), "a hold this short keeps it awake"


def test_loopback_receivers_are_off_by_default_and_reach_exactly_the_functions_that_check_urls(stack):
    parameter = source()["Parameters"]["WebhookAllowLoopback"]
    assert parameter["Default"] == "false" and sorted(parameter["AllowedValues"]) == ["false", "true"]
    told = {name: resource["Properties"]["Environment"]["Variables"]["WEBHOOK_ALLOW_LOOPBACK"]
            for name, resource in of_type(stack, "AWS::Lambda::Function").items()
            if "WEBHOOK_ALLOW_LOOPBACK" in resource["Properties"].get("Environment", {}).get("Variables", {})}
    # The events function checks a URL when it is saved, the delivery function at each attempt.
    assert told == {"EventsFunction": {"Ref": "WebhookAllowLoopback"},
                    "WebhookDeliveryFunction": {"Ref": "WebhookAllowLoopback"}}
    # A changed value publishes a new version of the aliased events function.
    assert "WebhookAllowLoopback" in deploy.settings_parameters(source())


def test_make_deploy_refuses_loopback_receivers_and_only_the_emulator_deploy_may_use_them():
    on = {**defaults(), "WebhookAllowLoopback": "true"}
    problems = deploy.check(source(), on, CONFIG, account(1000, 1000), deploy.Stack())
    assert len(problems) == 1 and problems[0].startswith("WebhookAllowLoopback=true is for the local emulator only")
    assert deploy.check(source(), on, CONFIG, account(1000, 1000), deploy.Stack(), emulator=True) == []
    assert deploy.check(source(), defaults(), CONFIG, account(1000, 1000), deploy.Stack()) == []
    # A stack that somehow has it keeps it on an update that does not mention it: refused too.
    kept = deploy.Stack(exists=True, parameters={"WebhookAllowLoopback": "true"})
    params = deploy.effective_parameters(source(), {}, kept)
    assert deploy.emulator_only_problems(params) == problems


def subnets_of(stack: dict, function: str, parameters: dict) -> list:
    """The subnets a function runs in, for given parameters (names of the stack's resources)."""
    names = {**{name: name for name in stack["Resources"]}, "AWS::NoValue": None, **parameters}
    value = resolve(stack["Resources"][function]["Properties"].get("VpcConfig", {}).get("SubnetIds"),
                    names, stack["Conditions"])
    return [resolve(v, names, stack["Conditions"]) for v in value] if isinstance(value, list) else value


def routes_out(stack: dict, parameters: dict) -> dict:
    """Route table -> where its default route leads, among the resources these parameters make."""
    made = lambda r: "Condition" not in r or resolve({"Condition": r["Condition"]}, parameters, stack["Conditions"])
    return {r["Properties"]["RouteTableId"]["Ref"]: r["Properties"].get("NatGatewayId", r["Properties"].get("GatewayId"))
            for r in of_type(stack, "AWS::EC2::Route").values()
            if made(r) and r["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"}


def table_of(stack: dict, subnet: str) -> str | None:
    for association in of_type(stack, "AWS::EC2::SubnetRouteTableAssociation").values():
        if association["Properties"]["SubnetId"] == {"Ref": subnet}:
            return association["Properties"]["RouteTableId"]["Ref"]
    return None


def test_only_the_webhook_delivery_function_has_a_way_out(stack):
    parameters = defaults()
    assert parameters["WebhookEgress"] == "nat" and parameters["DatabaseMode"] == "create"
    out = routes_out(stack, parameters)
    assert out == {"EgressRouteTable": {"Ref": "NatGateway"}, "PublicRouteTable": {"Ref": "InternetGateway"}}
    for name in of_type(stack, "AWS::Lambda::Function"):
        subnets = subnets_of(stack, name, parameters)
        if subnets is None:
            continue
        leads_out = {table_of(stack, s) in out for s in subnets}
        if name == "WebhookDeliveryFunction":
            assert subnets == ["EgressSubnetA", "EgressSubnetB"] and leads_out == {True}
        else:
            assert subnets == ["PrivateSubnetA", "PrivateSubnetB"] and leads_out == {False}, name
    # The gateway's own subnet is outside the hosts the application user may connect from.
    host = source()["Resources"]["MigrateFunction"]["Properties"]["Environment"]["Variables"]["APP_DB_HOST"]
    address, mask = resolve(host, parameters, source()["Conditions"]).split("/")
    allowed = ipaddress.ip_network(f"{address}/{mask}")
    public = ipaddress.ip_network(source()["Resources"]["PublicSubnet"]["Properties"]["CidrBlock"])
    assert not public.overlaps(allowed)


@pytest.mark.parametrize("changed", [{"WebhookEgress": "none"},
                                     {"DatabaseMode": "existing", "ExistingSubnetIds": ["subnet-1", "subnet-2"]}])
def test_without_egress_nothing_leads_out_and_nothing_is_billed_for_it(stack, changed):
    parameters = {**defaults(), **changed}
    assert routes_out(stack, parameters) == {}
    for kind in ("AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::InternetGateway"):
        for resource in of_type(stack, kind).values():
            assert not resolve({"Condition": resource["Condition"]}, parameters, stack["Conditions"])
    assert subnets_of(stack, "WebhookDeliveryFunction", parameters) == subnets_of(stack, "OrdersFunction", parameters)
