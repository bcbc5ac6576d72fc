"""make test-deployed: the real template.yaml, built by `sam build` and deployed by `sam
deploy` to a local AWS emulator (MiniStack), then used through the emulator's API Gateway.

The database is DB_SERVER's MariaDB, in DatabaseMode=existing (the emulator runs no RDS):
its master credentials go into a secret in the emulator, and the VPC and subnets the
template asks for are stand-ins created there. What the emulator cannot do is worked around
in emulator_workarounds.py, never in template.yaml.

In order:
1. make deploy's checks (deploy.py, run as make deploy runs it) against an emulator whose
   account allows 50 concurrent executions: refused, with the message, before any stack,
   function or bucket exists and before sam is run at all.
2. Deploy 1, through make deploy's own steps (checks, then a create without deletion
   protection, then the protection deploy), with the emulator's own account answer.
3. The stack in use: routes, migrations and the application user's grants, the first admin,
   a walk through every function, the sweep (a look, then a skipped run), webhooks from the
   outbox through the relay, SQS and the delivery function to a receiver on this machine
   (webhooks.py), alarms.
4. Deploy 2 (a parameter change, so every API function publishes a version) while the old
   instances are frozen, as Lambda freezes them, with their connections open: the count
   rises, then falls back once the server's wait_timeout has ended the frozen ones'
   sessions, within the budget throughout. Each function's deployment alarm follows its
   alias to the new version.
5. schemathesis through the emulated API Gateway; a rotation of the signing key.

Environment: DB_SERVER (mysql://root@127.0.0.1:3306), BUILD=0 to reuse the last build,
KEEP=1 to leave the emulator running at the end (it prints how to reach it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import boto3
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).parent))
import deploy as make_deploy  # noqa: E402  (make deploy's checks and steps)
from emulator_workarounds import after_deploy, for_emulator  # noqa: E402
from walk import call, login, walk  # noqa: E402
from webhooks import check_webhooks  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("DEPLOYED_WORK", Path.home() / ".cache/shop-api/deployed"))
STACK = "shop-deployed"
DATABASE = "shop_deployed"
REGION = "us-east-1"
ADMIN = ("admin@deployed.test", "deployed-admin-password-1")
SERVER = urllib.parse.urlsplit(os.environ.get("DB_SERVER", "mysql://root@127.0.0.1:3306"))
# The functions run on this host: the application user is limited to it.
APP_HOST = "127.0.0.1"
API_FUNCTIONS = ["Products", "Categories", "Users", "Cart", "Orders", "Payments", "Reviews", "Discounts"]


def log(message: str) -> None:
    print(f"[test-deployed {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fail(message: str) -> None:
    raise SystemExit(f"test-deployed: FAILED: {message}")


def run(*args: str, env: dict | None = None, cwd: Path = ROOT, quiet: bool = False, on_failure=None) -> str:
    result = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        print(result.stdout[-6000:], file=sys.stderr)
        if on_failure:
            on_failure()
        fail(f"{' '.join(args[:3])} ... exited {result.returncode}")
    if not quiet:
        print(result.stdout[-1500:].rstrip())
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the emulator


class Emulator:
    """MiniStack on loopback, in a process group of its own: every function process it
    starts joins the group, so stopping the group stops them all, whatever happened.
    `account_concurrency` is what its Lambda answers as the account's quota."""

    def __init__(self, account_concurrency: int, name: str = "ministack") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.account_concurrency = account_concurrency
        self.name = name

    def start(self) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
               "MINISTACK_HOST": "127.0.0.1", "IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0",
               "LAMBDA_ACCOUNT_CONCURRENCY": str(self.account_concurrency)}
        self.logfile = WORK / f"{self.name}.log"
        output = open(self.logfile, "w")
        ministack = Path(sys.executable).with_name("ministack")
        self.process = subprocess.Popen([str(ministack)], env=env, stdout=output, stderr=output,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{self.endpoint}/_ministack/health", timeout=1)
                log(f"{self.name} on {self.endpoint} (process group {self.process.pid}; "
                    f"account concurrency {self.account_concurrency})")
                return
            except OSError:
                if self.process.poll() is not None:
                    fail(f"the emulator exited: {self.logfile.read_text()[-2000:]}")
                time.sleep(0.5)
        fail("the emulator did not answer")

    def function_processes(self) -> dict[int, dict]:
        """The function processes (bootstraps) running code the emulator unpacked, each with
        the function name and version the emulator gave it."""
        marker = f"/tmp/ministack-provided-code-{self.port}/"
        listing = subprocess.run(["ps", "-eo", "pid=,args="], text=True, capture_output=True).stdout
        found = {}
        for line in listing.splitlines():
            if marker not in line:
                continue
            pid = int(line.split()[0])
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            variables = dict(item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item)
            found[pid] = {"function": variables.get("AWS_LAMBDA_FUNCTION_NAME"),
                          "version": variables.get("AWS_LAMBDA_FUNCTION_VERSION")}
        return found

    def stop_function(self, name: str) -> None:
        """Ends one function's instances."""
        for pid, found in self.function_processes().items():
            if found["function"] == name:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)

    def stop_functions(self) -> None:
        """Ends every function instance, as Lambda does to idle ones: the next request to each
        is a cold start."""
        for pid in self.function_processes():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1)
        # A function process that left the group would still run code unpacked for this port.
        for pid in self.function_processes():
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(f"/tmp/ministack-provided-code-{self.port}/", ignore_errors=True)
        self.process = None
        log(f"{self.name} stopped, with every function process it started")


