"""`rag search` and `rag ask`: passages and cited answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rag.cli.common import (
    IndexOpt,
    JsonOpt,
    PresetOpt,
    SetOpt,
    app,
    build_assistant,
    build_settings,
    console,
    ensure_index,
    out,
    user_errors,
)
from rag.references import check_format
from rag.types import Filters


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Question or keywords.")],
    k: Annotated[int | None, typer.Option("-k", "--k", help="Number of passages.")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only these document ids.")] = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="Only these formats (pdf, jats, ...).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these document kinds.")
    ] = None,
    year_min: Annotated[int | None, typer.Option("--year-min")] = None,
    year_max: Annotated[int | None, typer.Option("--year-max")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid, dense or lexical.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank")] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the passages that best match a question."""
    filters = Filters(
        doc_ids=tuple(doc) if doc else None,
        formats=tuple(fmt) if fmt else None,
        kinds=tuple(kind) if kind else None,
        year_min=year_min,
        year_max=year_max,
    )
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
        ensure_index(assistant, as_json)
        response = assistant.search(query, k=k, filters=filters, mode=mode, rerank=rerank)
    if as_json:
        out.print(response.model_dump_json(indent=2))
        return
    if response.expanded_query:
        out.print(f"[dim]expanded: {response.expanded_query}[/dim]")
    if not response.hits:
        out.print("no matching passages")
    for hit in response.hits:
        p = hit.provenance
        where = " > ".join(p.section) or "—"
        page = f", p. {p.page}" if p.page else ""
        why = hit.why
        reasons = []
        if why.lexical_rank:
            reasons.append(f"bm25 #{why.lexical_rank}")
        if why.dense_rank:
            reasons.append(f"dense #{why.dense_rank} ({why.dense_score:.2f})")
        if why.rerank_score is not None:
            reasons.append(f"rerank {why.rerank_score:.2f}")
        out.print(
            f"[bold][{hit.rank}] {p.title}[/bold] [dim]({p.doc_id}; {where}{page}; "
            f"chars {p.char_start}-{p.char_end}; {', '.join(reasons)})[/dim]"
        )
        out.print(hit.text.strip())
        out.print()
    console.print(f"[dim]{response.timings_ms.get('total', 0):.0f} ms[/dim]")


# -- rag ask ------------------------------------------------------------------------------------


def _read_questions(path: Path) -> list[dict[str, Any]]:
    """JSONL with a "question" field, or plain text with one question per line."""
    items: list[dict[str, Any]] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"{path}:{line_no}: invalid JSON ({exc.msg})") from exc
            if "question" not in record:
                raise typer.BadParameter(f'{path}:{line_no}: no "question" field')
            items.append(record)
        else:
            items.append({"question": line})
    return items


def _print_removed(sentences: list[Any]) -> None:
    """What verification withheld and why, so a reader can see what the model tried to say."""
    flagged = [s for s in sentences if s.dropped]
    if flagged:
        out.print(f"[dim]{len(flagged)} sentence(s) of the draft removed:[/dim]")
        for s in flagged:
            # The last reason is the decisive one (a non-answer check runs after support).
            reason = s.reasons[-1] if s.reasons else "unsupported"
            out.print(f"[dim]  - “{escape(s.text)}” — {escape(reason)}[/dim]")


def _print_answer(response: Any, debug: bool) -> None:
    for clause in response.ignored_instructions:
        out.print(
            f"[dim]Ignored in the question (an instruction to the model): “{escape(clause)}”[/dim]"
        )
    if response.abstained:
        out.print(f"[yellow]{response.answer}[/yellow]")
        if response.abstain_reason:
            out.print(f"[dim]({response.abstain_reason})[/dim]")
        _print_removed(response.sentences)
        if response.passages:
            out.print("\n[bold]Closest passages[/bold]")
            for hit in response.passages[:3]:
                p = hit.provenance
                out.print(f"- {p.title} [dim]({p.doc_id})[/dim]: {hit.text[:240].strip()}...")
    else:
        out.print(response.answer)
        if response.quoted:
            out.print("[dim](quoted from the passage: the drafted answer did not hold up)[/dim]")
        verdict = response.verdict
        if verdict is not None and not verdict.shown:
            out.print(
                "[dim](no yes/no verdict: the evidence does not decide it clearly; "
                f"{verdict.label} {verdict.probabilities[verdict.label]:.2f})[/dim]"
            )
        out.print()
        for c in response.citations:
            where = " > ".join(c.section)
            page = f", p. {c.page}" if c.page else ""
            out.print(
                f"[bold][{c.number}] {c.title}[/bold] [dim]({c.doc_id}"
                f"{'; ' + where if where else ''}{page}; {c.verdict})[/dim]"
            )
            for q in c.quotes or []:
                out.print(f"    “{q.text}” [dim](chars {q.char_start}-{q.char_end})[/dim]")
        _print_removed(response.sentences)
    if debug:
        t = response.timings
        console.print(
            f"[dim]evidence {t.get('evidence_ms', 0):.0f} ms · first token "
            f"{t.get('ttft_ms', 0) / 1000:.1f} s · total {t.get('total_ms', 0) / 1000:.1f} s · "
            f"{t.get('prompt_tokens', 0):.0f} prompt tokens ({t.get('cached_prompt_tokens', 0):.0f}"
            f" cached) · {t.get('new_tokens', 0):.0f} new · "
            f"{t.get('decode_tokens_per_s', 0):.1f} tok/s[/dim]"
        )


