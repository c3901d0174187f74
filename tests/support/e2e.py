"""The end-to-end DAG tests' checks: letters from the generator uploaded, the warehouse read back in
the record contract's shape and compared with the generator's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import imr_synth
from imr.records import LETTER_FIELDS

TEXT_FIELDS = ("claims_administrator_guideline", "maximus_guideline", "decision_rationale")


def upload(s3, bucket: str, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def sample(tmp_path: Path, count: int, seed: int) -> tuple[list[dict], list[dict], dict[str, bytes]]:
    rows = imr_synth.write_sample_set(tmp_path, count=count, seed=seed)
    good = [json.loads(line) for line in (tmp_path / "expected.jsonl").read_text().splitlines()]
    bad = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    files = {f"letters/{Path(r['path']).name}": (tmp_path / r["path"]).read_bytes() for r in rows}
    return good, bad, files


def records(conn) -> list[dict]:
    """The warehouse back in the contract's JSON shape."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT l.case_number, l.date_assigned, l.date_of_injury, l.decision_date, l.ur_denial_date,
                   l.application_received, l.priority, l.reviewer_specialty, l.reviewer_licensure_states,
                   l.patient_age, l.patient_sex, l.outcome, l.letter_format, l.source_key,
                   coalesce(json_agg(json_build_object(
                       'seq', i.seq, 'request', i.request, 'original_request', i.original_request,
                       'decision', i.decision,
                       'claims_administrator_guideline', i.claims_administrator_guideline,
                       'maximus_guideline', i.maximus_guideline, 'decision_rationale', i.decision_rationale)
                       ORDER BY i.seq) FILTER (WHERE i.seq IS NOT NULL), '[]')
            FROM imr.letters l LEFT JOIN imr.items i USING (case_number)
            GROUP BY l.case_number ORDER BY l.case_number
            """
        )
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row, strict=True))
            d["items"] = d.pop("coalesce")
            for k, v in d.items():
                if hasattr(v, "isoformat"):
                    d[k] = v.isoformat()
            out.append(d)
        return out


def assert_matches_truth(conn, expected: list[dict]) -> None:
    actual = records(conn)
    assert sorted(r["case_number"] for r in actual) == sorted(e["case_number"] for e in expected)
    by_case = {r["case_number"]: r for r in actual}
    for e in expected:
        a = by_case[e["case_number"]]
        for field in LETTER_FIELDS:
            assert a[field] == e[field], (e["case_number"], field)
        assert [(i["seq"], i["request"], i["original_request"], i["decision"]) for i in a["items"]] == [
            (i["seq"], i["request"], i["original_request"], i["decision"]) for i in e["items"]
        ], e["case_number"]
        for ai, ei in zip(a["items"], e["items"], strict=True):
            for field in TEXT_FIELDS:
                assert " ".join((ai[field] or "").split()) == " ".join((ei[field] or "").split()), (
                    e["case_number"],
                    ai["seq"],
                    field,
                )


def count(conn, sql: str, params: tuple = ()) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def dq_results(conn, run_id: str) -> dict[str, bool]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT check_name, passed FROM imr.dq_results WHERE run_id = %s", (run_id,))
        return dict(cur.fetchall())


def query(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