def clients(endpoint: str) -> SimpleNamespace:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    make = lambda name: session.client(name, endpoint_url=endpoint)  # noqa: E731
    return SimpleNamespace(
        cloudformation=make("cloudformation"), apigatewayv2=make("apigatewayv2"),
        lambda_=make("lambda"), s3=make("s3"), ec2=make("ec2"), secrets=make("secretsmanager"),
        events=make("events"), cloudwatch=make("cloudwatch"), sns=make("sns"),
        endpoint=endpoint, client=make,
    )


# ------------------------------------------------------------------ the database


def mysql(sql: str, database: str | None = None) -> str:
    client = shutil.which("mariadb") or shutil.which("mysql")
    args = [client, "--protocol=TCP", "-h", SERVER.hostname or "127.0.0.1", "-P", str(SERVER.port or 3306),
            "-u", urllib.parse.unquote(SERVER.username or "root"), "-N", "-B", "-e", sql]
    if database:
        args.append(database)
    env = {"MYSQL_PWD": urllib.parse.unquote(SERVER.password or "")}
    return run(*args, env=env, quiet=True).strip()


def drop_app_users() -> None:
    for host in mysql("SELECT Host FROM mysql.user WHERE User = 'shop_app'").split():
        mysql(f"DROP USER 'shop_app'@'{host}'")


def fresh_database() -> None:
    mysql(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE}")
    drop_app_users()


def app_connections() -> dict[int, str]:
    """The application user's sessions: id -> command."""
    rows = mysql("SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE USER = 'shop_app'")
    return {int(line.split()[0]): line.split()[1] for line in rows.splitlines() if line.strip()}


# ------------------------------------------------------------------ 1. the checks refuse