@app.command("trials")
def trials(
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only these document ids.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV.")] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The trials the documents report: registry id, phase, arms, endpoint, result and the
    effect's direction, every cell an exact span of its document (empty when not found)."""
    from rich.table import Table

    from rag.paths import write_text_atomic
    from rag.trials import COLUMNS, to_csv

    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
        ensure_index(assistant, as_json)
        rows = [r.to_dict() for r in assistant.trials(doc)]
    if csv_out is not None:
        write_text_atomic(csv_out, to_csv(rows))
        console.print(f"wrote {len(rows)} trial(s) to {csv_out}")
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} trials", show_lines=True)
    for name in COLUMNS:
        table.add_column(name.replace("_", " "))
    for row in rows:
        table.add_row(
            *(
                (row[c]["label"] if c == "direction" else escape(row[c]["text"])) if row[c] else "—"
                for c in COLUMNS
            )
        )
    out.print(table)


@app.command("ask")
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="Batch: JSONL with a question field, or one per line."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Batch output JSONL file.")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="Passages given to the model.")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only these document ids.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Print timings and token rates.")] = False,
    cite: Annotated[
        str | None,
        typer.Option("--cite", help="Also print the cited documents as bibtex, ris or csl-json."),
    ] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with citations to the exact passages (or say it cannot)."""
    if (question is None) == (questions is None):
        console.print("[red]error:[/red] give a question or --questions FILE")
        raise typer.Exit(2)
    filters = Filters(doc_ids=tuple(doc) if doc else None)
    with user_errors():
        if cite is not None:
            cite = check_format(cite)  # refused before the model loads
        assistant = build_assistant(build_settings(index, preset, set_))
        ensure_index(assistant, as_json or questions is not None)
        if questions is not None:
            items = _read_questions(questions)
            sink = output.open("w", encoding="utf-8") if output else None
            try:
                for item in items:
                    response = assistant.ask(item["question"], k=k, filters=filters, rerank=rerank)
                    record = (
                        response.model_dump(mode="json") | {"id": item.get("id")}
                        if item.get("id") is not None
                        else response.model_dump(mode="json")
                    )
                    line = json.dumps(record, ensure_ascii=False)
                    if sink:
                        sink.write(line + "\n")
                        sink.flush()
                    else:
                        print(line, flush=True)
            finally:
                if sink:
                    sink.close()
            return
        assert question is not None
        if as_json:
            response = assistant.ask(question, k=k, filters=filters, rerank=rerank)
            record = response.model_dump(mode="json")
            if cite is not None:
                record["references"] = _references(assistant, response, cite)
            print(json.dumps(record, indent=2, ensure_ascii=False))
            return
        live = console.is_terminal
        response = None
        for event in assistant.ask_stream(question, k=k, filters=filters, rerank=rerank):
            if event.type == "evidence" and live and event.data:
                console.print("[dim]evidence while the answer is written:[/dim]")
                for ev in event.data:
                    console.print(f"[dim]  “{ev.text}” — {ev.title}[/dim]")
            elif event.type == "token" and live:
                console.print(event.data, end="", style="dim", highlight=False)
            elif event.type == "retry" and live:
                console.print(f"\n[dim]({event.data['reason']})[/dim]")
            elif event.type == "final":
                response = event.data
        if live:
            console.print()
        _print_answer(response, debug)
        if cite is not None and response is not None:
            print(_references(assistant, response, cite), end="")


def _references(assistant: Any, response: Any, fmt: str) -> str:
    """The answer's cited documents, in citation order, as one reference file."""
    cited = [c.doc_id for c in response.citations]
    return assistant.references(cited, fmt) if cited else ""


# -- rag serve ----------------------------------------------------------------------------------
