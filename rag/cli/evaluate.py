"""`rag eval ...`: benchmarks, gold-set runs, training the shipped artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import (
    IndexOpt,
    JsonOpt,
    PresetOpt,
    SetOpt,
    build_settings,
    console,
    eval_app,
    out,
    progress_bar,
    user_errors,
)
from rag.settings import load_settings

# -- rag eval ... -------------------------------------------------------------------------------


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Shared-schema dataset folder.")
    ] = None,
    beir: Annotated[
        Path | None, typer.Option("--beir", help="BEIR folder (corpus/queries/qrels).")
    ] = None,
    split: Annotated[str, typer.Option("--split")] = "dev",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Score a random sample of questions.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    half: Annotated[
        str | None,
        typer.Option("--half", help="tune / report: one half of the questions (id hash)."),
    ] = None,
    rerank_model: Annotated[
        Path | None, typer.Option("--rerank-model", help="Cross-encoder checkpoint.")
    ] = None,
    rerank_folds: Annotated[
        Path | None,
        typer.Option("--rerank-folds", help="Dir with fold-0/ fold-1/ cross-fitted checkpoints."),
    ] = None,
    rows: Annotated[
        str, typer.Option("--rows", help="Comma list: bm25,dense,hybrid,rerank.")
    ] = "bm25,dense,hybrid,rerank",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results JSON here.")
    ] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Score BM25 / dense / hybrid / hybrid+rerank on a dataset (nDCG@10, recall, MRR, latency)."""
    from rag.eval.evaluators import RetrievalEvaluator

    if (dataset is None) == (beir is None):
        console.print("[red]error:[/red] give exactly one of --dataset or --beir")
        raise typer.Exit(2)
    with user_errors():
        evaluator = RetrievalEvaluator(
            dataset=dataset,
            beir=beir,
            split=split,
            limit=limit,
            seed=seed,
            half=half,
            rerank_model=rerank_model,
            rerank_folds=rerank_folds,
            rows=[r.strip() for r in rows.split(",") if r.strip()],
            settings=build_settings(index, preset, set_),
        )
        evaluator()
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(evaluator.details, indent=2))


@eval_app.command("train-reranker")
def eval_train_reranker(
    fold: Annotated[
        str, typer.Option("--fold", help="fold-0, fold-1 (cross-fitted halves) or full.")
    ] = "full",
    all_folds: Annotated[
        bool, typer.Option("--all", help="Train fold-0, fold-1 and full in one go.")
    ] = False,
    datasets_dir: Annotated[
        Path | None,
        typer.Option("--datasets", help="Folder with scifact/ bioasq/ pubmedqa/ (dev splits)."),
    ] = None,
    out_root: Annotated[
        Path | None, typer.Option("--out", help="Recipe folder (default: the reranker cache).")
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option("--epochs", help="Passes over the training questions (recipe default: 2)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Recipe name (its cache folder); derived from overrides."),
    ] = None,
    ship: Annotated[
        bool,
        typer.Option("--ship", help="Copy the full adapter into rag/rerank/artifacts/."),
    ] = False,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train the MiniLM cross-encoder reranker (a LoRA adapter) on the dev splits."""
    from rag.eval.reranker_groups import FOLDS, Recipe
    from rag.eval.train_reranker import ship_adapter, train_fold
    from rag.rerank.cross_encoder import recipe_dir

    recipe = Recipe()
    if epochs is not None and epochs != recipe.epochs:
        # A changed recipe never lands in the default recipe's folder unless asked to.
        recipe.epochs = epochs
        recipe.name = f"{recipe.name}-e{epochs:g}"
    if name:
        recipe.name = name

    folds = list(FOLDS) if all_folds else [fold if fold in FOLDS else f"fold-{fold}"]
    if any(f not in FOLDS for f in folds):
        console.print(f"[red]error:[/red] --fold must be one of {', '.join(FOLDS)} (or 0 / 1)")
        raise typer.Exit(2)
    with user_errors():
        settings = build_settings(index, preset, set_)
        for f in folds:
            path = train_fold(
                f, recipe, settings=settings, datasets_dir=datasets_dir, out_root=out_root
            )
            out.print(str(path))
        if ship:
            full = (out_root or recipe_dir(recipe.name)) / "full"
            out.print(f"shipped: {ship_adapter(full)}")


@eval_app.command("run")
def eval_run(
    gold: Annotated[
        list[str], typer.Argument(help="Gold JSONL file(s), or a dataset folder (shared or BEIR).")
    ],
    corpus: Annotated[
        list[str] | None, typer.Option("--corpus", help="Files/folders or a dataset folder.")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings TOML file.")] = None,
    split: Annotated[str, typer.Option("--split")] = "dev",
    limit: Annotated[int | None, typer.Option("--limit")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    tag: Annotated[
        list[str] | None, typer.Option("--filter", help="Only items with this tag.")
    ] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="Fail if metric < value: --min correct=0.9")
    ] = None,
    yes_no_mode: Annotated[
        str, typer.Option("--yes-no", help="classify, generate, or auto (generate if key facts)")
    ] = "auto",
    half: Annotated[
        str, typer.Option("--half", help="tune, report or all (halves fixed by an id hash)")
    ] = "all",
    draft_cache: Annotated[
        Path | None,
        typer.Option("--draft-cache", help="Replay drafts kept here; keep new ones (no timings)."),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run a gold set end to end and write a reproducible run directory."""
    import os

    from rag.eval.evaluators import GoldRunEvaluator
    from rag.eval.harness import gate

    if config is not None:
        os.environ["RAG_CONFIG"] = str(config)
    with user_errors(), progress_bar("evaluating") as progress:
        evaluator = GoldRunEvaluator(
            gold=gold,
            corpus=corpus or [],
            run_dir=out_dir,
            half=half,
            split=split,
            preset=preset,
            overrides=set_ or [],
            limit=limit,
            seed=seed,
            tags=tag or [],
            yes_no_mode=yes_no_mode,
            draft_cache=draft_cache,
            progress=progress,
        )
        evaluator()
    metrics = evaluator.details
    run_dir = evaluator.run_dir
    assert run_dir is not None
    out.print((run_dir / "summary.md").read_text())
    out.print(f"run directory: {run_dir}")
    thresholds = {}
    for item in minimum or []:
        key, _, value = item.partition("=")
        thresholds[key.strip()] = float(value)
    failures = gate(metrics, thresholds)
    for f in failures:
        out.print(f"[red]below threshold:[/red] {f}")
    if failures:
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="Baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="Candidate run directory.")],
    as_json: JsonOpt = False,
) -> None:
    """Paired bootstrap deltas (B - A) with 95% CIs and per-question wins/losses."""
    from rag.eval.compare import compare_runs, format_comparison

    result = compare_runs(run_a, run_b)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        out.print(format_comparison(result), highlight=False)


