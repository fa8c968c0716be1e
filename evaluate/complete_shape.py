"""Complete shapes from a few surface points with a trained shape prior: a figure, meshes and distances.

    python evaluate/complete_shape.py --checkpoint runs/shapes/checkpoint.pt --index 0 1 2 \
        --out runs/shapes/complete
    python evaluate/complete_shape.py --checkpoint runs/person/checkpoint.pt --context 100 --no-normals \
        --data ../shared/data/modelnet40_person/modelnet40_person_pc10k.npz --index 0 5 --out person100

The shapes are the run's held-out shapes (the `split == 1` shapes of a source with its own split, else
the last `--holdout` of train_prior.py), or every shape of `--data`; `--index` picks some of them (by
their position there; default: all). For each, `--context` of its points (with their normals unless
`--no-normals`) are drawn as the evaluation protocol draws them (from `--seed` and the index; for the
run's held-out shapes, the points `eval_shapes.py` draws), the prior completes them (its SIREN
corrected to the context unless `--no-correct`; hypersiren/modalities/shape/completion.py) and
marching cubes on a `--resolution`^3 grid meshes the field. Writes `OUT/completion.png` (a row per
shape: context points | completed surface | truth, each seen from `--views` azimuths evenly spaced)
and `OUT/{index:03d}.ply` in the data's own coordinates, and prints per shape the Chamfer-L1 (stored
unit-sphere units, as `eval_shapes.py`), normal consistency, F-score and seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import hypersiren  # noqa: F401  (registers the modalities)
from hypersiren.config import positive_int, random_seed, run_main
from hypersiren.devices import resolve_device
from hypersiren.figures import save_png
from hypersiren.modalities.shape.completion import CompletionConfig, prior_completer
from hypersiren.modalities.shape.data import load_collection
from hypersiren.modalities.shape.figures import VIEW, completion_figure, completion_row
from hypersiren.modalities.shape.protocol import (MESH_RESOLUTION, complete_mesh, draw_context, mesh_score,
                                                  write_mesh_to_input)
from hypersiren.prior.training import load_prior


def main(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    prior = load_prior(args.checkpoint, device=device)
    if prior.modality.name != "shape":
        raise ValueError(f"complete_shape: {args.checkpoint} holds a prior of the {prior.modality.name!r} modality, "
                         "not a shape prior (train one with train_prior.py --preset shapes, shapes_tiny or "
                         "shapes_paper; image priors complete images with evaluate/inpaint.py)")
    data, split = prior.modality.data, "heldout"
    if args.data is not None:
        data, split = dataclasses.replace(data, source=args.data, holdout=0, limit=None), "all"
    collection, rows = load_collection(data, split)  # rows [K]: positions of the split in the collection
    chosen = range(len(rows)) if args.index is None else args.index
    bad = [i for i in chosen if not 0 <= i < len(rows)]
    if bad:
        where = f"--data {args.data}" if args.data is not None else f"the run's held-out split of {data.source}"
        raise ValueError(f"complete_shape: --index {' '.join(map(str, bad))} out of range: {where} has "
                         f"{len(rows)} shapes, so an index is between 0 and {len(rows) - 1}")
    if args.context > collection.shapes.shape[1]:
        raise ValueError(f"complete_shape: --context {args.context} exceeds the {collection.shapes.shape[1]} points "
                         f"of each shape of {data.source} (data.points of the run)")
    complete = prior_completer(prior.model, CompletionConfig(correct=not args.no_correct))
    azimuths = [VIEW["azimuths"][0] + 360.0 * k / args.views for k in range(args.views)]
    out, figure, results = Path(args.out), [], []
    out.mkdir(parents=True, exist_ok=True)
    for index in chosen:
        row = int(rows[index])
        shape = collection.shapes[row].to(device)  # [P, 6] unit sphere
        context = draw_context(shape, args.context, seed=args.seed, index=index, normals=not args.no_normals)
        mesh, complete_s, mesh_s = complete_mesh(complete, context, resolution=args.resolution)
        truth = shape.cpu().numpy()
        found = mesh_score(mesh, truth, seed=index)
        path = (write_mesh_to_input(out / f"{index:03d}.ply", mesh, collection.centre[row], collection.scale[row])
                if len(mesh.faces) else None)
        figure.append(completion_row(context.coords[0].cpu().numpy(), mesh, truth[:, :3], size=args.size,
                                     azimuths=azimuths, up=args.up))
        results.append({"index": index, "name": collection.names[row], **found, "complete_s": complete_s,
                        "mesh_s": mesh_s, "mesh": None if path is None else str(path)})
        print(f"{index:03d} {collection.names[row]}: Chamfer-L1 {found['chamfer']:.4f}  normal consistency "
              f"{found['normal_consistency']:.3f}  F-score {found['fscore']:.3f}  {complete_s + mesh_s:.2f} s  "
              + (f"-> {path}" if path is not None else "no surface: no mesh written"))
    save_png(out / "completion.png", completion_figure(figure))
    print(f"wrote {out / 'completion.png'}: context ({args.context} points"
          f"{'' if args.no_normals else ' with normals'}) | completed surface | truth, {len(results)} shape(s)")
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a shape prior (train_prior.py --preset shapes*)")
    parser.add_argument("--data", default=None, help="complete these shapes (default: the run's held-out shapes)")
    parser.add_argument("--index", type=int, nargs="+", default=None, help="which of them (default: all)")
    parser.add_argument("--context", type=positive_int, default=300, help="surface points seen per shape")
    parser.add_argument("--no-normals", action="store_true", help="the context has points only")
    parser.add_argument("--no-correct", action="store_true",
                        help="the prior's SIREN alone, not corrected to the context")
    parser.add_argument("--resolution", type=positive_int, default=MESH_RESOLUTION, help="marching-cubes grid size")
    parser.add_argument("--views", type=positive_int, default=3, help="azimuths per panel, evenly spaced")
    parser.add_argument("--size", type=positive_int, default=128, help="pixels of each view (square)")
    parser.add_argument("--up", choices=("x", "y", "z"), default=VIEW["up"], help="the shapes' up axis in the figure")
    parser.add_argument("--seed", type=random_seed, default=0, help="seed of the context points")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--out", required=True, help="folder for completion.png and the .ply meshes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main, parse_args())
