"""make deploy: what the account and the parameters must allow, checked before anything is
made; then `sam build` for the right processor, `sam deploy`, and the cluster's deletion
protection turned on once the stack exists.

    python3 .ci/deployed/deploy.py [--guided] [--check-only]

Refuses, saying what to change, when:
- the account's Lambda concurrency quota cannot hold the stack's reservations and the 100
  executions Lambda keeps unreserved (new accounts often have 10 or 50);
- the functions could hold more database connections than DbConnectionBudget, or a route's
  throttle admits more requests than its function has instances;
- samconfig.toml lacks the beta opt-in `sam build` needs for rust-cargolambda;
- the stack is mid-change or failed, or DatabaseName would replace the created cluster;
- a parameter is set to a value meant for the local emulator only (WebhookAllowLoopback).

The first create runs with DbDeletionProtection=false, so that a create that fails anywhere
rolls back completely (a protected cluster cannot be deleted, and the rollback would leave
it behind); the next deploy, straight after, turns protection on, and every later one keeps
it on. The built bootstraps are checked to be of the Architecture the stack is deployed
with, which `sam build` learns from here, not from parameter_overrides.

Only boto3 and samtranslator (both installed with aws-sam-cli) and the sam command.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lambda keeps this much of an account's concurrency unreserved.
MIN_UNRESERVED = 100
QUOTA_HINT = "Service Quotas > AWS Lambda > Concurrent executions (quota code L-B99A9384)"
# The p99 durations the route throttles are sized for: a route admits at most burst +
# rate x duration requests at once.
ROUTE_SECONDS = 0.2
AUTH_SECONDS = 0.5
# Seconds the sweep keeps from a hold when nothing is pending (functions/sweep).
SWEEP_MARGIN = 60
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
PROTECTION = "DbDeletionProtection"
SETTINGS = "FunctionSettings"
# Parameter values that exist for make test-deployed's emulator, each with why AWS must not
# get them. The emulator's deploy (run.py) passes emulator=True to the checks.
EMULATOR_ONLY = {
    ("WebhookAllowLoopback", "true"):
        "lets webhook endpoints be http://127.0.0.1 or http://localhost, which on AWS reach "
        "the function's own sandbox, never a receiver; it is there so that make "
        "test-deployed's emulator can deliver to a receiver on the same machine. Remove it "
        "from parameter_overrides (the default is false).",
}


def log(message: str) -> None:
    print(f"[deploy] {message}", flush=True)


# ------------------------------------------------------------------ configuration


@dataclass
class SamConfig:
    stack_name: str
    region: str | None
    profile: str | None
    overrides: dict[str, str]
    beta_features: bool

    @staticmethod
    def read(path: Path = ROOT / "samconfig.toml", env: str = "default") -> "SamConfig":
        config = tomllib.loads(path.read_text()) if path.exists() else {}
        sections = config.get(env, {})

        def setting(command: str, key: str):
            for section in (command, "global"):
                value = sections.get(section, {}).get("parameters", {}).get(key)
                if value is not None:
                    return value
            return None

        return SamConfig(
            stack_name=setting("deploy", "stack_name") or "shop-api",
            region=setting("deploy", "region"),
            profile=setting("deploy", "profile"),
            overrides=parse_overrides(setting("deploy", "parameter_overrides") or ""),
            beta_features=setting("build", "beta_features") is True,
        )


def parse_overrides(text: str | list) -> dict[str, str]:
    """`Key=Value Key2="a,b"` (samconfig's form) or a list of such items."""
    items = text if isinstance(text, list) else shlex.split(text)
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"deploy: parameter_overrides item {item!r} is not Key=Value")
        pairs[key] = value
    return pairs


def template() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((ROOT / "template.yaml").read_text())


@dataclass
class Stack:
    """What the account already has of the stack."""

    exists: bool = False
    status: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    # Reserved concurrency of each of its functions now (by physical name).
    reserved: dict[str, int] = field(default_factory=dict)


