"""Users of the web pages: adding them, single-use sign-in links, passwords, page
sessions, and `billing users`."""

import datetime as dt

import pytest

from billing.errors import Conflict, Invalid, NotFound
from billing.users import services
from billing.users.services import InvalidLink
from tests.conftest import NOW
from tests.databases import seed_fleet

SECRET = "test-secret"


def contact(session, registry, email="Marie@LP.example"):
    return services.add_user(session, email, "customer", NOW, customer_id=registry.customer_id)


def link_of(session, user, now=NOW, minutes=15):
    return services.create_sign_in_link(session, user, now, secret_key=SECRET, minutes=minutes)


def test_a_contact_is_stored_with_a_lower_cased_address_and_acts_as_its_customer(session, registry):
    user = contact(session, registry)
    assert user.email == "marie@lp.example"
    principal = services.principal_of(user)
    assert (principal.role, principal.customer_id) == ("customer", registry.customer_id)
    assert principal.sees_money


def test_an_operator_acts_on_its_fleets_only(session, registry):
    user = services.add_user(
        session, "op@x.example", "operator", NOW, fleet_ids=[registry.fleet_id]
    )
    principal = services.principal_of(user)
    assert principal.fleet_ids == frozenset({registry.fleet_id})
    assert not principal.sees_money


@pytest.mark.parametrize(
    ("email", "role", "scope", "field"),
    [
        ("not-an-address", "finance", {}, "email"),
        ("a@b.example\nBcc: c@d.example", "finance", {}, "email"),
        ("x" * 250 + "@b.example", "finance", {}, "email"),
        ("a@b.example", "root", {}, "role"),
        ("a@b.example", "customer", {}, "customer_id"),
        ("a@b.example", "finance", {"customer_id": "cus_x"}, "customer_id"),
        ("a@b.example", "operator", {}, "fleet_ids"),
        ("a@b.example", "customer", {"customer_id": "c", "password": "long enough pw"}, "password"),
        ("a@b.example", "finance", {"password": "short"}, "password"),
        ("a@b.example", "finance", {"language": "de"}, "language"),
    ],
)
def test_a_user_breaking_a_rule_is_refused_naming_the_field(session, email, role, scope, field):
    with pytest.raises(Invalid) as refused:
        services.add_user(session, email, role, NOW, **scope)
    assert field in refused.value.details


def test_an_address_is_one_user_only_and_scopes_must_exist(session, registry):
    contact(session, registry)
    with pytest.raises(Conflict):
        contact(session, registry, "marie@lp.EXAMPLE")
    with pytest.raises(NotFound):
        services.add_user(session, "b@x.example", "customer", NOW, customer_id="cus_nothing")
    with pytest.raises(NotFound):
        services.add_user(session, "c@x.example", "operator", NOW, fleet_ids=["flt_nothing"])


def test_a_link_signs_in_once(session, registry):
    user = contact(session, registry)
    token = link_of(session, user)
    assert services.redeem_sign_in_link(session, token.signed, NOW, secret_key=SECRET).id == user.id
    with pytest.raises(InvalidLink, match="used already"):
        services.redeem_sign_in_link(session, token.signed, NOW, secret_key=SECRET)


def test_a_link_expires(session, registry):
    token = link_of(session, contact(session, registry), minutes=15)
    later = NOW + dt.timedelta(minutes=15)
    with pytest.raises(InvalidLink, match="expired"):
        services.redeem_sign_in_link(session, token.signed, later, secret_key=SECRET)


@pytest.mark.parametrize("mangle", ["tampered", "other secret", "garbage", "empty"])
def test_a_forged_link_is_refused(session, registry, mangle):
    signed = link_of(session, contact(session, registry)).signed
    token, secret = {
        "tampered": ("A" + signed[1:], SECRET),
        "other secret": (signed, "another-secret"),
        "garbage": ("\udcff.☃" * 1000, SECRET),
        "empty": ("", SECRET),
    }[mangle]
    with pytest.raises(InvalidLink, match="not valid"):
        services.redeem_sign_in_link(session, token, NOW, secret_key=secret)


def test_a_user_gets_a_bounded_number_of_open_links(session, registry):
    user = contact(session, registry)
    tokens = [link_of(session, user) for _ in range(services.MAX_OPEN_LINKS)]
    assert all(tokens)
    assert link_of(session, user) is None
    services.redeem_sign_in_link(session, tokens[0].signed, NOW, secret_key=SECRET)
    assert link_of(session, user) is not None


def test_a_disabled_user_can_use_neither_links_nor_sessions(session, registry):
    user = contact(session, registry)
    token = link_of(session, user)
    cookie = services.start_page_session(session, user, NOW)
    services.disable_user(session, user.id, NOW)
    with pytest.raises(InvalidLink):
        services.redeem_sign_in_link(session, token.signed, NOW, secret_key=SECRET)
    assert services.resume_page_session(session, cookie, NOW, idle_minutes=30) is None


