"""What the local AWS emulator (MiniStack 1.5.33) needs that AWS does not.

Nothing here touches template.yaml or what `sam deploy` sends to AWS: `for_emulator`
rewrites a packaged copy of the template, for the emulator only, and `after_deploy`
re-applies settings the emulator's CloudFormation stores but does not apply. Each
workaround names the emulator gap it covers; drop it when the emulator closes the gap.
"""

from __future__ import annotations

import copy
import json
import sys
from types import SimpleNamespace

from samtranslator.translator.transform import transform

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method"}


def for_emulator(packaged: dict, parameters: dict, endpoint: str) -> dict:
    """The packaged SAM template, translated as CloudFormation would (with these parameter
    values), then made deployable on the emulator at `endpoint`."""
    template = transform(copy.deepcopy(packaged), parameters, SimpleNamespace(load=lambda: {}))
    _point_functions_at(template, endpoint)
    _drop_codedeploy(template)
    _drop_metric_math_alarms(template)
    _expand_http_api_routes(template)
    return template


def _point_functions_at(template: dict, endpoint: str) -> None:
    """Gap: functions are not told where the emulated services are; the AWS SDK would look
    up secretsmanager.<region>.amazonaws.com. AWS_ENDPOINT_URL, which the SDK honours, sends
    them to the emulator instead."""
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            variables["AWS_ENDPOINT_URL"] = endpoint


def _drop_codedeploy(template: dict) -> None:
    """Gap: no CodeDeploy ("Unrecognized resource types: AWS::CodeDeploy::*"). Canary deploys
    (DeploymentPreference) become plain alias updates; the aliases themselves stay."""
    resources = template["Resources"]
    dropped = {k for k, r in resources.items() if r["Type"].startswith("AWS::CodeDeploy::")}
    dropped |= {"CodeDeployServiceRole"} & set(resources)
    for name in dropped:
        del resources[name]
    for name, resource in resources.items():
        resource.pop("UpdatePolicy", None)
        depends = resource.get("DependsOn")
        if depends:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in dropped]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")
        if _names_any(resource, dropped):
            sys.exit(f"emulator workaround: {name} still refers to a dropped CodeDeploy resource")
    print(f"emulator: dropped {len(dropped)} CodeDeploy resources", file=sys.stderr)


def _drop_metric_math_alarms(template: dict) -> None:
    """Gap: alarms over metric math ("metric math is not supported")."""
    resources = template["Resources"]
    dropped = [k for k, r in resources.items()
               if r["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in r.get("Properties", {})]
    for name in dropped:
        del resources[name]
    print(f"emulator: dropped metric-math alarms {dropped}", file=sys.stderr)


def _expand_http_api_routes(template: dict) -> None:
    """Gap: the OpenAPI `Body` SAM generates for an HttpApi is ignored (the API would have no
    routes). Each path and method becomes an explicit Route with its Integration."""
    resources = template["Resources"]
    for api_name, api in list(resources.items()):
        if api["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        props = api["Properties"]
        body = props.pop("Body", None)
        if not body:
            continue
        props.setdefault("Name", body.get("info", {}).get("title", api_name))
        props.setdefault("ProtocolType", "HTTP")
        cors = body.get("x-amazon-apigateway-cors")
        if cors:
            props["CorsConfiguration"] = {
                key[0].upper() + key[1:]: value for key, value in cors.items()
            }
        integrations: dict[str, str] = {}
        routes = 0
        for path, operations in body.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in METHODS:
                    continue
                integration = operation["x-amazon-apigateway-integration"]
                key = json.dumps(integration["uri"], sort_keys=True)
                if key not in integrations:
                    name = f"{api_name}EmulatorIntegration{len(integrations)}"
                    resources[name] = {
                        "Type": "AWS::ApiGatewayV2::Integration",
                        "Properties": {
                            "ApiId": {"Ref": api_name},
                            "IntegrationType": "AWS_PROXY",
                            "IntegrationUri": integration["uri"],
                            "PayloadFormatVersion": integration.get("payloadFormatVersion", "2.0"),
                        },
                    }
                    integrations[key] = name
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                routes += 1
                resources[f"{api_name}EmulatorRoute{routes}"] = {
                    "Type": "AWS::ApiGatewayV2::Route",
                    "Properties": {
                        "ApiId": {"Ref": api_name},
                        "RouteKey": "$default" if path == "/$default" else f"{verb} {path}",
                        "Target": {"Fn::Join": ["/", ["integrations", {"Ref": integrations[key]}]]},
                    },
                }
        print(f"emulator: {api_name} expanded into {routes} routes, {len(integrations)} integrations",
              file=sys.stderr)


def _names_any(node, names: set[str]) -> bool:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in names:
                return True
            if key == "Fn::GetAtt" and (value[0] if isinstance(value, list) else str(value).split(".")[0]) in names:
                return True
            if key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str) and any("${" + n for n in names if "${" + n in text):
                    return True
            if _names_any(value, names):
                return True
    elif isinstance(node, list):
        return any(_names_any(item, names) for item in node)
    return False


def after_deploy(clients, stack: str, template: dict, parameters: dict) -> None:
    """Gap: the emulator's CloudFormation stores, but does not apply, an HttpApi's CORS
    configuration, its stage's route settings and a function's reserved concurrency. Apply
    them through the service APIs, from the deployed template's own values."""
    cfn, apigw, lam = clients.cloudformation, clients.apigatewayv2, clients.lambda_
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
                for r in page["StackResourceSummaries"]}

    defaults = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}
    known = {**defaults, **parameters}

    def value(v):
        return known[v["Ref"]] if isinstance(v, dict) and "Ref" in v else v

    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if name not in physical:
            continue
        if resource["Type"] == "AWS::ApiGatewayV2::Api" and "CorsConfiguration" in props:
            cors = {k: value(v) for k, v in props["CorsConfiguration"].items()}
            for k in ("AllowOrigins", "AllowMethods", "AllowHeaders", "ExposeHeaders"):
                if isinstance(cors.get(k), str):
                    cors[k] = [item.strip() for item in cors[k].split(",")]
            apigw.update_api(ApiId=physical[name], CorsConfiguration=cors)
        elif resource["Type"] == "AWS::ApiGatewayV2::Stage":
            api = physical[props["ApiId"]["Ref"]]
            settings = {
                "DefaultRouteSettings": {k: int(value(v)) for k, v in props.get("DefaultRouteSettings", {}).items()},
                "RouteSettings": {
                    route: {k: int(value(v)) for k, v in s.items()}
                    for route, s in props.get("RouteSettings", {}).items()
                },
            }
            apigw.update_stage(ApiId=api, StageName=props["StageName"], **settings)
        elif resource["Type"] == "AWS::Lambda::Function" and "ReservedConcurrentExecutions" in props:
            reserved = int(value(props["ReservedConcurrentExecutions"]))
            lam.put_function_concurrency(FunctionName=physical[name], ReservedConcurrentExecutions=reserved)
