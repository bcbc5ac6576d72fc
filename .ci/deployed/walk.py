"""A walk through every function of the deployed API, as a shop front end would make it,
checking each answer's status and body."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def call(base: str, method: str, path: str, body=None, token: str | None = None, headers: dict | None = None):
    """(status, parsed body or None); the response headers are in `.headers` of the body dict."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, answer_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, answer_headers = error.code, error.read(), error.headers
    parsed = json.loads(raw) if raw else None
    if isinstance(parsed, dict):
        parsed["_headers"] = {k.lower(): v for k, v in answer_headers.items()}
    return status, parsed


def fetch(base: str, path: str) -> tuple[int, str, dict]:
    """(status, text, lower-cased headers) of a GET that need not answer JSON."""
    try:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            status, raw, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), error.headers
    return status, raw.decode(errors="replace"), {k.lower(): v for k, v in headers.items()}


def login(base: str, email: str, password: str) -> str:
    status, body = call(base, "POST", "/users/login", {"email": email, "password": password})
    if status != 200:
        raise SystemExit(f"test-deployed: FAILED: login of {email}: {status} {body}")
    return body["access_token"]


def walk(base: str, admin: tuple[str, str], mysql_in, log, fail) -> dict:
    def expect(step: str, got, status: int, check=lambda body: True):
        code, body = got
        if code != status or not check(body):
            fail(f"{step}: expected {status}, got {code}: {json.dumps(body)[:600]}")
        return body

    started = time.time()
    expect("GET /products (a cold start)", call(base, "GET", "/products"), 200,
           lambda b: b["items"] == [] and b["next_cursor"] is None)
    cold_ms = (time.time() - started) * 1000
    started = time.time()
    expect("GET /products (warm)", call(base, "GET", "/products"), 200)
    warm_ms = (time.time() - started) * 1000

    # Errors are problems, everywhere, including paths no function serves.
    missing = expect("GET /no/such/path", call(base, "GET", "/no/such/path"), 404,
                     lambda b: b["type"] == "/problems/not-found" and b["status"] == 404)
    if "application/problem+json" not in missing["_headers"].get("content-type", ""):
        fail(f"the $default 404 is not problem+json: {missing['_headers']}")
    wrong = expect("PATCH /products", call(base, "PATCH", "/products", {}), 405,
                   lambda b: b["type"] == "/problems/method-not-allowed")
    if "GET" not in wrong["_headers"].get("allow", ""):
        fail(f"405 without Allow: {wrong['_headers']}")
    if not missing["_headers"].get("x-request-id"):
        fail("no x-request-id on the answer")

    admin_token = login(base, *admin)
    expect("a request without a token", call(base, "POST", "/categories", {"name": "Books"}), 401,
           lambda b: b["type"] == "/problems/unauthorized")
    category = expect("POST /categories", call(base, "POST", "/categories", {"name": "Books"}, admin_token), 201,
                      lambda b: b["name"] == "Books" and b["product_count"] == 0)
    product = expect("POST /products",
                     call(base, "POST", "/products",
                          {"name": "Rust in Action", "price": 39.90, "stock": 10, "category_id": category["id"]},
                          admin_token), 201,
                     lambda b: b["price"] == 39.9 and b["stock"] == 10)
    expect("GET /products/{id}", call(base, "GET", f"/products/{product['id']}"), 200,
           lambda b: b["name"] == "Rust in Action")
    expect("GET /categories/{id}", call(base, "GET", f"/categories/{category['id']}"), 200,
           lambda b: b["product_count"] == 1)

    email = f"ada-{int(time.time() * 1000)}@example.test"
    user = expect("POST /users/register",
                  call(base, "POST", "/users/register", {"name": "Ada", "email": email, "password": "correct horse"}),
                  201, lambda b: b["email"] == email and "password" not in json.dumps(b))
    token = login(base, email, "correct horse")
    me = user["id"]
    expect("GET /users/{id}", call(base, "GET", f"/users/{me}", token=token), 200,
           lambda b: b["orders"] == [] and b["role"] == "customer")
    expect("PUT /users/{id} without the current password",
           call(base, "PUT", f"/users/{me}", {"password": "new horse 123"}, token), 400,
           lambda b: b["errors"][0]["field"] == "current_password")

    address = expect("POST /users/{id}/addresses",
                     call(base, "POST", f"/users/{me}/addresses",
                          {"name": "Ada", "line1": "12 Rue de la Paix", "postal_code": "75002",
                           "city": "Paris", "country": "fr"}, token), 201,
                     lambda b: b["country"] == "FR")
    expect("GET /users/{id}/addresses", call(base, "GET", f"/users/{me}/addresses", token=token), 200,
           lambda b: [a["id"] for a in b["items"]] == [address["id"]])
    expect("PUT cart line", call(base, "PUT", f"/users/{me}/cart/items/{product['id']}", {"quantity": 2}, token), 200,
           lambda b: b["total"] == 79.8 and len(b["items"]) == 1)
    shipping = {"shipping_address_id": address["id"]}
    order = expect("POST checkout",
                   call(base, "POST", f"/users/{me}/cart/checkout", shipping, token=token,
                        headers={"idempotency-key": f"checkout-{email}"}), 201,
                   lambda b: b["status"] == "pending" and b["total"] == 79.8 and b["expires_at"]
                   and b["shipping_address"]["city"] == "Paris"
                   and [(h["status"], h["actor"]) for h in b["history"]] == [("pending", "customer")])
    replay = expect("POST checkout again with the same key",
                    call(base, "POST", f"/users/{me}/cart/checkout", shipping, token=token,
                         headers={"idempotency-key": f"checkout-{email}"}), 201)
    if replay["id"] != order["id"]:
        fail("an idempotent retry made a second order")
    payment = expect("POST /payments",
                     call(base, "POST", "/payments", {"order_id": order["id"], "amount": 79.80, "method": "card"},
                          token), 201,
                     lambda b: b["status"] == "completed" and b["amount"] == 79.8)
    expect("GET /payments/{id}", call(base, "GET", f"/payments/{payment['id']}", token=token), 200)
    expect("GET /orders/{id}/payments", call(base, "GET", f"/orders/{order['id']}/payments", token=token), 200,
           lambda b: len(b["items"]) == 1)
    expect("GET /orders/{id}", call(base, "GET", f"/orders/{order['id']}", token=token), 200,
           lambda b: b["status"] == "paid" and b["amount_paid"] == 79.8 and b["expires_at"] is None)
    expect("GET /users/{id}/orders", call(base, "GET", f"/users/{me}/orders", token=token), 200,
           lambda b: [o["status"] for o in b["items"]] == ["paid"])
    review = expect("POST review",
                    call(base, "POST", f"/products/{product['id']}/reviews", {"rating": 5, "comment": "Great"}, token),
                    201, lambda b: b["verified_purchase"] is True)
    expect("GET reviews", call(base, "GET", f"/products/{product['id']}/reviews"), 200,
           lambda b: b["items"][0]["id"] == review["id"])
    expect("GET /products/{id} rated", call(base, "GET", f"/products/{product['id']}"), 200,
           lambda b: b["average_rating"] == 5.0 and b["review_count"] == 1 and b["stock"] == 8)
    expect("PUT /orders/{id} processing (admin)",
           call(base, "PUT", f"/orders/{order['id']}", {"status": "processing"}, admin_token), 200,
           lambda b: b["status"] == "processing")
    expect("PUT /orders/{id} shipped with a tracking number (admin)",
           call(base, "PUT", f"/orders/{order['id']}", {"status": "shipped", "tracking_number": "1Z999"},
                admin_token), 200,
           lambda b: b["tracking_number"] == "1Z999"
           and [h["status"] for h in b["history"]] == ["pending", "paid", "processing", "shipped"])
    expect("DELETE /users/{id}/addresses/{id}",
           call(base, "DELETE", f"/users/{me}/addresses/{address['id']}", token=token), 204)

    # The reference page and its files come from the docs function, through the gateway.
    status, page, headers = fetch(base, "/docs")
    if status != 200 or "docs/swagger-ui-bundle.js" not in page or "default-src 'self'" not in headers.get(
            "content-security-policy", ""):
        fail(f"GET /docs: {status} {headers} {page[:300]}")
    status, script, _ = fetch(base, "/docs/swagger-ui-bundle.js")
    if status != 200 or len(script) < 1_000_000:
        fail(f"GET /docs/swagger-ui-bundle.js: {status}, {len(script)} characters")

    # A pending order for the sweep to settle once its hold has run out.
    expiring = expect("POST /orders",
                      call(base, "POST", "/orders", {"items": [{"product_id": product["id"], "quantity": 3}]}, token),
                      201, lambda b: b["status"] == "pending")
    stock = mysql_in(f"SELECT SUM(stock) FROM variants WHERE product_id = {product['id']}")
    if stock != "5":
        fail(f"stock after two orders is {stock}, not 5")
    log(f"walk: every function answered through the emulated API Gateway (cold {cold_ms:.0f} ms, warm {warm_ms:.0f} ms)")
    return {"cold_ms": cold_ms, "warm_ms": warm_ms, "expiring_order": expiring["id"]}