def refused_without_quota() -> None:
    """make deploy's checks, run as make deploy runs them, against an account with 50
    concurrent executions: refused before sam is run and before anything exists."""
    low = Emulator(account_concurrency=50, name="ministack-low-quota")
    low.start()
    try:
        aws = clients(low.endpoint)
        settings = aws.lambda_.get_account_settings()["AccountLimit"]
        log(f"the emulator's GetAccountSettings: {settings}")
        with tempfile.TemporaryDirectory() as tools:
            # A `sam` that only records that it was run.
            ran = Path(tools) / "sam-ran"
            fake = Path(tools) / "sam"
            fake.write_text(f"#!/bin/sh\necho \"$@\" >> {ran}\nexit 1\n")
            fake.chmod(0o755)
            env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "AWS_ENDPOINT_URL": low.endpoint,
                   "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": REGION}
            result = subprocess.run([sys.executable, str(ROOT / ".ci/deployed/deploy.py")], cwd=ROOT,
                                    env=env, text=True, capture_output=True)
            if result.returncode != 2 or "allows 50 concurrent executions" not in result.stderr:
                fail(f"make deploy's checks did not refuse a quota of 50: {result.returncode}\n"
                     f"{result.stdout}\n{result.stderr}")
            if ran.exists():
                fail(f"sam was run before the refusal: {ran.read_text()}")
        stacks = aws.cloudformation.list_stacks()["StackSummaries"]
        functions = aws.lambda_.list_functions()["Functions"]
        buckets = aws.s3.list_buckets()["Buckets"]
        if stacks or functions or buckets:
            fail(f"the refused deploy left {stacks} {functions} {buckets}")
        message = [line for line in result.stderr.splitlines() if "Lambda concurrency" in line]
        log(f"refused before anything was made: {message[0].strip()[:160]}...")
    finally:
        low.stop()


# ------------------------------------------------------------------ build and deploy


def build() -> Path:
    build_dir = WORK / "build"
    if os.environ.get("BUILD") == "0" and (build_dir / "template.yaml").exists():
        log("reusing the last build (BUILD=0)")
        return build_dir
    log("sam build (x86_64: the emulator runs the bootstraps on this host)")
    started = time.time()
    # The beta opt-in comes from samconfig.toml, as for make deploy.
    run("sam", "build", "--parameter-overrides", "Architecture=x86_64",
        "--build-dir", str(build_dir), env={"SAM_BUILD_MODE": "debug", "SAM_CLI_TELEMETRY": "0"}, quiet=True)
    # Debug bootstraps carry ~200 MB of symbols each; the emulator unpacks every one.
    for bootstrap in build_dir.glob("*/bootstrap"):
        subprocess.run(["strip", str(bootstrap)], check=True)
    make_deploy.check_build(build_dir, "x86_64")
    log(f"built in {time.time() - started:.0f} s")
    return build_dir


def emulator_deploy(aws: SimpleNamespace, build_dir: Path, bucket: str, parameters: dict) -> dict:
    packaged = WORK / "packaged.yaml"
    run("sam", "package", "--template-file", str(build_dir / "template.yaml"), "--s3-bucket", bucket,
        "--output-template-file", str(packaged), env={"SAM_CLI_TELEMETRY": "0",
                                                       "AWS_ENDPOINT_URL": aws.endpoint}, quiet=True)
    template = for_emulator(yaml_parse(packaged.read_text()), parameters, aws.endpoint)
    deployed = WORK / "emulator-template.json"
    deployed.write_text(json.dumps(template, indent=1))
    overrides = [f"{k}={v}" for k, v in parameters.items()]
    started = time.time()
    run("sam", "deploy", "--template-file", str(deployed), "--stack-name", STACK, "--s3-bucket", bucket,
        "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND", "--no-fail-on-empty-changeset",
        "--no-confirm-changeset", "--parameter-overrides", *overrides,
        env={"SAM_CLI_TELEMETRY": "0", "AWS_ENDPOINT_URL": aws.endpoint}, quiet=True,
        on_failure=lambda: failed_resources(aws))
    log(f"sam deploy: {time.time() - started:.1f} s")
    after_deploy(aws, STACK, template, parameters)
    return template


