"""Two regions that exist only as YAML written by the tests: no Python is added for them.

RW (Rwanda, RWF, ISO 4217 exponent 0): a merchant mobile-money statement CSV in major units, with title lines,
repeated page headers, disclaimer lines and a Totals row, times local to Africa/Kigali.
UG (Uganda, UGX, exponent 0): a Stripe-style CSV whose amounts are integer minor units x100, as Stripe documents
for some zero-decimal currencies; the spec declares it (`amount.unit: minor_x100`), nothing guesses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RW_YAML = r"""# Rwanda: a fictional merchant mobile-money statement, described without code.
code: RW
name: Rwanda
currency: RWF
zone: Africa/Kigali
locale: rw_RW
language: rw
calling_code: "250"
landing: rw
file_glob: "*.csv"
reference:
  pattern: 'REF (?P<creator_id>RW-C\d{4})/(?P<product_id>RW-P\d{5})'
quarantine_rate: {warn: 0.05, error: 0.25}
rail:
  format: csv
  ragged: skip
  header:
    aliases:
      txn: ["Transaction ID", "Txn Id"]
      when: ["Date", "Transaction Date"]
      state: ["Status"]
      amount: ["Amount (RWF)", "Amount"]
      fee: ["Fee", "Charges"]
      narrative: ["Narrative", "Description"]
      payer: ["Payer", "From"]
  ignore:
    - {of: txn, is_header: true}
    - {of: txn, equals: Totals}
  vocabulary:
    of: state
    map:
      completed: [sale, success]
      pending: [sale, pending]
      failed: [sale, failed]
      refunded: [refund, success]
      reversed: [reversal, success]
    ignore: [cash out]
  amount: {unit: major}
  time: {formats: ["%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M"], zone: local}
  fields:
    transaction_id: txn
    amount: amount
    fee: fee
    occurred_at: when
    reference: narrative
    buyer: {of: payer, kind: phone}
    channel: {value: momo}
  writer:
    reference_template: "Payment REF {creator_id}/{product_id}"
    preamble: ["ACME MOBILE MONEY - MERCHANT STATEMENT", "Period: as requested"]
    trailer: [["Totals"]]
"""

UG_YAML = r"""code: UG
name: Uganda
currency: UGX
zone: Africa/Kampala
locale: en_UG
language: en
calling_code: "256"
file_glob: "*.csv"
reference:
  pattern: '^(?P<creator_id>UG-C\d{4})\.(?P<product_id>UG-P\d{5})$'
quarantine_rate: {warn: 0.05, error: 0.25}
rail:
  format: csv
  header:
    aliases:
      created: ["Created date (UTC)", "Created (UTC)"]
  vocabulary:
    of: Status
    map:
      paid: [sale, success]
      pending: [sale, pending]
      failed: [sale, failed]
      refunded: [refund, success]
      disputed: [reversal, success]
  amount: {unit: minor_x100}
  time: {formats: ["%Y-%m-%d %H:%M:%S"], zone: utc}
  fields:
    transaction_id: id
    amount: {case: {of: "@event_type", when: {sale: Amount}, default: Amount Refunded}}
    fee: Fee
    currency: Currency
    occurred_at: created
    reference: kanda_ref (metadata)
    buyer: {of: Customer Email, kind: email}
    channel: {value: card}
"""


def write_regions(folder: Path, monkeypatch: pytest.MonkeyPatch, **files: str) -> Path:
    """Region files into `folder`, which becomes `KANDA_REGIONS_DIR` for the test."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"rw": RW_YAML, "ug": UG_YAML}).items():
        (folder / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("KANDA_REGIONS_DIR", str(folder))
    return folder