def test_staff_sign_in_with_an_argon2_password(session):
    user = services.add_user(session, "fin@x.example", "finance", NOW, password="correct horse 42")
    assert user.password_hash.startswith("$argon2")
    assert services.check_password(session, "FIN@x.example", "correct horse 42").id == user.id
    assert services.check_password(session, "fin@x.example", "wrong horse 42") is None
    assert services.check_password(session, "nobody@x.example", "correct horse 42") is None


def test_a_contact_without_password_cannot_sign_in_with_one(session, registry):
    contact(session, registry)
    assert services.check_password(session, "marie@lp.example", "") is None


def test_a_session_ends_when_idle_or_signed_out(session, registry):
    user = contact(session, registry)
    cookie = services.start_page_session(session, user, NOW)
    used = NOW + dt.timedelta(minutes=29)
    resumed = services.resume_page_session(session, cookie, used, idle_minutes=30)
    assert resumed.user.id == user.id
    assert services.seen_is_stale(resumed, used)
    services.mark_seen(session, resumed, used)
    session.expire_all()
    assert not services.seen_is_stale(
        services.resume_page_session(session, cookie, used, idle_minutes=30), used
    )
    # Used at 29 minutes, it lasts until 59.
    later = NOW + dt.timedelta(minutes=58)
    assert services.resume_page_session(session, cookie, later, idle_minutes=30) is not None
    idle = later + dt.timedelta(minutes=30)
    assert services.resume_page_session(session, cookie, idle, idle_minutes=30) is None
    other = services.start_page_session(session, user, NOW)
    services.end_page_session(session, other, NOW)
    assert services.resume_page_session(session, other, NOW, idle_minutes=30) is None
    assert services.resume_page_session(session, "unknown", NOW, idle_minutes=30) is None


def test_the_language_is_the_users_then_the_customers(session, registry):
    user = contact(session, registry)
    customer = session.get(services.Customer, registry.customer_id)
    assert services.user_language(user, customer) == customer.language
    user.language = "en"
    assert services.user_language(user, customer) == "en"
    staff = services.add_user(session, "s@x.example", "admin", NOW)
    assert services.user_language(staff, None) == "en"


def test_users_are_added_and_get_a_link_from_the_command_line(cli, fresh_db, fresh_url):
    fleet_id = seed_fleet(fresh_db, ["VEH-1"])
    added = cli("users", "add", "op@x.example", "--role", "operator", "--fleet", fleet_id)
    assert added.exit_code == 0, added.output
    link = cli("users", "link", "OP@x.example")
    assert link.exit_code == 0, link.output
    url = link.stdout.strip()
    assert url.startswith("http://127.0.0.1:8080/sign-in/link/")
    listing = cli("users", "list")
    assert "op@x.example\toperator\t" + fleet_id in listing.stdout


def test_the_command_line_says_what_is_wrong(cli, fresh_db, fresh_url):
    seed_fleet(fresh_db, ["VEH-1"])
    refused = cli("users", "add", "x@x.example", "--role", "customer")
    assert refused.exit_code == 1
    assert "customer_id" in refused.output
    unknown = cli("users", "link", "nobody@x.example")
    assert unknown.exit_code == 1
    assert "no active user" in unknown.output


def test_a_staff_password_is_asked_twice(cli, fresh_db, fresh_url):
    added = cli("users", "add", "f@x.example", "--role", "finance", "--password",
                input="correct horse 42\ncorrect horse 42\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    with fresh_db.session() as session:
        assert services.check_password(session, "f@x.example", "correct horse 42") is not None


def test_the_link_is_e_mailed_in_the_customers_language_and_signs_in(session, registry, tmp_path):
    from billing.settings import load_settings
    from tests.smtp_server import smtp_server

    contact(session, registry)
    with smtp_server() as (port, mailbox):
        settings = load_settings(
            data_dir=tmp_path, secret_key=SECRET,
            smtp={"host": "127.0.0.1", "port": port, "starttls": False},
        )  # fmt: skip
        services.email_sign_in_link(session, settings, "marie@lp.example", "https://b.example", NOW)
        services.email_sign_in_link(
            session, settings, "nobody@lp.example", "https://b.example", NOW
        )
        received = mailbox.wait_for(1)
    assert len(mailbox.messages) == 1  # nothing for an unknown address, and nothing said
    assert received["To"] == "marie@lp.example"
    assert received["Subject"] == "Votre lien de connexion"  # the customer's language: fr
    [url] = [w for w in received.get_content().split() if w.startswith("https://")]
    signed = url.removeprefix("https://b.example/sign-in/link/")
    user = services.redeem_sign_in_link(session, signed, NOW, secret_key=SECRET)
    assert user.email == "marie@lp.example"