def deploy_as_make_deploy(aws: SimpleNamespace, build_dir: Path, bucket: str, parameters: dict) -> dict:
    """make deploy's checks against the emulator's account, then its steps, each run as an
    emulator deploy. Returns what it saw: the protection of each step and the time."""
    config = make_deploy.SamConfig.read()
    config.stack_name, config.region, config.overrides = STACK, REGION, parameters
    plan = make_deploy.preflight(config, aws, emulator=True)
    if plan.problems:
        fail(f"make deploy's checks refused the emulator deploy: {plan.problems}")
    steps = []
    started = time.time()

    def sam_deploy(overrides: dict, first: bool) -> None:
        emulator_deploy(aws, build_dir, bucket, overrides)
        steps.append(stack_parameters(aws)[make_deploy.PROTECTION])

    make_deploy.deploy(plan, sam_deploy)
    return {"protection": steps, "seconds": time.time() - started, "reserved_before": plan.stack.reserved}


def failed_resources(aws: SimpleNamespace) -> None:
    """What went wrong, resource by resource, and the emulator's own account of it."""
    try:
        events = aws.cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
    except Exception as error:  # the stack may not exist at all
        print(f"no stack events: {error}", file=sys.stderr)
        return
    for event in reversed(events):
        if event["ResourceStatus"].endswith("FAILED"):
            print(f"  {event['LogicalResourceId']}: {event.get('ResourceStatusReason')}", file=sys.stderr)
    print((WORK / "ministack.log").read_text()[-3000:], file=sys.stderr)


def stack_parameters(aws: SimpleNamespace) -> dict:
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}


def outputs(aws: SimpleNamespace) -> dict:
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def resources(aws: SimpleNamespace) -> dict:
    pages = aws.cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK)
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for page in pages for r in page["StackResourceSummaries"]}


# ------------------------------------------------------------------ checks


def expected_routes() -> set[str]:
    """Every route the contract has, each path's ANY (for 405s) and $default (for 404s)."""
    spec = json.loads((ROOT / "openapi.json").read_text())
    routes = {"$default"}
    for path, operations in spec["paths"].items():
        routes.add(f"ANY {path}")
        routes |= {f"{m.upper()} {path}" for m in operations if m in ("get", "post", "put", "delete", "patch")}
    return routes


def check_routes(aws: SimpleNamespace, api_id: str) -> None:
    deployed = {r["RouteKey"] for r in aws.apigatewayv2.get_routes(ApiId=api_id)["Items"]}
    missing, extra = expected_routes() - deployed, deployed - expected_routes()
    if missing or extra:
        fail(f"the deployed routes differ from the contract: missing {sorted(missing)}, unexpected {sorted(extra)}")
    log(f"routes: {len(deployed)} deployed, exactly the contract's")


def check_migration() -> None:
    tables = set(mysql("SHOW TABLES", DATABASE).split())
    wanted = {"users", "categories", "products", "cart_items", "orders", "order_items", "payments",
              "reviews", "login_throttle", "idempotency_keys", "_sqlx_migrations"}
    if not wanted <= tables:
        fail(f"the migrate custom resource left tables missing: {sorted(wanted - tables)}")
    hosts = mysql("SELECT Host FROM mysql.user WHERE User = 'shop_app'").split()
    if hosts != [APP_HOST]:
        fail(f"the application user exists at {hosts}, not only at {APP_HOST}")
    grants = mysql(f"SHOW GRANTS FOR 'shop_app'@'{APP_HOST}'").splitlines()
    tables_granted = {line.split("`.`")[1].split("`")[0] for line in grants if "`.`" in line}
    records = {"_sqlx_migrations", "data_migrations"}
    if tables_granted != tables - records:
        fail(f"table grants {sorted(tables_granted)} are not every table but the migrations' records")
    if any("ALL PRIVILEGES" in g or f"`{DATABASE}`.*" in g or "CREATE" in g or "DROP" in g for g in grants):
        fail(f"the application user has other rights than data ones: {grants}")
    log(f"migrations: {len(tables)} tables; the functions' user may read and write each but "
        f"the migrations' records, from {APP_HOST} only")


def invoke(aws: SimpleNamespace, function: str, payload: dict) -> dict:
    for _ in range(10):
        try:
            answer = aws.lambda_.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
            break
        except aws.lambda_.exceptions.TooManyRequestsException:
            # The schedule's own run of a function that reserves one instance.
            time.sleep(1)
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        fail(f"{function} failed: {body}")
    return body


