"""make test-deployed: the real template.yaml, built by `sam build` and deployed by `sam
deploy` to a local AWS emulator (MiniStack), then used through the emulator's API Gateway.

The database is the local MariaDB, in DatabaseMode=existing (the emulator runs no RDS):
its master credentials go into a secret in the emulator, and the VPC and subnets the
template asks for are stand-ins created there. What the emulator cannot do is worked around
in emulator_workarounds.py, never in template.yaml.

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
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import boto3
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).parent))
from emulator_workarounds import after_deploy, for_emulator  # noqa: E402
from walk import walk  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("DEPLOYED_WORK", Path.home() / ".cache/shop-api/deployed"))
STACK = "shop-deployed"
DATABASE = "shop_deployed"
REGION = "us-east-1"
ADMIN = ("admin@deployed.test", "deployed-admin-password-1")


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
    starts joins the group, so stopping the group stops them all, whatever happened."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
               "MINISTACK_HOST": "127.0.0.1", "IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0"}
        logfile = open(WORK / "ministack.log", "w")
        ministack = Path(sys.executable).with_name("ministack")
        self.process = subprocess.Popen([str(ministack)], env=env, stdout=logfile, stderr=logfile,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{self.endpoint}/_ministack/health", timeout=1)
                log(f"emulator on {self.endpoint} (process group {self.process.pid})")
                return
            except OSError:
                if self.process.poll() is not None:
                    fail(f"the emulator exited: {(WORK / 'ministack.log').read_text()[-2000:]}")
                time.sleep(0.5)
        fail("the emulator did not answer")

    def function_processes(self) -> list[int]:
        """The function processes (bootstraps) running code the emulator unpacked."""
        marker = f"/tmp/ministack-provided-code-{self.port}/"
        listing = subprocess.run(["ps", "-eo", "pid=,args="], text=True, capture_output=True).stdout
        return [int(line.split()[0]) for line in listing.splitlines() if marker in line]

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
        log("emulator stopped, with every function process it started")


def clients(endpoint: str) -> SimpleNamespace:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    make = lambda name: session.client(name, endpoint_url=endpoint)  # noqa: E731
    return SimpleNamespace(
        cloudformation=make("cloudformation"), apigatewayv2=make("apigatewayv2"),
        lambda_=make("lambda"), s3=make("s3"), ec2=make("ec2"), secrets=make("secretsmanager"),
        events=make("events"), cloudwatch=make("cloudwatch"), sns=make("sns"),
    )


# ------------------------------------------------------------------ the database


def mysql(sql: str, database: str | None = None) -> str:
    server = urllib.parse.urlsplit(os.environ.get("DB_SERVER", "mysql://root@127.0.0.1:3306"))
    client = shutil.which("mariadb") or shutil.which("mysql")
    args = [client, "--protocol=TCP", "-h", server.hostname or "127.0.0.1", "-P", str(server.port or 3306),
            "-u", urllib.parse.unquote(server.username or "root"), "-N", "-B", "-e", sql]
    if database:
        args.append(database)
    env = {"MYSQL_PWD": urllib.parse.unquote(server.password or "")}
    return run(*args, env=env, quiet=True).strip()


def fresh_database() -> None:
    mysql(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE}")
    mysql("DROP USER IF EXISTS 'shop_app'@'%'")


# ------------------------------------------------------------------ build and deploy


def build() -> Path:
    build_dir = WORK / "build"
    if os.environ.get("BUILD") == "0" and (build_dir / "template.yaml").exists():
        log("reusing the last build (BUILD=0)")
        return build_dir
    log("sam build (x86_64: the emulator runs the bootstraps on this host)")
    started = time.time()
    run("sam", "build", "--beta-features", "--parameter-overrides", "Architecture=x86_64",
        "--build-dir", str(build_dir), env={"SAM_BUILD_MODE": "debug", "SAM_CLI_TELEMETRY": "0"}, quiet=True)
    # Debug bootstraps carry ~200 MB of symbols each; the emulator unpacks every one.
    for bootstrap in build_dir.glob("*/bootstrap"):
        subprocess.run(["strip", str(bootstrap)], check=True)
    log(f"built in {time.time() - started:.0f} s")
    return build_dir


def deploy(aws: SimpleNamespace, build_dir: Path, bucket: str, parameters: dict) -> dict:
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
    grants = mysql("SHOW GRANTS FOR 'shop_app'@'%'")
    if f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{DATABASE}`.*" not in grants or "ALL PRIVILEGES" in grants:
        fail(f"the application user has other rights than data ones: {grants}")
    log(f"migrations: {len(tables)} tables; the functions' user may only read and write data")


def invoke(aws: SimpleNamespace, function: str, payload: dict) -> dict:
    answer = aws.lambda_.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        fail(f"{function} failed: {body}")
    return body


def main() -> None:
    emulator = Emulator()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        emulator.start()
        aws = clients(emulator.endpoint)
        aws.endpoint = emulator.endpoint
        fresh_database()
        bucket = "shop-deployed-artifacts"
        aws.s3.create_bucket(Bucket=bucket)
        vpc = aws.ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
        subnets = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.90.{i}.0/24")["Subnet"]["SubnetId"]
                   for i in (1, 2)]
        master = aws.secrets.create_secret(
            Name="shop-deployed-master", SecretString=json.dumps({"username": "root", "password": ""}))
        parameters = {
            "Architecture": "x86_64",
            "DatabaseMode": "existing",
            "DatabaseName": DATABASE,
            "ExistingDbSecretArn": master["ARN"],
            "ExistingDbHost": "127.0.0.1",
            "ExistingDbPort": "3306",
            "ExistingVpcId": vpc,
            "ExistingSubnetIds": ",".join(subnets),
            # The local MariaDB has no certificate; TLS verification is tested on its own.
            "DbSslMode": "disabled",
            # A rotated signing key is picked up within two seconds instead of five minutes.
            "SecretsRefreshSeconds": "2",
        }
        build_dir = build()
        started = time.time()
        template = deploy(aws, build_dir, bucket, parameters)
        deploy_time = time.time() - started
        out, physical = outputs(aws), resources(aws)
        api_id = physical["HttpApi"]
        base = f"{emulator.endpoint}/_aws/execute-api/{api_id}/$default"
        check_routes(aws, api_id)
        check_migration()

        admin = invoke(aws, out["MigrateFunctionName"],
                       {"create_admin": {"email": ADMIN[0], "password": ADMIN[1], "name": "Deployed Admin"}})
        log(f"first admin made by the migrate function: {admin}")

        timings = walk(base, ADMIN, mysql_in=lambda sql: mysql(sql, DATABASE), log=log, fail=fail)

        # The scheduled sweep: its rule exists, and one invocation settles an expired hold.
        rules = aws.events.list_rules()["Rules"]
        if not any(r.get("ScheduleExpression") == "rate(1 minute)" for r in rules):
            fail(f"no every-minute schedule among {rules}")
        order = timings.pop("expiring_order")
        mysql(f"UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = {order}", DATABASE)
        report = invoke(aws, physical["SweepFunction"], {"source": "aws.events", "detail-type": "Scheduled Event"})
        status = mysql(f"SELECT status FROM orders WHERE id = {order}", DATABASE)
        if report.get("expired_orders", 0) < 1 or status != "cancelled":
            fail(f"the sweep did not settle the expired order: {report}, status {status}")
        log(f"sweep invoked: {report}")

        alarms = {a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}
        topics = aws.sns.list_topics()["Topics"]
        if len(alarms) < 10 or not topics:
            fail(f"alarms or topic missing: {sorted(alarms)}, {topics}")
        concurrency = aws.lambda_.get_function_concurrency(FunctionName=physical["OrdersFunction"])
        log(f"{len(alarms)} alarms to {topics[0]['TopicArn']}; orders reserved concurrency {concurrency.get('ReservedConcurrentExecutions')}")

        schemathesis(base)

        rotate_signing_key(aws, emulator, out, base)
        log(f"deploy {deploy_time:.1f} s; cold start {timings['cold_ms']:.0f} ms, then warm {timings['warm_ms']:.0f} ms")
        log("passed")
        if os.environ.get("KEEP") == "1":
            log(f"KEEP=1: the API stays at {base}; stop with: kill -- -{emulator.process.pid}")
            emulator.process = None
    finally:
        emulator.stop()
        if os.environ.get("KEEP") != "1":
            mysql(f"DROP DATABASE IF EXISTS {DATABASE}")
            mysql("DROP USER IF EXISTS 'shop_app'@'%'")


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
    from walk import call, login

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
