"""Signing in to the web pages: e-mailed single-use links, staff passwords, the session
cookie, idle expiry, sign-out, CSRF on every form, `next=` and the security headers."""

import datetime as dt
import logging
import re

import pytest

from billing.portal.security import CONTENT_SECURITY_POLICY, CSRF_COOKIE, SESSION_COOKIE, safe_next
from billing.users import services as users
from tests.conftest import NOW
from tests.portal import csrf_token, fix_clock, form_post, signed_in_client

LINK = re.compile(r"http://[^\s]+/sign-in/link/(\S+)")


@pytest.fixture
def contact(session, registry, app):
    fix_clock(app, NOW)
    return users.add_user(
        session, "marie@lp.example", "customer", NOW, customer_id=registry.customer_id
    )


def mailed_link(client, caplog, email="marie@lp.example") -> str:
    """Ask for a link on the sign-in page; the embedded default logs the mail."""
    caplog.set_level(logging.INFO, logger="billing.mail")
    response = form_post(client, "/sign-in", {"email": email})
    assert response.status_code == 200
    [token] = [m for r in caplog.records for m in LINK.findall(r.getMessage())]
    return f"/sign-in/link/{token}"


def cookie(client, name):
    found = client.get_cookie(name)
    return found.value if found else None


def test_a_contact_signs_in_from_the_mailed_link_and_lands_on_the_account(
    app, client, contact, registry, caplog
):
    link = mailed_link(client, caplog)
    page = client.get(link)
    assert page.status_code == 200 and b'id="continue"' in page.data  # a click, not a GET
    assert cookie(client, SESSION_COOKIE) is None
    signed = form_post(client, link, page=link)
    assert signed.status_code == 302
    assert signed.headers["Location"] == f"/accounts/{registry.customer_id}/"
    set_cookie = [h for h in signed.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE)]
    assert "HttpOnly" in set_cookie[0] and "SameSite=Lax" in set_cookie[0]
    assert "Secure" not in set_cookie[0]  # plain HTTP here
    assert client.get(f"/accounts/{registry.customer_id}/").status_code == 200


def test_the_page_answers_the_same_for_an_unknown_address(client, contact, caplog):
    caplog.set_level(logging.INFO, logger="billing.mail")
    known = form_post(client, "/sign-in", {"email": "marie@lp.example"}).get_data(as_text=True)
    unknown = form_post(client, "/sign-in", {"email": "nobody@lp.example"}).get_data(as_text=True)
    strip = lambda page, email: page.replace(email, "").split('csrf_token" value="')[0]  # noqa: E731
    assert strip(known, "marie@lp.example") == strip(unknown, "nobody@lp.example")
    assert len([r for r in caplog.records if r.name == "billing.mail"]) == 1


def test_a_link_is_refused_the_second_time(client, contact, caplog):
    link = mailed_link(client, caplog)
    assert form_post(client, link, page=link).status_code == 302
    again = client.application.test_client()
    refused = form_post(again, link, page=link)
    assert refused.status_code == 400
    assert "has been used already" in refused.get_data(as_text=True)
    assert again.get_cookie(SESSION_COOKIE) is None


def test_an_expired_link_is_refused(app, client, contact, caplog):
    link = mailed_link(client, caplog)
    fix_clock(app, NOW + dt.timedelta(minutes=16))
    refused = form_post(client, link, page=link)
    assert refused.status_code == 400
    assert cookie(client, SESSION_COOKIE) is None


@pytest.mark.parametrize(
    "token", ["garbage", "a" * 5000, "x.y.z", "%00", "..%2f..%2fetc", "é" * 50]
)
def test_a_forged_link_is_refused_with_a_page_not_an_error(client, contact, token):
    response = form_post(client, f"/sign-in/link/{token}", page="/sign-in")
    assert response.status_code in (400, 404)
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "email", ["", "not an address", "a" * 5000 + "@x.example", "a@b.example\r\nBcc: c@d", "\x00@x"]
)
def test_a_malformed_address_gets_the_same_answer_and_no_mail(client, contact, caplog, email):
    caplog.set_level(logging.INFO, logger="billing.mail")
    response = form_post(client, "/sign-in", {"email": email})
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.name == "billing.mail"]


def test_a_form_without_its_csrf_token_is_refused(client, contact):
    client.get("/sign-in")  # the CSRF cookie is set
    assert cookie(client, CSRF_COOKIE)
    refused = client.post("/sign-in", data={"email": "marie@lp.example"})
    assert refused.status_code == 400
    assert "not sent from this site" in refused.get_data(as_text=True)
    forged = client.post("/sign-in", data={"email": "m@lp.example", "csrf_token": "0" * 64})
    assert forged.status_code == 400


