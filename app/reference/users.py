"""Customers: names and regions from Mimesis in their country's locale, unique emails, signups, skew, segment."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from itertools import accumulate

from mimesis import Address, Person
from mimesis.enums import Gender
from mimesis.locales import Locale
from mimesis.random import Random as MimesisRandom

from app.reference.geography import MARKETS, Market
from app.reference.popularity import activity_ranks, deal_popularity
from app.reference.rows import UserRow
from app.reference.segments import SEGMENTS, activity_bp, segment_for

#: Signups spread over this many days before the reference date, more of them recent (the shop grows).
SIGNUP_SPAN_DAYS = 6 * 365
#: Zipf offset as a fraction of the users: the top 20% of customers make about 70% of the activity.
USER_FLATNESS = 0.005
#: Reserved for documentation (RFC 2606): no real mailbox can ever receive anything sent to a seeded user.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "inbox.example.net")

#: Letters that Unicode decomposition does not reduce to ASCII (\u0131 is the dotless i).
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "þ": "th", "\u0131": "i"})


class _Locale:
    """The Mimesis providers of one market, each on its own generator seeded from ours."""

    def __init__(self, market: Market, rng: random.Random) -> None:
        locale = Locale(market.locale)
        self.person = Person(locale, random=MimesisRandom(rng.getrandbits(64)))
        self.address = Address(locale, random=MimesisRandom(rng.getrandbits(64)))


@cache  # names repeat: a few thousand distinct ones among a hundred thousand users
def ascii_name(text: str) -> str:
    """The lower-case ASCII letters of a name, accents dropped: ``Gołębiewska`` gives ``golebiewska``."""
    folded = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    return "".join(char for char in folded if char.isascii() and char.isalnum())


def _email_local(first: str, last: str, rng: random.Random) -> str:
    first, last = ascii_name(first) or "customer", ascii_name(last) or "shopper"
    style = rng.randrange(20)
    if style < 8:
        return f"{first}.{last}"
    if style < 11:
        return f"{first}{last}"
    if style < 14:
        return f"{first[0]}{last}"
    if style < 16:
        return f"{first}_{last}"
    if style < 17:
        return f"{last}.{first}"
    return f"{first}.{last}{rng.randrange(100):02d}"


def _unique_email(local: str, user_id: int, taken: set[str], rng: random.Random) -> str:
    domain = EMAIL_DOMAINS[rng.randrange(len(EMAIL_DOMAINS))]
    email = f"{local}@{domain}"
    for _ in range(3):
        if email not in taken:
            break
        email = f"{local}{rng.randrange(2, 1000)}@{domain}"
    if email in taken:
        email = f"{local}.{user_id}@{domain}"  # no other rule makes a second dot, and user ids are unique
    taken.add(email)
    return email


def generate_users(count: int, reference_date: date, rng: random.Random) -> Iterator[UserRow]:
    """``count`` users with ids 1..count; their popularity shares add up to about 1."""
    locales = [_Locale(market, rng) for market in MARKETS]
    cum_shares = list(accumulate(market.share for market in MARKETS))
    picks = rng.choices(range(len(MARKETS)), cum_weights=cum_shares, k=count)
    popularity = deal_popularity(count, USER_FLATNESS, rng)
    ranks = activity_ranks(popularity)
    taken: set[str] = set()
    for index, market_index in enumerate(picks):
        user_id = index + 1
        place = locales[market_index]
        gender = Gender.FEMALE if rng.random() < 0.5 else Gender.MALE
        first, last = place.person.first_name(gender), place.person.last_name(gender)
        tenure = int(rng.triangular(0, SIGNUP_SPAN_DAYS, 0))
        yield UserRow(
            user_id,
            _unique_email(_email_local(first, last, rng), user_id, taken, rng),
            first,
            last,
            MARKETS[market_index].country,
            place.address.state(),
            reference_date - timedelta(days=tenure),
            segment_for(tenure, activity_bp(ranks[index], count), SEGMENTS),
            popularity[index],
        )