def check_sweep(aws: SimpleNamespace, physical: dict, order: int) -> None:
    """The schedule exists; an operator's run settles an expired hold at once; a scheduled
    run right after it leaves the database alone."""
    rules = aws.events.list_rules()["Rules"]
    if not any(r.get("ScheduleExpression") == "rate(1 minute)" for r in rules):
        fail(f"no every-minute schedule among {rules}")
    mysql(f"UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = {order}", DATABASE)
    report = invoke(aws, physical["SweepFunction"], {})
    status = mysql(f"SELECT status FROM orders WHERE id = {order}", DATABASE)
    if report.get("expired_orders", 0) < 1 or status != "cancelled" or report.get("skipped"):
        fail(f"the sweep did not settle the expired order: {report}, status {status}")
    scheduled = invoke(aws, physical["SweepFunction"], {"source": "aws.events", "detail-type": "Scheduled Event"})
    if not scheduled.get("skipped") or scheduled.get("next_look_in_seconds", 0) < 60:
        fail(f"a scheduled run right after a look did not skip: {scheduled}")
    log(f"sweep: an operator's run {report}; the next scheduled run {scheduled}")


def check_alias_alarms(aws: SimpleNamespace, physical: dict, version: str) -> None:
    """Each deployed function's errors alarm watches its live alias, for the version the
    alias runs."""
    alarms = {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}
    for name in [*API_FUNCTIONS, "Docs"]:
        function = physical[f"{name}Function"]
        alias = aws.lambda_.get_alias(FunctionName=function, Name="live")
        alarm = alarms[physical[f"{name}ErrorsAlarm"]]
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        wanted = {"FunctionName": function, "Resource": f"{function}:live", "ExecutedVersion": version}
        if alias["FunctionVersion"] != version or dims != wanted:
            fail(f"{name}: alias at {alias['FunctionVersion']}, alarm on {dims}, expected {wanted}")
    log(f"deployment alarms: each function's on {{its name}}:live, version {version}")


def touch_every_function(base: str, token: str, user: int, product: int) -> None:
    """One database read from each API function, so that each holds a connection."""
    for path in ["/products", "/categories", f"/users/{user}", f"/users/{user}/cart",
                 f"/users/{user}/orders", "/payments/999999", f"/products/{product}/reviews",
                 "/discounts"]:
        status, body = call(base, "GET", path, token=token)
        if status not in (200, 404):
            fail(f"GET {path}: {status} {body}")


def frozen_connections_end(aws, emulator: Emulator, base: str, token: str, user: int, product: int,
                           build_dir: Path, bucket: str, parameters: dict) -> dict:
    """Deploy 2 while deploy 1's instances are frozen with their connections open."""
    physical = resources(aws)
    api = {physical[f"{name}Function"] for name in API_FUNCTIONS}
    touch_every_function(base, token, user, product)
    before = app_connections()
    frozen = [pid for pid, f in emulator.function_processes().items() if f["function"] in api]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    log(f"{len(frozen)} API function instances frozen with {len(before)} connections open")
    source = make_deploy.template()
    params = make_deploy.effective_parameters(source, parameters, make_deploy.Stack())
    bound, budget = make_deploy.connection_bound(source, params), int(params["DbConnectionBudget"])

    changed = {**parameters, "MaxPendingOrders": "11"}
    second = deploy_as_make_deploy(aws, build_dir, bucket, changed)
    if second["protection"] != ["true"] or not second["reserved_before"]:
        fail(f"deploy 2 (an update) ran {second}")
    touch_every_function(base, token, user, product)
    peak = app_connections()
    lingering = set(before) & set(peak)
    if not lingering or len(peak) <= len(before):
        fail(f"the frozen instances' connections did not stay open: {sorted(before)} then {sorted(peak)}")
    if len(peak) > bound or len(peak) > budget:
        fail(f"{len(peak)} connections, past the bound {bound} or the budget {budget}")
    log(f"deploy 2 ({second['seconds']:.0f} s) with deploy 1's instances frozen: {len(peak)} connections "
        f"({len(lingering)} of frozen instances), bound {bound}, budget {budget}")

    started = time.time()
    while set(app_connections()) & lingering:
        if time.time() - started > 200:
            fail(f"the frozen instances' connections outlived the server's wait_timeout: "
                 f"{sorted(set(app_connections()) & lingering)}")
        time.sleep(5)
    after = app_connections()
    log(f"the frozen instances' {len(lingering)} connections ended {time.time() - started:.0f} s after deploy 2 "
        f"(wait_timeout 120 s from their last use): {len(after)} connections now, all of live instances")
    for pid in frozen:
        # Retired, as Lambda retires old versions' environments.
        os.kill(pid, signal.SIGKILL)
    return {"before": len(before), "peak": len(peak), "after": len(after), "bound": bound,
            "deploy_seconds": second["seconds"]}


