"""Webhooks through the deployed stack: an order's event goes from the outbox through the
relay function (woken through its SQS queue), the delivery queue and the delivery function
to a receiver on this machine, signed, and a failed attempt comes back with the same
`webhook-id` on the retry schedule.

The stack is deployed with WebhookAllowLoopback=true (make deploy refuses it on AWS): the
emulator runs the functions as processes on this host, so a receiver on 127.0.0.1 is what
a receiver on the internet is to a deployed stack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from walk import call

# Standard Webhooks: how far a receiver lets a timestamp stray from its own clock.
TOLERANCE_SECONDS = 300
# The contract: an event reaches its receivers within seconds of its change; 30 s here
# leaves room for the emulator's cold starts.
DELIVERY_SECONDS = 30
# The first retry comes 5 s (+-20 %) after the failure, handed out by the relay's next run:
# at the latest its every-minute schedule.
RETRY_SECONDS = 90
# What the spec's reference libraries test against (webhook.test.ts in
# standard-webhooks/standard-webhooks).
SPEC_VECTOR = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
               b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def signature_ok(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does: any `v1,` signature of the header (space-separated) matches
    HMAC-SHA256(key, "{id}.{timestamp}.{body}"), key = base64 after `whsec_`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return any(candidate.startswith("v1,") and hmac.compare_digest(candidate[3:], expected)
               for candidate in header.split(" "))


def verifier_catches_forgeries(fail) -> None:
    """The verifier itself: it accepts the spec's vector and refuses each change of it, so a
    receiver that accepts everything cannot pass for one that checks."""
    secret, msg_id, timestamp, body, signature = SPEC_VECTOR
    if not signature_ok(secret, msg_id, timestamp, body, signature):
        fail("the receiver's verifier refuses the Standard Webhooks test vector")
    if not signature_ok(secret, msg_id, timestamp, body, f"v1,bm90IGl0 {signature}"):
        fail("the receiver's verifier refuses a rotation header with the right signature second")
    other = "whsec_" + base64.b64encode(b"another key of twenty-four bytes").decode()
    forgeries = {"a wrong secret": (other, msg_id, timestamp, body, signature),
                 "a tampered body": (secret, msg_id, timestamp, body.replace(b"2432", b"2433"), signature),
                 "another id": (secret, "msg_other", timestamp, body, signature),
                 "another timestamp": (secret, msg_id, timestamp + 1, body, signature),
                 "another version": (secret, msg_id, timestamp, body, signature.replace("v1,", "v2,"))}
    accepted = [name for name, forged in forgeries.items() if signature_ok(*forged)]
    if accepted:
        fail(f"the receiver's verifier accepts {accepted}")


class Receiver:
    """Webhook receivers on 127.0.0.1, one per path: `/steady` answers 200; `/flaky` answers
    500 the first time, then 200. Every request is verified with its endpoint's secret (a
    bad signature is answered 401 and fails the test) and recorded."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                at = time.time()
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(receiver.answer(self.path, dict(self.headers.items()), body, at))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, headers: dict, body: bytes, at: float) -> int:
        headers = {k.lower(): v for k, v in headers.items()}
        msg_id, stamp, signature = (headers.get(f"webhook-{h}", "") for h in ("id", "timestamp", "signature"))
        secret, timestamp = self.secrets.get(path), int(stamp) if stamp.isdigit() else 0
        verified = bool(secret and abs(timestamp - at) <= TOLERANCE_SECONDS
                        and signature_ok(secret, msg_id, timestamp, body, signature))
        # The same delivery is refused with the other endpoint's secret or a changed body.
        forged = [s for p, s in self.secrets.items()
                  if p != path and signature_ok(s, msg_id, timestamp, body, signature)]
        tampered = verified and signature_ok(secret, msg_id, timestamp, body + b" ", signature)
        with self.lock:
            earlier = [r for r in self.received if r["path"] == path]
            status = 500 if path == "/flaky" and not earlier else 200
            if not verified or forged or tampered:
                status = 401
            self.received.append({"path": path, "at": at, "id": msg_id, "body": body, "status": status,
                                  "verified": verified and not forged and not tampered})
        return status

    def requests(self, path: str, msg_id: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["path"] == path and msg_id in (None, r["id"])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(what: str, found, seconds: float, fail):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    fail(f"{what}: nothing within {seconds:.0f} s")


class RelayRuns:
    """How the relay was run, read from the emulator's log (MiniStack 1.5.33 logs each run an
    event source mapping or a rule starts; the functions' own logs reach no CloudWatch)."""

    def __init__(self, logfile, relay: str, wake_queue_url: str) -> None:
        self.logfile, self.relay = logfile, relay
        self.wake_queue = wake_queue_url.rstrip("/").split("/")[-1]
        self.start = 0

    def mark(self) -> None:
        self.start = self.logfile.stat().st_size

    def since_mark(self) -> tuple[int, int]:
        """(runs started by the wake-up queue, runs started by the schedule) since mark()."""
        with open(self.logfile, "rb") as log:
            log.seek(self.start)
            lines = log.read().decode(errors="replace").splitlines()
        woken = sum(f"ESM: Lambda {self.relay} processed" in line and self.wake_queue in line for line in lines)
        scheduled = sum(f"EventBridge → Lambda {self.relay}: dispatched" in line for line in lines)
        return woken, scheduled


def check_webhooks(aws, physical: dict, base: str, admin_token: str, emulator, log, fail) -> dict:
    """The path end to end; returns the latencies measured. `emulator` ends a function's
    instances (`stop_function`) and has the log the relay's runs are read from."""
    verifier_catches_forgeries(fail)
    receiver = Receiver()
    relay_rule = physical["WebhookRelayFunctionEveryMinute"]
    runs = RelayRuns(emulator.logfile, physical["WebhookRelayFunction"], physical["RelayWakeQueue"])
    try:
        return _deliveries(aws, physical, base, admin_token, receiver, relay_rule, emulator.stop_function, runs,
                           log, fail)
    finally:
        aws.events.enable_rule(Name=relay_rule)
        receiver.stop()


def _deliveries(aws, physical, base, admin, receiver, relay_rule, stop_instances, runs, log, fail) -> dict:
    for url in ["https://10.0.0.1/hook", "http://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data"]:
        status, body = call(base, "POST", "/webhook-endpoints", {"url": url, "events": ["order.created"]}, admin)
        if status != 400:
            fail(f"an endpoint at {url} was not refused with loopback receivers allowed: {status} {body}")
    endpoints = {}
    for path in ("/steady", "/flaky"):
        status, created = call(base, "POST", "/webhook-endpoints",
                               {"url": receiver.url + path, "events": ["order.created"], "description": path},
                               admin)
        if status != 201 or not created.get("secret", "").startswith("whsec_"):
            fail(f"POST /webhook-endpoints {receiver.url + path}: {status} {created}")
        receiver.secrets[path] = created["secret"]
        endpoints[path] = created["id"]

    # Only a writer's wake-up can run the relay while its schedule is off: a delivery
    # within seconds is the wake-up's doing.
    relay = physical["WebhookRelayFunction"]
    mappings = aws.lambda_.list_event_source_mappings(FunctionName=relay)["EventSourceMappings"]
    wake_queue = aws.client("sqs").get_queue_attributes(
        QueueUrl=physical["RelayWakeQueue"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if [m["EventSourceArn"] for m in mappings] != [wake_queue]:
        fail(f"the relay's event sources are {mappings}, not its wake-up queue {wake_queue}")
    aws.events.disable_rule(Name=relay_rule)
    customer, product = _customer_and_product(base, admin, fail)

    stop_instances(physical["WebhookDeliveryFunction"])
    runs.mark()
    orders, latencies = [], []
    for number in range(3):
        started = time.time()
        status, order = call(base, "POST", "/orders", {"items": [{"product_id": product, "quantity": 1}]}, customer)
        if status != 201:
            fail(f"POST /orders: {status} {order}")
        answered = time.time()
        arrived = {}
        for path in endpoints:
            first = wait_for(f"order {order['id']}'s order.created at {path} (relay schedule off)",
                             lambda: [r for r in receiver.requests(path)
                                      if json.loads(r["body"])["data"]["id"] == order["id"]],
                             DELIVERY_SECONDS, fail)[0]
            arrived[path] = first["at"] - started
        orders.append((order["id"], started))
        latencies.append({"api_ms": (answered - started) * 1000,
                          **{p: arrived[p] * 1000 for p in arrived}})
    time.sleep(1)  # the emulator logs a run once it has returned
    woken, scheduled = runs.since_mark()
    if not woken or scheduled:
        fail(f"the relay ran {woken} times from its wake-up queue and {scheduled} from its schedule "
             f"while the schedule was off")
    aws.events.enable_rule(Name=relay_rule)

    events = _order_events(base, admin, {o for o, _ in orders}, fail)
    for order_id, _ in orders:
        event = events[order_id]
        for path in endpoints:
            got = receiver.requests(path, str(event["id"]))
            bodies = [json.loads(r["body"]) for r in got]
            if not got or any(b["id"] != event["id"] or b["type"] != "order.created" or b["data"]["id"] != order_id
                              for b in bodies):
                fail(f"{path} did not get event {event['id']} (order {order_id}) with that webhook-id: "
                     f"{[(r['id'], r['body'][:120]) for r in receiver.requests(path)]}")
    unverified = [r for r in receiver.received if not r["verified"]]
    if unverified:
        fail(f"deliveries whose signature did not verify: {unverified}")

    # The flaky endpoint's 500 comes back with the same webhook-id.
    first_event = str(events[orders[0][0]]["id"])
    failed_at = receiver.requests("/flaky", first_event)[0]["at"]
    runs.mark()
    retried = wait_for(f"the redelivery of event {first_event} to /flaky", lambda: [
        r for r in receiver.requests("/flaky", first_event) if r["status"] == 200], RETRY_SECONDS, fail)[0]
    retry_seconds = retried["at"] - failed_at
    time.sleep(1)
    retry_runs = runs.since_mark()

    expected = {("/steady", i): [200] for i in range(3)}
    expected |= {("/flaky", 0): [500, 200], ("/flaky", 1): [200], ("/flaky", 2): [200]}
    for path, endpoint in endpoints.items():
        _check_attempts(base, admin, path, endpoint, events, orders, expected, receiver, fail)
        status, _ = call(base, "DELETE", f"/webhook-endpoints/{endpoint}", token=admin)
        if status != 204:
            fail(f"DELETE /webhook-endpoints/{endpoint}: {status}")

    cold, warm = latencies[0], latencies[1:]
    warm_ms = ", ".join(f"{w['/steady']:.0f}" for w in warm)
    log(f"webhooks: 3 orders, each order.created at /steady and /flaky, every signature verified, "
        f"webhook-id = the event id; private URLs refused with loopback allowed")
    log(f"webhooks: the relay ran {woken} times from its wake-up queue, never from its schedule (off); "
        f"POST /orders -> receiver "
        f"{cold['/steady']:.0f} ms with a cold delivery function (the API call {cold['api_ms']:.0f} ms), "
        f"then {warm_ms} ms warm")
    log(f"webhooks: /flaky's 500 redelivered with the same webhook-id {retry_seconds:.1f} s later "
        f"(relay runs meanwhile: {retry_runs[0]} woken, {retry_runs[1]} scheduled); "
        f"attempts [200] x3 at /steady, [500, 200], [200], [200] at /flaky")
    return {"cold_ms": cold["/steady"], "warm_ms": max(w["/steady"] for w in warm), "retry_s": retry_seconds}


def _customer_and_product(base: str, admin: str, fail) -> tuple[str, int]:
    status, category = call(base, "POST", "/categories", {"name": "Webhooks"}, admin)
    status2, product = call(base, "POST", "/products", {"name": "Webhook Mug", "price": 9.5, "stock": 50,
                                                         "category_id": category and category.get("id")}, admin)
    email = f"hooks-{int(time.time() * 1000)}@example.test"
    status3, _ = call(base, "POST", "/users/register", {"name": "Hook", "email": email, "password": "correct horse"})
    status4, login = call(base, "POST", "/users/login", {"email": email, "password": "correct horse"})
    if (status, status2, status3, status4) != (201, 201, 201, 200):
        fail(f"webhooks setup: {status} {status2} {status3} {status4}: {category} {product}")
    return login["access_token"], product["id"]


def _order_events(base: str, admin: str, orders: set[int], fail) -> dict[int, dict]:
    """order id -> its order.created event, from the admins' feed."""
    found, cursor = {}, ""
    while True:
        status, page = call(base, "GET", f"/events?type=order.created&limit=100{cursor}", token=admin)
        if status != 200:
            fail(f"GET /events: {status} {page}")
        found |= {e["data"]["id"]: e for e in page["items"] if e["data"]["id"] in orders}
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    if set(found) != orders:
        fail(f"GET /events lacks the order.created of orders {sorted(orders - set(found))}")
    return found


def _check_attempts(base, admin, path, endpoint, events, orders, expected, receiver, fail) -> None:
    """Each delivery's recorded attempts, as the deliveries API shows them, are the answers
    the receiver gave, one attempt per request it got."""
    status, page = call(base, "GET", f"/webhook-endpoints/{endpoint}/deliveries?limit=100", token=admin)
    if status != 200:
        fail(f"GET /webhook-endpoints/{endpoint}/deliveries: {status} {page}")
    by_event = {d["event_id"]: d for d in page["items"]}
    for number, (order_id, _) in enumerate(orders):
        event = events[order_id]["id"]
        delivery = by_event.get(event)
        codes = [a["status_code"] for a in sorted(delivery["attempts"], key=lambda a: a["at"])] if delivery else None
        answered = [r["status"] for r in receiver.requests(path, str(event))]
        if (codes != expected[(path, number)] or answered != codes or delivery["status"] != "succeeded"
                or delivery["next_attempt_at"] is not None):
            fail(f"{path}: the delivery of event {event} shows {delivery}; expected attempts "
                 f"{expected[(path, number)]}, the receiver answered {answered}")