@eval_app.command("report")
def eval_report(run_dir: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Write report.html (plots inlined, works offline) and summary.md for a run."""
    from rag.eval.report import write_report

    path = write_report(run_dir)
    out.print(f"wrote {path} and {run_dir / 'summary.md'}")


@eval_app.command("import")
def eval_import(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (shared schema or BEIR).")],
    output: Annotated[Path, typer.Option("--out", help="Gold JSONL to write.")],
    split: Annotated[str, typer.Option("--split")] = "dev",
) -> None:
    """Convert a benchmark's questions into the gold-set format."""
    from rag.eval.gold import write_gold
    from rag.eval.importers import gold_from_path

    with user_errors():
        items = gold_from_path(dataset, split)
        write_gold(items, output)
    out.print(f"wrote {len(items)} gold items to {output}")


@eval_app.command("support")
def eval_support(
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Labelled pairs JSONL.")] = None,
    scifact: Annotated[
        Path | None,
        typer.Option("--scifact", help="Held-out check on SciFact dev claims (dataset folder)."),
    ] = None,
    as_json: JsonOpt = False,
    show_errors: Annotated[int, typer.Option("--errors", help="Misjudged pairs to list.")] = 50,
) -> None:
    """Precision/recall of the sentence-support checker on labelled sentence-passage pairs."""
    from rag.assistant import Assistant
    from rag.eval.evaluators import SupportEvaluator

    # The rules alone, as the checker ran before the trained judge existed.
    evaluator = SupportEvaluator(pairs=pairs, scifact=scifact)
    evaluator(Assistant(load_settings()))
    result = evaluator.details
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(
        f"pairs {result['n']}: precision {result['precision']:.3f}, recall "
        f"{result['recall']:.3f}, F1 {result['f1']:.3f}, accuracy {result['accuracy']:.3f}"
    )
    out.print(f"errors by type: {result['errors_by_type']}")
    for e in result["errors"][:show_errors]:
        out.print(
            f"  {e['id']} gold={'supported' if e['gold'] else 'unsupported'} "
            f"got={e['verdict']} ({e['type']}): {e['sentence']}"
        )


DATASETS = Path("../shared/datasets")


@eval_app.command("judge")
def eval_judge(
    datasets: Annotated[
        Path, typer.Option("--datasets", help="The shared datasets folder.")
    ] = Path("../shared/datasets"),
    half: Annotated[str, typer.Option("--half", help="report (held out) or tune")] = "report",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
) -> None:
    """Precision/recall of the trained answer judge on third-party pairs it never saw."""
    from rag.assistant import Assistant
    from rag.eval.evaluators import JudgeEvaluator

    assistant = Assistant(load_settings())
    evaluator = JudgeEvaluator(datasets=datasets, half=half)
    with user_errors():
        evaluator(assistant)
    result = evaluator.details
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")

    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for task, r in result["judge_alone"].items():
        out.print(
            f"judge {task}: precision {f(r['precision'])} recall {f(r['recall'])} "
            f"AUC {f(r['auc'])} (n {r['n']}, threshold {r['threshold']:.3f})"
        )
    for name, r in result["scifact_checker"].items():
        out.print(
            f"SciFact {name}: precision {f(r['precision'])} recall {f(r['recall'])} (n {r['n']})"
        )
    r = result["bioasq_answer_sentences"]
    out.print(f"BioASQ answer sentences: P {f(r['precision'])} R {f(r['recall'])} (n {r['n']})")


@eval_app.command("trust")
def eval_trust(
    half: Annotated[str, typer.Option("--half", help="report (held out) or tune")] = "report",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
    before: Annotated[
        bool, typer.Option("--before", help="The trust features off (the starting point).")
    ] = False,
    datasets: Annotated[Path, typer.Option("--datasets")] = DATASETS,
    factoid: Annotated[int, typer.Option("--factoid", help="BioASQ factoid sample.")] = 60,
    listed: Annotated[int, typer.Option("--list", help="BioASQ list sample.")] = 40,
    yes_no: Annotated[
        int | None, typer.Option("--yes-no", help="Sample of yes/no questions (default all).")
    ] = None,
    draft_cache: Annotated[Path | None, typer.Option("--draft-cache")] = None,
    runs: Annotated[Path, typer.Option("--runs", help="Where the run directories go.")] = Path(
        "runs"
    ),
    part: Annotated[
        list[str] | None,
        typer.Option(
            "--part",
            help="Only this part (repeatable): seed, bioasq-yesno, bioasq-factoid, bioasq-list, "
            "pubmedqa; its figures replace those in --json, the others stay.",
        ),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Every figure of answer trust on one half: seed variants, BioASQ, PubMedQA, latency."""
    from rag.eval.evaluators import TrustEvaluator

    with user_errors():
        TrustEvaluator(
            half=half,
            json_out=json_out,
            before=before,
            datasets=datasets,
            factoid=factoid,
            listed=listed,
            yes_no=yes_no,
            draft_cache=draft_cache,
            runs=runs,
            overrides=set_ or [],
            preset=preset,
            parts=part,
        )()


@eval_app.command("twins")
def eval_twins(
    gold: Annotated[list[Path], typer.Argument(help="Gold JSONL file(s) to twin.")],
    corpus: Annotated[
        list[Path] | None, typer.Option("--corpus", help="Corpus files/folders (default: seeds).")
    ] = None,
    output: Annotated[Path, typer.Option("--out", help="Twin gold JSONL to write.")] = Path(
        "eval/gold/seed_twins.jsonl"
    ),
) -> None:
    """Entity-swapped twins: each question about a trial/drug/gene no document names."""
    from rag.eval.gold import load_gold, write_gold
    from rag.eval.twins import corpus_text, make_twins
    from rag.paths import seeds_dir

    with user_errors():
        items = load_gold(*gold)
        twins = make_twins(items, corpus_text(corpus or [seeds_dir()]))
        write_gold(twins, output)
    out.print(f"wrote {len(twins)} twins of {len(items)} questions to {output}")


@eval_app.command("list")
def eval_list() -> None:
    """The registered evaluators with their primary metric, and the scripts `bench` runs."""
    from rag.eval.evaluators import EVALUATORS, SCRIPTS

    for name, cls in EVALUATORS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        out.print(f"{name:10} {cls.primary_key():24} {doc}")
    out.print("")
    out.print(f"rag eval bench NAME: {', '.join(SCRIPTS)}")


@eval_app.command(
    "bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def eval_bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A script `rag eval list` names.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results JSON here (its --out).")
    ] = None,
) -> None:
    """Run a resource benchmark or training script; arguments after NAME go to it."""
    import importlib

    from rag.eval.evaluators import SCRIPTS

    if name not in SCRIPTS:
        console.print(f"[red]error:[/red] no script {name!r}; the scripts are {', '.join(SCRIPTS)}")
        raise typer.Exit(2)
    module, writes_json = SCRIPTS[name]
    argv = list(ctx.args)
    if json_out is not None:
        if not writes_json:
            console.print(f"[red]error:[/red] {name} writes no JSON; give its own --out")
            raise typer.Exit(2)
        argv += ["--out", str(json_out)]
    code = importlib.import_module(module).main(argv)
    raise typer.Exit(code or 0)