def test_a_token_from_another_browser_is_refused(app, client, contact):
    token = csrf_token(client)
    other = app.test_client()
    other.get("/sign-in")  # a CSRF cookie of its own
    assert (
        other.post("/sign-in", data={"csrf_token": token, "email": "x@y.example"}).status_code
        == 400
    )


def test_sign_out_ends_the_session_for_good(app, session, contact, registry):
    client = signed_in_client(app, session, contact, NOW)
    stolen = cookie(client, SESSION_COOKIE)
    overview = f"/accounts/{registry.customer_id}/"
    assert client.get(overview).status_code == 200
    out = form_post(client, "/sign-out", page=overview)
    assert out.status_code == 302
    assert cookie(client, SESSION_COOKIE) is None
    replayed = app.test_client()
    replayed.set_cookie(SESSION_COOKIE, stolen)
    assert replayed.get(overview).status_code == 302  # back to the sign-in page


def test_an_idle_session_expires(app, session, contact, registry):
    client = signed_in_client(app, session, contact, NOW)
    overview = f"/accounts/{registry.customer_id}/"
    fix_clock(app, NOW + dt.timedelta(minutes=29))
    assert client.get(overview).status_code == 200
    fix_clock(app, NOW + dt.timedelta(minutes=29 + 31))
    expired = client.get(overview)
    assert expired.status_code == 302
    assert expired.headers["Location"].startswith("/sign-in?next=")


def test_each_page_view_starts_the_idle_time_again(app, session, contact, registry):
    client = signed_in_client(app, session, contact, NOW)
    overview = f"/accounts/{registry.customer_id}/"
    for minutes in (29, 58, 87):  # each view 29 minutes after the last, 87 after signing in
        fix_clock(app, NOW + dt.timedelta(minutes=minutes))
        assert client.get(overview).status_code == 200, f"signed out at {minutes} minutes"


def test_an_anonymous_visitor_is_sent_to_sign_in_and_brought_back(app, session, client, registry):
    fix_clock(app, NOW)
    users.add_user(session, "f@x.example", "finance", NOW, password="correct horse 42")
    target = f"/accounts/{registry.customer_id}/statements/"
    answer = client.get(target)
    assert answer.status_code == 302
    sign_in = answer.headers["Location"]
    signed = form_post(
        client, "/sign-in/password?" + sign_in.split("?", 1)[1],
        {"email": "f@x.example", "password": "correct horse 42"},
    )  # fmt: skip
    assert signed.headers["Location"] == target


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil", "http:/x",
     "/\tevil", "javascript:alert(1)", " //evil.example", "/%0d%0aSet-Cookie:x=y"],
)  # fmt: skip
def test_next_never_leaves_the_site(app, session, client, target):
    fix_clock(app, NOW)
    users.add_user(session, "f@x.example", "finance", NOW, password="correct horse 42")
    signed = form_post(
        client, "/sign-in/password", {"email": "f@x.example", "password": "correct horse 42",
                                      "next": target},
    )  # fmt: skip
    location = signed.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location


def test_safe_next_keeps_paths_of_this_site():
    assert safe_next("/accounts/cus_1/?x=1", "/") == "/accounts/cus_1/?x=1"
    assert safe_next(None, "/home") == "/home"
    assert safe_next("/" + "a" * 3000, "/home") == "/home"


def test_a_wrong_password_is_refused_and_says_so(app, session, client):
    fix_clock(app, NOW)
    users.add_user(session, "f@x.example", "finance", NOW, password="correct horse 42")
    refused = form_post(
        client, "/sign-in/password", {"email": "f@x.example", "password": "x" * 5000}
    )
    assert refused.status_code == 401
    assert cookie(client, SESSION_COOKIE) is None


def test_every_page_carries_the_security_headers(client):
    page = client.get("/sign-in")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in page.get_data(as_text=True)


def test_cookies_are_secure_over_https(app, session, contact):
    client = app.test_client()
    page = client.get("/sign-in", base_url="https://billing.example")
    [csrf] = [h for h in page.headers.getlist("Set-Cookie") if h.startswith(CSRF_COOKIE)]
    assert "Secure" in csrf and "HttpOnly" in csrf and "SameSite=Lax" in csrf


def test_the_link_points_at_the_configured_address_never_the_host_header(client, contact, caplog):
    caplog.set_level(logging.INFO, logger="billing.mail")
    page = client.get("/sign-in", base_url="http://evil.example")
    token = re.search(r'name="csrf_token" value="(\w+)"', page.get_data(as_text=True))[1]
    client.post(
        "/sign-in", data={"csrf_token": token, "email": "marie@lp.example"},
        base_url="http://evil.example",
    )  # fmt: skip
    [record] = [r for r in caplog.records if r.name == "billing.mail"]
    assert "evil.example" not in record.getMessage()
    assert "http://127.0.0.1:8080/sign-in/link/" in record.getMessage()
