"""Score a shape prior's completions from M surface points against baselines: Chamfer-L1, normal
consistency, F-score and seconds per shape, in the stored unit-sphere coordinates.

    python evaluate/eval_shapes.py --checkpoint runs/shapes/checkpoint.pt --context 100 300 1000 \
        --out runs/shapes/eval.json
    python evaluate/eval_shapes.py --checkpoint runs/person/checkpoint.pt --paper runs/person_paper/checkpoint.pt \
        --data ../shared/data/modelnet40_person/modelnet40_person_pc10k.npz --meshes runs/person/meshes \
        --out runs/person/eval.json

Test shapes: the `split == 1` shapes of a file with its own split, else the shapes the run held out
(`--holdout` of train_prior.py), or every shape of `--data` without a split. For each shape and M, the
same M points are drawn for every method (`--seed`). Methods: the prior's SIREN alone (`prior`), the
prior corrected to the context (`prior + context`; hypersiren/modalities/shape/completion.py), with
`--paper CKPT` a `shapes_paper` model (not with `--no-normals`: it reads normals), the context points themselves, retrieval of the nearest training
shape, and a SIREN fitted to the context alone for `--fit-seconds` (0: skip). Meshes: marching cubes on
a `--resolution`^3 grid; `--meshes DIR` writes the corrected prior's as `DIR/context{M}/{index:03d}.ply`
in the data's coordinates. Writes FILE.json and FILE.md (one table per M).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import hypersiren  # noqa: F401  (registers the modalities)
from hypersiren.config import non_negative_float, positive_int, random_seed, run_main
from hypersiren.devices import resolve_device
from hypersiren.modalities.shape import ShapeModality
from hypersiren.modalities.shape.completion import CompletionConfig, FitConfig, fitted_completer, prior_completer
from hypersiren.modalities.shape.data import load_collection
from hypersiren.modalities.shape.protocol import (MESH_RESOLUTION, context_points, evaluate_shapes, markdown_tables,
                                                  retrieval, write_mesh_to_input)
from hypersiren.prior.training import load_prior
from hypersiren.runs import write_json


def main(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    prior = load_prior(args.checkpoint, modality="shape", device=device)
    modality: ShapeModality = prior.modality
    data = modality.data if args.data is None else dataclasses.replace(modality.data, source=args.data, holdout=0,
                                                                        limit=None)
    train = modality.load("train").to(device)  # the run's own training shapes, for retrieval
    collection, test_index = load_collection(data, "heldout")  # with holdout 0: a file's split 1, else all
    test = collection.shapes[test_index][: args.limit].to(device)
    fields = {"prior": prior_completer(prior.model.eval(), CompletionConfig(correct=False)),
              "prior + context": prior_completer(prior.model, CompletionConfig())}
    if args.paper is not None:
        paper = load_prior(args.paper, modality="shape", device=device).model.eval()
        if args.no_normals and paper.config.context_normals:
            print(f"no shapes_paper row: {args.paper} reads context normals, and --no-normals drops them")
        else:
            fields["shapes_paper"] = prior_completer(paper, CompletionConfig(correct=False))
    if args.fit_seconds > 0:
        fields[f"SIREN fit ({args.fit_seconds:g} s)"] = fitted_completer(FitConfig(seconds=args.fit_seconds))
    points = {"context points": context_points, "retrieval": retrieval(train)}

    def write(method: str, m: int, index: int, mesh) -> None:
        if args.meshes is not None and method == "prior + context" and len(mesh.faces):
            i = int(test_index[index])
            write_mesh_to_input(Path(args.meshes) / f"context{m}" / f"{index:03d}.ply", mesh,
                                collection.centre[i], collection.scale[i])

    results = evaluate_shapes(test, fields=fields, points=points, sizes=args.context, seed=args.seed,
                              normals=not args.no_normals, resolution=args.resolution, on_mesh=write)
    report = {"methods": results, "shapes": int(test.shape[0]), "seed": args.seed, "normals": not args.no_normals,
              "resolution": args.resolution, "data": dataclasses.asdict(data), "checkpoint": str(args.checkpoint)}
    out = Path(args.out)
    write_json(out, report)
    tables = markdown_tables(results)
    out.with_suffix(".md").write_text(tables + "\n")
    print(tables)
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a shape prior (train_prior.py --preset shapes*)")
    parser.add_argument("--paper", default=None, metavar="CKPT", help="a shapes_paper checkpoint for its row")
    parser.add_argument("--data", default=None, help="shapes to score (default: the run's own data)")
    parser.add_argument("--context", type=positive_int, nargs="+", default=[100, 300, 1000], help="context sizes M")
    parser.add_argument("--no-normals", action="store_true", help="the context has points only")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N test shapes")
    parser.add_argument("--seed", type=random_seed, default=0, help="seed of the context points")
    parser.add_argument("--resolution", type=positive_int, default=MESH_RESOLUTION, help="marching-cubes grid size")
    parser.add_argument("--fit-seconds", type=non_negative_float, default=20.0,
                        help="training time of the single-SIREN baseline per shape and M (0: no such row)")
    parser.add_argument("--meshes", default=None, metavar="DIR", help="write DIR/context{M}/{index:03d}.ply")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--out", required=True, help="FILE.json; the tables go to FILE.md")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main, parse_args())