def effective_parameters(template: dict, overrides: dict, stack: Stack) -> dict[str, str]:
    """What CloudFormation will use: the defaults, the stack's values for what is not
    overridden (sam deploy sends UsePreviousValue), then the overrides."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update({k: v for k, v in stack.parameters.items() if k in values})
    values.update(overrides)
    return values


def resolve(value, params: dict) -> int:
    if isinstance(value, dict) and "Ref" in value:
        return int(params[value["Ref"]])
    return int(value)


def reservations(template: dict, params: dict) -> dict[str, tuple[int, str | None]]:
    """Each function's reserved concurrency, and the parameter it comes from (if any)."""
    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        reserved = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        source = reserved.get("Ref") if isinstance(reserved, dict) else None
        found[name] = (resolve(reserved, params), source)
    return found


def connection_bound(template: dict, params: dict) -> int:
    """The most connections the functions can hold: every function that opens database
    connections reserves concurrency, each instance holds up to DbPoolSize connections,
    and as many retiring instances again may keep theirs until the server's wait_timeout."""
    instances = sum(n for n, _ in reservations(template, params).values())
    return 2 * int(params["DbPoolSize"]) * instances


def settings_parameters(template: dict) -> set[str]:
    """The parameters the functions' configuration is made of: those Globals and each
    function's environment name, directly, in a `!Sub` or through a condition."""
    names = set(template["Parameters"]) - {SETTINGS}
    found: set[str] = set()
    conditions: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and value in names:
                    found.add(value)
                elif key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    found.update(n for n in re.findall(r"\$\{([^}.!]+)\}", text) if n in names)
                elif key in ("Fn::If", "Condition"):
                    conditions.add(value[0] if isinstance(value, list) else value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template["Globals"]["Function"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource.get("Properties", {})
            walk({key: properties.get(key) for key in ("Environment", "MemorySize", "Timeout")})
    seen: set[str] = set()
    while conditions - seen:
        condition = (conditions - seen).pop()
        seen.add(condition)
        walk(template["Conditions"][condition])
    return found


def settings_digest(template: dict, params: dict) -> str:
    """FunctionSettings: changes exactly when one of the functions' settings does."""
    text = "\n".join(f"{name}={params[name]}" for name in sorted(settings_parameters(template)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ the checks


def check(template: dict, params: dict, config: SamConfig, account: dict, stack: Stack,
          emulator: bool = False) -> list[str]:
    """Every reason to refuse the deploy, each saying what to change."""
    problems = [] if emulator else emulator_only_problems(params)
    if stack.status:
        if stack.status == "ROLLBACK_COMPLETE":
            problems.append(
                f"Stack {config.stack_name}: its first create failed and rolled back; nothing of it "
                f"is left but the stack's record (the cluster was created without deletion "
                f"protection). Delete the record with `sam delete --stack-name {config.stack_name}`, "
                f"then deploy again.")
        elif stack.status.endswith("_IN_PROGRESS"):
            problems.append(f"Stack {config.stack_name} is {stack.status}: wait for it to finish.")
        elif stack.status.endswith("_FAILED"):
            problems.append(
                f"Stack {config.stack_name} is {stack.status}: see its events "
                f"(aws cloudformation describe-stack-events --stack-name {config.stack_name}) and "
                f"repair it first.")
    if not config.beta_features:
        problems.append(
            "samconfig.toml: add `beta_features = true` under [default.build.parameters]. The "
            "functions build with rust-cargolambda, a beta build method: without the opt-in "
            "sam build asks for it and fails when nobody can answer.")
    if params["Architecture"] not in ELF_MACHINE:
        problems.append(f"Architecture={params['Architecture']}: use arm64 or x86_64.")
    problems += concurrency_problems(template, params, account, stack)
    problems += capacity_problems(template, params)
    if (stack.exists and params.get("DatabaseMode") == "create"
            and stack.parameters.get("DatabaseName") not in (None, params["DatabaseName"])):
        problems.append(
            f"DatabaseName {stack.parameters['DatabaseName']} -> {params['DatabaseName']}: that "
            f"replaces the created cluster with a new, empty one (the old one is kept only as its "
            f"final snapshot). Put DatabaseName back; to start over on purpose, run sam deploy "
            f"yourself.")
    return problems


def emulator_only_problems(params: dict) -> list[str]:
    return [f"{name}={value} is for the local emulator only: it {why}"
            for (name, value), why in EMULATOR_ONLY.items() if params.get(name) == value]


def concurrency_problems(template: dict, params: dict, account: dict, stack: Stack) -> list[str]:
    limit = account["AccountLimit"]
    quota, unreserved = int(limit["ConcurrentExecutions"]), int(limit["UnreservedConcurrentExecutions"])
    # The stack's own reservations are replaced by the template's, not added to them.
    others = quota - unreserved - sum(stack.reserved.values())
    reserved = reservations(template, params)
    need = sum(n for n, _ in reserved.values())
    if quota - others - need >= MIN_UNRESERVED:
        return []
    scaled = [name for name, (_, source) in reserved.items() if source == "ApiFunctionConcurrency"]
    fixed = need - sum(reserved[name][0] for name in scaled)
    room = quota - others - fixed - MIN_UNRESERVED
    lower = (f" or lower ApiFunctionConcurrency to {room // len(scaled)}"
             if scaled and room // len(scaled) >= 1 else "")
    taken = f", {others} of them reserved by other functions" if others else ""
    return [
        f"Lambda concurrency: this account allows {quota} concurrent executions{taken}. The stack "
        f"reserves {need} ({len(scaled)} API functions x ApiFunctionConcurrency "
        f"{params['ApiFunctionConcurrency']}, {fixed} for the sweep and migrations) and Lambda "
        f"keeps {MIN_UNRESERVED} unreserved: {others + need + MIN_UNRESERVED} needed. Ask for "
        f"more ({QUOTA_HINT}; AWS raises new accounts to 1000 on request){lower}. Nothing has "
        f"been created."]


def capacity_problems(template: dict, params: dict) -> list[str]:
    problems = []
    bound, budget = connection_bound(template, params), int(params["DbConnectionBudget"])
    if bound > budget:
        problems.append(
            f"Database connections: the functions can hold {bound} (2 x DbPoolSize "
            f"{params['DbPoolSize']} x {bound // (2 * int(params['DbPoolSize']))} reserved "
            f"instances: the live ones and as many retiring) but DbConnectionBudget is {budget}. "
            f"Lower ApiFunctionConcurrency or DbPoolSize, or raise DbMaxCapacity and the budget.")
    instances = int(params["ApiFunctionConcurrency"])
    for label, burst, rate, seconds in [
        ("ApiBurstLimit + ApiRateLimit", "ApiBurstLimit", "ApiRateLimit", ROUTE_SECONDS),
        ("AuthBurstLimit + AuthRateLimit", "AuthBurstLimit", "AuthRateLimit", AUTH_SECONDS),
    ]:
        admitted = int(params[burst]) + math.ceil(int(params[rate]) * seconds)
        if admitted > instances:
            problems.append(
                f"Throttles: one route admits {params[burst]} + {params[rate]}/s x {seconds} s = "
                f"{admitted} requests at once, more than the {instances} instances its function "
                f"reserves (ApiFunctionConcurrency): the rest would be Lambda throttles, which "
                f"API Gateway answers with 500, not 429. Lower {label.replace(' + ', ' or ')}, or "
                f"raise ApiFunctionConcurrency.")
    return problems


def notes(params: dict) -> list[str]:
    """What deploys but is probably not meant."""
    hold, pause = int(params["OrderHoldSeconds"]), int(params["DbAutoPauseSeconds"])
    if params.get("DatabaseMode") == "create" and float(params["DbMinCapacity"]) == 0 \
            and hold - SWEEP_MARGIN <= pause:
        return [f"DbMinCapacity=0 but OrderHoldSeconds ({hold}) - {SWEEP_MARGIN} s is not longer "
                f"than DbAutoPauseSeconds ({pause}): the sweep's looks keep the cluster from "
                f"ever pausing."]
    return []


# ------------------------------------------------------------------ the account


def session(config: SamConfig):
    import boto3

    return boto3.session.Session(profile_name=config.profile, region_name=config.region)


def account_settings(aws) -> dict:
    return aws.client("lambda").get_account_settings()


def existing_stack(aws, name: str) -> Stack:
    cloudformation, lambda_ = aws.client("cloudformation"), aws.client("lambda")
    try:
        found = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return Stack()
        raise
    stack = Stack(exists=True, status=found["StackStatus"],
                  parameters={p["ParameterKey"]: p.get("ParameterValue", "")
                              for p in found.get("Parameters", [])})
    if stack.status in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
        return stack
    if stack.status.endswith("_COMPLETE"):
        stack.status = None
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
    for page in pages:
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] == "AWS::Lambda::Function":
                function = resource["PhysicalResourceId"]
                answer = lambda_.get_function_concurrency(FunctionName=function)
                if answer.get("ReservedConcurrentExecutions") is not None:
                    stack.reserved[function] = int(answer["ReservedConcurrentExecutions"])
    return stack


@dataclass
class Plan:
    config: SamConfig
    stack: Stack
    params: dict[str, str]
    problems: list[str]
    notes: list[str]
    settings: str


def preflight(config: SamConfig, aws, emulator: bool = False) -> Plan:
    source = template()
    stack = existing_stack(aws, config.stack_name)
    params = effective_parameters(source, config.overrides, stack)
    problems = check(source, params, config, account_settings(aws), stack, emulator)
    return Plan(config, stack, params, problems, notes(params), settings_digest(source, params))


# ------------------------------------------------------------------ build and deploy


def bootstrap_machine(path: Path) -> int:
    """The ELF header's e_machine (little-endian)."""
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        raise SystemExit(f"deploy: {path} is not an executable")
    return int.from_bytes(header[18:20], "little")


def check_build(build_dir: Path, architecture: str) -> None:
    wanted = ELF_MACHINE[architecture]
    bootstraps = sorted(build_dir.glob("*/bootstrap"))
    if not bootstraps:
        raise SystemExit(f"deploy: no bootstrap under {build_dir}")
    wrong = [str(b) for b in bootstraps if bootstrap_machine(b) != wanted]
    if wrong:
        raise SystemExit(f"deploy: built for another processor than Architecture={architecture}: {wrong}")
    log(f"{len(bootstraps)} bootstraps, all {architecture}")


def protection_steps(stack: Stack) -> list[str]:
    """DbDeletionProtection for each sam deploy this deploy runs: false for the first
    create, then true at once; true for every later deploy. With an existing database
    there is no cluster, and the second step changes nothing."""
    return ["true"] if stack.exists else ["false", "true"]


def deploy(plan: Plan, sam_deploy) -> None:
    """`sam_deploy(overrides, first)` runs one deploy with these parameter overrides."""
    ignored = plan.config.overrides.get(PROTECTION)
    if ignored is not None:
        log(f"{PROTECTION}={ignored} in samconfig.toml is not used: make deploy protects the "
            f"cluster from the moment the stack exists (see README, Tearing down)")
    for number, protection in enumerate(protection_steps(plan.stack)):
        overrides = {**plan.config.overrides, PROTECTION: protection, SETTINGS: plan.settings}
        if number:
            log("the stack exists: turning the cluster's deletion protection on")
        sam_deploy(overrides, number == 0)


def sam(*args: str) -> None:
    command = ["sam", *args]
    log(" ".join(shlex.quote(a) for a in command))
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guided", action="store_true", help="sam deploy --guided")
    parser.add_argument("--check-only", action="store_true", help="the checks, nothing more")
    args = parser.parse_args()
    config = SamConfig.read()
    try:
        aws = session(config)
        plan = preflight(config, aws)
    except Exception as error:  # no region, no credentials, no network
        raise SystemExit(f"deploy: cannot read the account ({error}). Set the region and "
                         f"credentials (aws configure, or region in samconfig.toml).")
    for note in plan.notes:
        log(f"note: {note}")
    if plan.problems:
        print("make deploy refused, before anything was built or made:", file=sys.stderr)
        for problem in plan.problems:
            print(f"- {problem}", file=sys.stderr)
        raise SystemExit(2)
    architecture = plan.params["Architecture"]
    log(f"checks passed: stack {config.stack_name} "
        f"({'update' if plan.stack.exists else 'create'}), {architecture}")
    if args.check_only:
        return
    sam("build", "--parameter-overrides", f"Architecture={architecture}")
    check_build(ROOT / ".aws-sam" / "build", architecture)

    def sam_deploy(overrides: dict, first: bool) -> None:
        flags = ["--guided"] if args.guided and first else []
        if not first:
            # Only the protection changes, which the first deploy's changeset showed.
            flags.append("--no-confirm-changeset")
            if args.guided:
                # What the guided deploy saved, not what samconfig.toml held before it.
                overrides = {**SamConfig.read().overrides, PROTECTION: overrides[PROTECTION],
                             SETTINGS: overrides[SETTINGS]}
        sam("deploy", *flags, "--parameter-overrides", *[f"{k}={v}" for k, v in overrides.items()])

    deploy(plan, sam_deploy)


if __name__ == "__main__":
    main()