def main() -> None:
    refused_without_quota()
    emulator = Emulator(account_concurrency=1000)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        emulator.start()
        aws = clients(emulator.endpoint)
        fresh_database()
        bucket = "shop-deployed-artifacts"
        aws.s3.create_bucket(Bucket=bucket)
        vpc = aws.ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
        subnets = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.90.{i}.0/24")["Subnet"]["SubnetId"]
                   for i in (1, 2)]
        master = aws.secrets.create_secret(
            Name="shop-deployed-master", SecretString=json.dumps(
                {"username": urllib.parse.unquote(SERVER.username or "root"),
                 "password": urllib.parse.unquote(SERVER.password or "")}))
        parameters = {
            "Architecture": "x86_64",
            "DatabaseMode": "existing",
            "DatabaseName": DATABASE,
            "ExistingDbSecretArn": master["ARN"],
            "ExistingDbHost": SERVER.hostname or "127.0.0.1",
            "ExistingDbPort": str(SERVER.port or 3306),
            "ExistingVpcId": vpc,
            "ExistingSubnetIds": ",".join(subnets),
            "DbAppUserHost": APP_HOST,
            # The local MariaDB has no certificate; verified TLS is tested on its own
            # (functions/migrate/tests/tls.rs, shared/platform/tests/tls.rs).
            "DbSslMode": "disabled",
            # A rotated signing key is picked up within two seconds instead of five minutes.
            "SecretsRefreshSeconds": "2",
            # The webhook receiver runs on this machine, as the functions do (refused by make
            # deploy's checks everywhere but here).
            "WebhookAllowLoopback": "true",
        }
        build_dir = build()
        first = deploy_as_make_deploy(aws, build_dir, bucket, parameters)
        if first["protection"] != ["false", "true"]:
            fail(f"deploy 1 (a create) ran with DbDeletionProtection {first['protection']}, "
                 f"not false, then true")
        log(f"deploy 1: created without deletion protection, then protected, in {first['seconds']:.0f} s")
        out, physical = outputs(aws), resources(aws)
        api_id = physical["HttpApi"]
        base = f"{emulator.endpoint}/_aws/execute-api/{api_id}/$default"
        check_routes(aws, api_id)
        check_migration()
        check_alias_alarms(aws, physical, "1")

        admin = invoke(aws, out["MigrateFunctionName"],
                       {"create_admin": {"email": ADMIN[0], "password": ADMIN[1], "name": "Deployed Admin"}})
        log(f"first admin made by the migrate function: {admin}")

        timings = walk(base, ADMIN, mysql_in=lambda sql: mysql(sql, DATABASE), log=log, fail=fail)
        check_sweep(aws, physical, timings.pop("expiring_order"))
        hooks = check_webhooks(aws, physical, base, login(base, *ADMIN), emulator, log, fail)

        alarms = {a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}
        topics = aws.sns.list_topics()["Topics"]
        if len(alarms) < 10 or not topics:
            fail(f"alarms or topic missing: {sorted(alarms)}, {topics}")
        concurrency = aws.lambda_.get_function_concurrency(FunctionName=physical["OrdersFunction"])
        docs = aws.lambda_.get_function_concurrency(FunctionName=physical["DocsFunction"])
        if docs.get("ReservedConcurrentExecutions") is not None:
            fail(f"the reference page reserves concurrency: {docs}")
        log(f"{len(alarms)} alarms to {topics[0]['TopicArn']}; orders reserved concurrency "
            f"{concurrency.get('ReservedConcurrentExecutions')}, the reference page none")

        token = login(base, *ADMIN)
        product = int(mysql("SELECT MIN(id) FROM products", DATABASE))
        connections = frozen_connections_end(aws, emulator, base, token, 1, product, build_dir, bucket,
                                             parameters)
        check_alias_alarms(aws, resources(aws), "2")

        schemathesis(base)

        rotate_signing_key(aws, emulator, out, base)
        log(f"deploy 1 {first['seconds']:.0f} s (both steps), deploy 2 {connections['deploy_seconds']:.0f} s; "
            f"cold start {timings['cold_ms']:.0f} ms, then warm {timings['warm_ms']:.0f} ms; connections "
            f"{connections['before']} -> {connections['peak']} -> {connections['after']} "
            f"(bound {connections['bound']}); webhook POST /orders -> receiver {hooks['cold_ms']:.0f} ms "
            f"(cold delivery function), at most {hooks['warm_ms']:.0f} ms warm, retry after a 500 "
            f"{hooks['retry_s']:.0f} s")
        log("passed")
        if os.environ.get("KEEP") == "1":
            log(f"KEEP=1: the API stays at {base}; stop with: kill -- -{emulator.process.pid}")
            emulator.process = None
    finally:
        emulator.stop()
        if os.environ.get("KEEP") != "1":
            mysql(f"DROP DATABASE IF EXISTS {DATABASE}")
            drop_app_users()


