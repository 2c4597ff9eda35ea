from __future__ import annotations

from rag.verify.citations import parse_answer
from rag.verify.numbers import extract_numbers, untraced

PASSAGE = (
    "The median PFS was 7.1 months for the combination arm versus 4.8 months for the placebo "
    "(HR, 0.46; P < .001) in HARMONi-A (NCT05184712), presented at the 26th congress."
)


def test_number_kinds_and_canonical_forms() -> None:
    found = {
        (n.kind, n.canonical)
        for n in extract_numbers(
            "ORR 62% [1], HR .46, P = .001, 1,000 patients, 26th congress, NCT05184712 [2]."
        )
    }
    assert ("percent", "62") in found
    assert ("number", "0.46") in found
    assert ("p-value", "p=0.001") in found
    assert ("number", "1000") in found
    assert ("ordinal", "26th") in found
    assert ("trial-id", "NCT05184712") in found
    assert not any(c in ("1", "2") for _, c in found)  # citation markers are not numbers


def test_untraced_numbers_are_the_ones_not_in_passages() -> None:
    assert untraced("PFS was 7.1 vs 4.8 months (HR 0.46; P<.001) [1].", [PASSAGE]) == []
    assert [n.text for n in untraced("PFS was 7.4 months [1].", [PASSAGE])] == ["7.4"]
    # A p-value keeps its comparator; an ordinal is not the bare number.
    assert [n.text for n in untraced("P = .001", [PASSAGE])] == ["P = .001"]
    assert [n.text for n in untraced("the 25th congress", [PASSAGE])] == ["25th"]
    assert [n.text for n in untraced("NCT05184713", [PASSAGE])] == ["NCT05184713"]


def test_citation_parsing_valid_invalid_ranges_and_trailing_markers() -> None:
    sentences = parse_answer(
        "Median PFS was 7.1 months [1]. HR was 0.46 [1, 3][9]. Both arms got chemo. [2-3]", 3
    )
    assert [s.citations for s in sentences] == [[1], [1, 3], [2, 3]]
    assert sentences[1].invalid == [9]
    assert sentences[0].text == "Median PFS was 7.1 months."
    assert sentences[2].text == "Both arms got chemo."
    assert parse_answer("P < .001 [1].", 1)[0].text == "P < .001."
