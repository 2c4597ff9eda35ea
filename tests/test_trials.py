"""Trial results as a cited table: on the seed news article, against hand labels; every cell
an exact span of its document; JSON and CSV out of the CLI and the HTTP API."""

from __future__ import annotations

import csv
import io
import json

from rag.eval.bench_effects import seed_trials
from typer.testing import CliRunner

from rag.paths import gold_dir
from rag.verify.numbers import extract_numbers


def test_the_seed_articles_trials_match_the_hand_labels(seed_index) -> None:
    scored = seed_trials(seed_index, gold_dir() / "seed_trials.json")
    cells_but_direction = [w for w in scored["wrong_cells"] if w["column"] != "direction"]
    assert cells_but_direction == [], cells_but_direction
    assert scored["rows_not_in_gold"] == []  # the review's title words are not trials
    directions = {r.trial.text: r.direction for r in seed_index.trials()}
    # A single-arm result (no comparator) gets no direction; two-arm results get one.
    assert directions["NCT03425006"] is None and directions["NCT04911166"] is None
    assert directions["HARMONi-A"] in ("increased", "decreased", "no difference")


def test_every_cell_is_an_exact_span_and_its_numbers_are_in_it(seed_index) -> None:
    rows = seed_index.trials()
    assert len(rows) == 5
    for row in rows:
        doc = seed_index.index.load_document(row.trial.doc_id)
        for cell in row.cells().values():
            if cell is not None:
                assert doc.text[cell.start : cell.end] == cell.text
        if row.result is not None:
            assert extract_numbers(row.result.text)  # a result carries its figures


def test_cli_prints_json_and_writes_csv(seed_index, tmp_path) -> None:
    from rag.cli import app

    out = tmp_path / "trials.csv"
    index = str(seed_index.settings.index.dir)
    done = CliRunner().invoke(app, ["trials", "--json", "--csv", str(out), "--index", index])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout[done.stdout.index("[") :])
    harmoni = next(r for r in rows if r["trial"]["text"] == "HARMONi-A")
    assert harmoni["registry_id"]["text"] == "NCT05184712"
    assert "7.1 months" in harmoni["result"]["text"]
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["trial"] for r in table} == {r["trial"]["text"] for r in rows}
    assert next(r for r in table if r["trial"] == "HARMONi-A")["phase"] == "phase 3"