def schemathesis(base: str) -> None:
    log("schemathesis through the emulated API Gateway")
    started = time.time()
    env = {"BASE_URL": base, "ADMIN_EMAIL": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1],
           "SCHEMATHESIS_RUNS": "admin", "SCHEMATHESIS_MAX_EXAMPLES": os.environ.get("DEPLOYED_MAX_EXAMPLES", "8"),
           "SCHEMATHESIS_MIN_REQUESTS": "300"}
    output = run(str(ROOT / ".ci/schemathesis"), env=env, quiet=True)
    summary = [line for line in output.splitlines() if "requests in" in line or "generated" in line]
    log(f"schemathesis passed in {time.time() - started:.0f} s: {'; '.join(s.strip() for s in summary)}")


def rotate_signing_key(aws, emulator: Emulator, out: dict, base: str) -> None:
    """The documented rotation: a new key in the secret, nothing else. Running functions read
    it within SecretsRefreshSeconds (2 s here); then every function is stopped, so the next
    request finds a cold start with the new key too."""
    old_token = login(base, *ADMIN)
    new_key = aws.secrets.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    aws.secrets.put_secret_value(SecretId=out["JwtSecretArn"], SecretString=new_key)
    time.sleep(3)
    status, _ = call(base, "GET", "/users/1", token=old_token)
    if status != 401:
        fail(f"a token of the rotated-out key still works ({status})")
    emulator.stop_functions()
    started = time.time()
    new_token = login(base, *ADMIN)
    cold_ms = (time.time() - started) * 1000
    status, _ = call(base, "GET", "/users/1", token=new_token)
    if status != 200:
        fail(f"after the rotation and a cold start the API answers {status}")
    log(f"signing key rotated: old tokens refused within the refresh; after a cold start "
        f"({cold_ms:.0f} ms for the login) new tokens work")


if __name__ == "__main__":
    main()
