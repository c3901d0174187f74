"""The first 2013 letter format, "Notice of Independent Medical Review Determination"
(../shared/format-2013-notice.md): synthetic notices parse to their truth, the decision sentences'
polarity survives wrapping and run-together words, the two copies of the decision list must agree,
a document that only quotes a notice is rejected, and `letter_format` (contract v3) reaches the CLI
JSON and the warehouse."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import imr_synth
from imr.errors import LetterError
from imr.letter import from_pdf
from imr.parse.notice2013 import PARTIAL_WARNING, _decisions, is_notice
from imr.parse.pdftext import extract_lines
from imr.warehouse import ObjectResult, Parsed
from support.helpers import score_pairs

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "seed-letter-2013-era.txt"
N_NOTICES = 36


pytestmark = pytest.mark.usefixtures("quiet_pdfminer")


def _notice(seed: str, **kw) -> tuple[imr_synth.LetterSpec, bytes]:
    spec = imr_synth.random_spec(random.Random(seed), style="notice2013", **kw)
    return spec, imr_synth.render_spec(spec)


def _spec_where(prefix: str, partial: bool) -> imr_synth.LetterSpec:
    """The first notice of a seed series whose item blocks are (not) recognizable."""
    specs = (imr_synth.random_spec(random.Random(f"{prefix}-{i}"), style="notice2013") for i in range(100))
    return next(s for s in specs if (s.notice.blocks == "none") == partial)


@pytest.fixture(scope="module")
def notices() -> list[tuple[imr_synth.LetterSpec, bytes]]:
    return [_notice(f"notice-{i}") for i in range(N_NOTICES)]


# --- synthetic notices ------------------------------------------------------------------------


def test_generated_notices_parse_to_their_truth(notices, tmp_path: Path) -> None:
    pairs, parsed = [], []
    for spec, pdf in notices:
        got = from_pdf(pdf)
        parsed.append((spec, got))
        pairs.append((spec.letter.to_dict(), got.to_dict()))
    score = score_pairs(tmp_path, pairs)
    assert score["field_accuracy"] == 1.0, score["mismatches"][:3]
    assert score["letters_all_correct"] == len(pairs)
    for spec, got in parsed:
        truth = spec.letter
        assert got.letter_format == "notice_2013"
        assert got.clinical_case_summary == truth.clinical_case_summary
        assert [(i.category, i.subcategory, i.citations) for i in got.items] == [
            (i.category, i.subcategory, i.citations) for i in truth.items
        ]
        partial = PARTIAL_WARNING in [w.code for w in got.warnings]
        assert partial == (spec.notice.blocks == "none"), truth.case_number
        if partial:
            assert all(i.decision_rationale is None and i.maximus_guideline is None for i in got.items)


def test_generated_notices_cover_the_hard_cases(notices) -> None:
    """The set above really holds what the parser must survive (else its 100 % proves little)."""
    seen: set[str] = set()
    for spec, pdf in notices:
        n = spec.notice
        seen.add(f"blocks {n.blocks}")
        seen.add("one item" if len(spec.items) == 1 else "several items")
        seen |= {f"decision {s.item.decision}" for s in spec.items}
        verdicts = " ".join(n.verdicts[0] + n.verdicts[1])
        seen |= {w for w in ("notmedically", "medicallynecessary", "isnot") if w in verdicts}
        labels = [label for label, _ in n.header_rows]
        seen.add("injury in header" if "Date of Injury:" in labels else "injury from summary only")
        seen.add("priority stated" if "Priority:" in labels else "no priority")
        if any(s.item.request.startswith(("a ", "an ")) for s in spec.items):
            seen.add("article kept")
        texts = [ln.text for ln in extract_lines(pdf)]
        starts = [k for k, t in enumerate(texts) if t.startswith("1) MAXIMUS")]
        if starts and "appropriate." not in texts[starts[0]]:
            seen.add("sentence wrapped")
    assert seen >= {
        "blocks seed", "blocks long", "blocks none", "one item", "several items", "decision Upheld",
        "decision Overturned", "notmedically", "medicallynecessary", "isnot", "injury in header",
        "injury from summary only", "priority stated", "no priority", "article kept", "sentence wrapped",
    }  # fmt: skip


def test_copies_of_the_decision_list_must_agree() -> None:
    spec, _ = _notice("disagree", n_items=2)
    first = spec.notice.verdicts[0]
    first[1] = (
        "is medically necessary and appropriate."
        if spec.items[1].item.decision == "Upheld"
        else "is not medically necessary and appropriate."
    )
    with pytest.raises(LetterError) as exc:
        from_pdf(imr_synth.render_spec(spec))
    assert exc.value.code == "item_structure" and "disagree" in exc.value.message


def test_a_decision_sentence_that_cannot_be_read_is_an_item_structure_error() -> None:
    spec, _ = _notice("unread", n_items=3)
    spec.notice.verdicts[1][2] = "is partially medically necessary and appropriate."
    with pytest.raises(LetterError) as exc:
        from_pdf(imr_synth.render_spec(spec))
    assert exc.value.code == "item_structure"


# --- the decision sentences -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1) MAXIMUS Federal Services, Inc. has determined the request for a lumbar MRI is not\n"
            "medically necessary and appropriate.",
            [("a lumbar MRI", "Upheld")],
        ),
        (
            "1) MAXIMUS Federal Services, Inc. has determined the request for Norco 10/325mg #60 is"
            " notmedically necessary and appropriate. 2) MAXIMUS Federal Services, Inc. has determined"
            " that the request for an H-wave unit is medically necessary and appropriate.",
            [("Norco 10/325mg #60", "Upheld"), ("an H-wave unit", "Overturned")],
        ),
        (
            "1) MAXIMUS Federal Services, Inc. has determined the request for 12 sessions of physical"
            " therapy isnot medically necessaryand appropriate.",
            [("12 sessions of physical therapy", "Upheld")],
        ),
    ],
)
def test_decision_sentences_and_polarity(text: str, expected: list[tuple[str, str]]) -> None:
    assert _decisions(" ".join(text.split()), "test") == expected


def test_decision_numbers_must_run_1_2_3() -> None:
    text = (
        "1) MAXIMUS Federal Services, Inc. has determined the request for A is not medically necessary and"
        " appropriate. 3) MAXIMUS Federal Services, Inc. has determined the request for B is medically"
        " necessary and appropriate."
    )
    with pytest.raises(LetterError) as exc:
        _decisions(text, "test")
    assert exc.value.code == "item_structure"


# --- detection and the near miss --------------------------------------------------------------


def test_document_quoting_a_notice_is_not_a_letter() -> None:
    pdf = imr_synth.bad_files()["notice_quoted"]
    assert imr_synth.BAD_FILE_CODES["notice_quoted"] == "not_an_imr_letter"
    lines = extract_lines(pdf)
    text = " ".join(ln.text for ln in lines)
    assert "Notice of Independent Medical Review Determination" in text
    assert "has determined the request for" in text and "not medically necessary and appropriate" in text
    assert not is_notice(lines)
    with pytest.raises(LetterError) as exc:
        from_pdf(pdf)
    assert exc.value.code == "not_an_imr_letter"


def test_later_formats_are_not_notices_and_say_which_they_are() -> None:
    for style, fmt in (("2016", "final_2016"), ("2013", "seed_2013")):
        truth, pdf = imr_synth.random_letter(random.Random(f"fmt-{style}"), style=style)
        assert not is_notice(extract_lines(pdf))
        assert truth.letter_format == from_pdf(pdf).letter_format == fmt
    if SEED.exists():
        truth, pdf = imr_synth.seed_letter_pdf(SEED)
        assert truth.letter_format == from_pdf(pdf).letter_format == "seed_2013"


# --- CLI and warehouse ------------------------------------------------------------------------


def test_cli_json_carries_letter_format_and_the_partial_warning(tmp_path: Path) -> None:
    spec = _spec_where("cli", partial=True)
    path = tmp_path / "notice.pdf"
    path.write_bytes(imr_synth.render_spec(spec))
    out = subprocess.run(
        [sys.executable, "-m", "imr", "parse", str(path)], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["letter_format"] == "notice_2013"
    assert row["case_number"] == spec.letter.case_number
    assert PARTIAL_WARNING in [w["code"] for w in row["warnings"]]
    assert [(i["request"], i["decision"]) for i in row["items"]] == [
        (s.item.request, s.item.decision) for s in spec.items
    ]
    assert all(i["decision_rationale"] is None for i in row["items"])


@pytest.mark.integration
def test_warehouse_stores_letter_format(wh_conn) -> None:
    from imr import warehouse

    full, partial = _spec_where("wh", partial=False), _spec_where("wh", partial=True)
    _, later_pdf = imr_synth.random_letter(random.Random("wh-2016"), n_items=2)
    letters = {
        "n/full.pdf": from_pdf(imr_synth.render_spec(full)),
        "n/partial.pdf": from_pdf(imr_synth.render_spec(partial)),
        "n/later.pdf": from_pdf(later_pdf),
    }
    objects = [
        {"key": k, "etag": f'"{k}-etag"', "size": 1, "last_modified": datetime(2013, 9, 20, tzinfo=UTC)}
        for k in letters
    ]
    warehouse.register_objects(wh_conn, "imr-letters", objects, "run-notice")
    for batch_id in warehouse.claim_batches(wh_conn, "imr-letters", "run-notice", 10):
        warehouse.get_batch(wh_conn, batch_id)
    results = [ObjectResult(k, f"{k}-etag", f"sha-{k}", Parsed(v)) for k, v in letters.items()]
    warehouse.load_batch(wh_conn, "imr-letters", results, "run-notice", "load", 0)
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute("SELECT source_key, letter_format, decision_date FROM imr.letters ORDER BY 1")
        rows = cur.fetchall()
        cur.execute(
            "SELECT l.source_key, count(*), count(i.decision_rationale) FROM imr.items i"
            " JOIN imr.letters l USING (case_number) GROUP BY 1 ORDER BY 1"
        )
        items = cur.fetchall()
    assert [(k, f) for k, f, _ in rows] == [
        ("n/full.pdf", "notice_2013"),
        ("n/later.pdf", "final_2016"),
        ("n/partial.pdf", "notice_2013"),
    ]
    assert all(isinstance(d, date) for _, _, d in rows)
    assert items == [
        ("n/full.pdf", len(full.items), len(full.items)),
        ("n/later.pdf", 2, 2),
        ("n/partial.pdf", len(partial.items), 0),
    ]


def test_loader_refuses_an_unknown_letter_format() -> None:
    from imr.validate import record_rejection as validation_error

    letter = imr_synth.random_letter(random.Random("bad-format"), n_items=1)[0]
    assert validation_error(letter) is None
    letter.letter_format = "notice_2099"
    code, message = validation_error(letter)
    assert code == "header_missing_field" and "letter_format" in message
