"""Letters for a stack test and the "exact counts" every stack test ends with: each uploaded letter in
imr.letters exactly once with all its items and the generator's truth, each bad file quarantined with
its code, nothing pending or processing, and the run's data-quality results all passed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import imr_synth as synth


@dataclass
class Sample:
    prefix: str
    good: list[dict]  # expected records (Letter.to_dict() + "file")
    bad: dict[str, str]  # key -> error code
    files: dict[str, bytes]  # key -> bytes


def make_sample(tmp: Path, prefix: str, count: int, seed: int, bad: bool = True) -> Sample:
    rows = synth.write_sample_set(tmp, count=count, seed=seed, include_bad=bad)
    good = [json.loads(line) for line in (tmp / "expected.jsonl").read_text().splitlines()]
    bad_codes = {}
    if bad:
        for line in (tmp / "bad.jsonl").read_text().splitlines():
            row = json.loads(line)
            bad_codes[prefix + row["file"]] = row["error_code"]
    files = {prefix + Path(r["path"]).name: (tmp / r["path"]).read_bytes() for r in rows}
    return Sample(prefix, good, bad_codes, files)


def upload(s3, bucket: str, sample: Sample) -> None:
    for key, body in sample.files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _rows(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def assert_exact(conn, sample: Sample, run_ids: list[str]) -> None:
    like = sample.prefix + "%"
    statuses = dict(
        _rows(conn, "SELECT status, count(*) FROM imr.s3_objects WHERE key LIKE %s GROUP BY 1", (like,))
    )
    assert statuses.get("pending", 0) == 0 and statuses.get("processing", 0) == 0, statuses
    assert statuses.get("loaded", 0) == len(sample.good), statuses
    quarantined = dict(
        _rows(
            conn,
            "SELECT key, error_code FROM imr.s3_objects WHERE key LIKE %s AND status = 'quarantined'",
            (like,),
        )
    )
    assert quarantined == sample.bad
    letters = {
        case: (key, items)
        for case, key, items in _rows(
            conn,
            "SELECT l.case_number, l.source_key, (SELECT count(*) FROM imr.items i"
            " WHERE i.case_number = l.case_number) FROM imr.letters l WHERE l.source_key LIKE %s",
            (like,),
        )
    }
    assert sorted(letters) == sorted(e["case_number"] for e in sample.good)
    for e in sample.good:
        key, n_items = letters[e["case_number"]]
        assert key == sample.prefix + e["file"]
        assert n_items == len(e["items"]), e["case_number"]
        decisions = [
            r[0]
            for r in _rows(
                conn,
                "SELECT decision FROM imr.items WHERE case_number = %s ORDER BY seq",
                (e["case_number"],),
            )
        ]
        assert decisions == [i["decision"] for i in e["items"]], e["case_number"]
    fields = _rows(
        conn,
        "SELECT case_number, decision_date::text, outcome, patient_age FROM imr.letters"
        " WHERE source_key LIKE %s",
        (like,),
    )
    truth = {e["case_number"]: (e["decision_date"], e["outcome"], e["patient_age"]) for e in sample.good}
    assert {c: tuple(rest) for c, *rest in fields} == truth
    for run_id in run_ids:
        dq = _rows(conn, "SELECT check_name, passed FROM imr.dq_results WHERE run_id = %s", (run_id,))
        assert dq and all(passed for _, passed in dq), (run_id, dq)
