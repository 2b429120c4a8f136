"""Masking buyers' personal data in what leaves the regional store for the review database.

Raw buyer PII stays in its region: the raw record copied into the review database has e-mail addresses and phone
numbers masked, and so are people's names where a rail writes them (M-Pesa's free-text `Details`, "... from
<phone> - JANE WANJIKU Acc. ...", and fields that hold nothing but a person's name or handle). Every mask is
idempotent (a masked value masks to itself), so a record can be masked again when the rules grow: the review
database's upgrade (`kanda.review.db`) re-masks items enqueued under older rules.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

_EMAIL = re.compile(r"([\w.+-]{1,2})[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
#: Cheap gate: only values with an "@" or eight digits in a row (spaces allowed) can hold a contact.
_MAYBE_CONTACT = re.compile(r"@|\d[\d -]{7}")


@lru_cache(maxsize=32)
def _phone_pattern(calling_code: str) -> re.Pattern[str]:
    # spaces or dashes between groups, as people type them (`0803-123-4567`, `+254 722 000 111`)
    number = rf"(?:\+\d(?:[ -]?\d){{8,16}}|0\d(?:[ -]?\d){{8,12}}|{re.escape(calling_code)}\d{{8,10}})"
    return re.compile(rf"(?<![\w.,:+\-]){number}(?![\w.,:]|-\d)")


def mask_pii(text: str, calling_code: str) -> str:
    """E-mail addresses and phone numbers masked (`bu***@mail.example`, `**********78`).

    A phone is a run of digits that starts like one: `+`, a national `0`, or the region's calling code. Amounts,
    ids and dates do not, so they stay readable. Names are `mask_names`' job.
    """
    if not _MAYBE_CONTACT.search(text):
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _phone_pattern(calling_code).sub(lambda m: "*" * (len(m.group(0)) - 2) + m.group(0)[-2:], text)


#: Raw fields that hold only a person's name or handle: masked whole.
NAME_FIELDS = frozenset(
    {"Customer Name", "customer_name", "Discord username", "name", "Name", "payer_name"}
    | {"first_name", "last_name", "full_name", "firstName", "lastName", "fullName", "account_name", "payerName"}
)
#: The payer's name in free text: after "<contact> - " and before the account reference (M-Pesa `Details`:
#: "Pay Bill Online from 0712345678 - JANE WANJIKU Acc. KE-C0001.KE-P00001"). Contacts are masked first, so the
#: contact may already be stars.
_NAME_AFTER_CONTACT = re.compile(
    r"(\b(?:from|to)\s+[^\s-][^-]*?\s-\s+)([^\W\d_][^\d@]*?)(?=\s+(?:Acc\b|A/C\b|Account\b|Ref\b|via\b)|\s*$)"
)


def mask_name(name: str) -> str:
    """Each word of a name down to its first letter (`JANE WANJIKU` -> `J*** W***`): enough to tell two payers
    apart on one page, not enough to identify one."""
    return " ".join(word[:1] + "***" for word in name.split())


def mask_names(text: str) -> str:
    """People's names in a free-text field masked, the rest (amounts, references, creator ids) left readable."""
    return _NAME_AFTER_CONTACT.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)


def mask_field(key: str, value: str, calling_code: str) -> str:
    if key in NAME_FIELDS:
        return mask_name(value)
    if value[:1] in ("{", "["):  # a JSON rail's object kept as text (Paystack's `data.customer`, `data.metadata`)
        try:
            document = json.loads(value)
        except ValueError:
            pass
        else:
            return json.dumps(_masked_document(document, calling_code), ensure_ascii=False)
    return mask_names(mask_pii(value, calling_code))


def _masked_document(value: object, calling_code: str, key: str = "") -> object:
    """A JSON document with every field masked as a raw record's are, at any depth: a customer's `first_name`,
    and a checkout's custom field (`{"variable_name": "full_name", "value": "..."}`) whose name says it is one."""
    if isinstance(value, dict):
        label = " ".join(str(value.get(k, "")) for k in ("variable_name", "display_name")).lower()
        named = "name" in label  # the field's own value is a person's name
        return {
            k: mask_name(v) if named and k == "value" and isinstance(v, str) else _masked_document(v, calling_code, k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked_document(v, calling_code, key) for v in value]
    if isinstance(value, str):
        return mask_field(key, value, calling_code)
    return value


def masked_record(raw: str, calling_code: str) -> dict:
    record = json.loads(raw)
    if not isinstance(record, dict):
        record = {"record": record}
    return {k: mask_field(k, v, calling_code) if isinstance(v, str) else v for k, v in record.items()}
