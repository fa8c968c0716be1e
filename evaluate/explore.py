"""Explore a trained prior's latent space: encode, interpolate, sample, directions, neighbours, export, projector.

    python evaluate/explore.py encode      --checkpoint runs/faces/checkpoint.pt --out runs/faces/latents.pt
    python evaluate/explore.py interpolate --checkpoint runs/faces/checkpoint.pt --pair 0 1 --out interpolate.png
    python evaluate/explore.py sample      --checkpoint runs/faces/checkpoint.pt --temperature 0.8 --out samples.png
    python evaluate/explore.py directions  --checkpoint runs/faces/checkpoint.pt --components 4 --out directions.png
    python evaluate/explore.py neighbours  --checkpoint runs/faces/checkpoint.pt --count 4 --out neighbours.png
    python evaluate/explore.py export      --checkpoint runs/faces/checkpoint.pt --index 0 --size 256 --out face0.pt
    python evaluate/explore.py projector   --checkpoint runs/faces/checkpoint.pt --out runs/faces/projector

Any modality's prior: the checkpoint names its modality, whose adapter (`Modality.latent_prior`) encodes,
renders and pictures its signals. Data: the run's own signals (`--split train|heldout|all`, default
train, as stored in the checkpoint) or `--data SOURCE`; latents are encoded from `--context` points per
signal (`full`, the default: all of them) or read from `--latents FILE` (written by `encode`). Figures
render each panel at `--size` (the prior is a continuous function). `--device` (default: CUDA when
present) is where encoding and rendering run.
- interpolate: rows = latent-space interpolation | weight-space interpolation | |difference| x `--amplify`.
- sample: `--count` draws from a Gaussian (`--fit gaussian`, full covariance) or PCA (`--fit pca`,
  `--components`) fit of the latents, at `--temperature` (0: the mean latent's decode).
- directions: one row per principal direction, decodes at -3 ... +3 standard deviations.
- neighbours: per sample, the `--k` nearest training signals, by the adapter's distance when it has one
  (shapes: Chamfer-L1), else compared as pictures (rmse) (FILE.json: ids, distances).
- export: one predicted SIREN as a plain `hypersiren.Siren` file (outputs in the model's units); `--size`:
  FILE.png rendered by the loaded module; plus what the adapter adds (shapes: the mesh, FILE.ply).
- projector: latents with thumbnails for `tensorboard --logdir OUT` (tab "Projector").
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import hypersiren as hs
from hypersiren.config import finite_float, non_negative_float, positive_int, random_seed, run_main
from hypersiren.devices import resolve_device
from hypersiren.figures import save_png, tile, upsample_nearest
from hypersiren.latent import (
    LatentPrior,
    LatentSet,
    decode_and_render,
    direction_sweep,
    encode_dataset,
    export_extras,
    fit_gaussian,
    fit_pca,
    interpolate_latents,
    interpolate_params,
    load_latent_prior,
    load_latents,
    nearest,
    save_latents,
    signal_distances,
    write_projector,
)
from hypersiren.runs import write_json

PAD = 2  # white pixels between panels


def context_size(text: str) -> int | None:
    if text == "full":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected 'full' or a positive number of context points, got {text!r}")
    return int(text)


def load_data(prior: LatentPrior, args) -> tuple[torch.Tensor, list[str]]:
    """The signals to encode and their ids (`split/index` or `source/index`)."""
    signals = prior.load_signals(args.data, split=args.split)
    prefix = (args.split or "train") if args.data is None else Path(args.data).name
    return signals, [f"{prefix}/{i}" for i in range(signals.shape[0])]


def encode(prior: LatentPrior, signals: torch.Tensor, ids: list[str], args) -> LatentSet:
    meta = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split,
            "context": "full" if args.context is None else args.context, "seed": args.seed}
    return encode_dataset(prior, signals, context_size=args.context, batch_size=args.batch_size,
                          generator=torch.Generator().manual_seed(args.seed), ids=ids, meta=meta)


def latents_and_signals(prior: LatentPrior, args) -> tuple[LatentSet, torch.Tensor]:
    """`--latents FILE` with the signals it was encoded from, or the data encoded now."""
    if args.latents is None:
        signals, ids = load_data(prior, args)
        return encode(prior, signals, ids, args), signals
    latent_set = load_latents(args.latents)
    if latent_set.latents.shape[1] != prior.latent_dim:
        raise ValueError(f"{args.latents} holds latents of size {latent_set.latents.shape[1]}, but the prior's are "
                         f"{prior.latent_dim}: encode them with this checkpoint")
    signals = prior.load_signals(latent_set.meta.get("data"), split=latent_set.meta.get("split"))
    if signals.shape[0] != latent_set.latents.shape[0]:
        raise ValueError(f"{args.latents} holds {latent_set.latents.shape[0]} latents, but its data has "
                         f"{signals.shape[0]} signals")
    return latent_set, signals


def show(prior: LatentPrior, latents: torch.Tensor, size: int) -> torch.Tensor:
    """Latents `[B, Z]` -> pictures `[B, size, size, C]` of their decodes."""
    return upsample_nearest(prior.to_images(decode_and_render(prior, latents, resolution=size)), size).cpu()


def cmd_encode(prior: LatentPrior, args) -> dict:
    signals, ids = load_data(prior, args)
    latent_set = encode(prior, signals, ids, args)
    save_latents(args.out, latent_set)
    print(f"wrote {args.out}: {latent_set.latents.shape[0]} latents of size {latent_set.latents.shape[1]}")
    return {"out": str(args.out), "count": latent_set.latents.shape[0]}


def cmd_interpolate(prior: LatentPrior, args) -> dict:
    if args.images:
        signals = torch.cat([prior.load_signals(file) for file in args.images])
    else:
        data, _ = load_data(prior, args)
        for i in args.pair:
            if not 0 <= i < data.shape[0]:
                raise ValueError(f"--pair {i} is not an index of the {data.shape[0]} images of the split")
        signals = data[list(args.pair)]
    with torch.no_grad():
        za, zb = prior.encode(signals, context_size=args.context, generator=torch.Generator().manual_seed(args.seed))
        by_latent = show(prior, interpolate_latents(za, zb, args.steps), args.size)  # [S, size, size, C]
        ends = prior.decode(torch.stack([za, zb]))
        pa, pb = ends.map(lambda t: t[:1]), ends.map(lambda t: t[1:])
        by_weight = prior.to_images(prior.render(interpolate_params(pa, pb, args.steps), resolution=args.size))
        by_weight = upsample_nearest(by_weight, args.size).cpu()
    difference = (by_latent - by_weight).abs()
    save_png(args.out, tile(torch.stack([by_latent, by_weight, (difference * args.amplify).clamp(0, 1)]), pad=PAD))
    print(f"wrote {args.out}: latent space | weight space | |difference| x {args.amplify}, {args.steps} steps; "
          f"largest difference {difference.max():.3f}")
    return {"out": str(args.out), "max_difference": float(difference.max())}


def fitted(latent_set: LatentSet, args):
    if args.fit == "gaussian":
        if args.components is not None:
            raise ValueError("--components applies to --fit pca; the Gaussian fit keeps every direction")
        return fit_gaussian(latent_set.latents)
    return fit_pca(latent_set.latents, components=args.components)


def cmd_sample(prior: LatentPrior, args) -> dict:
    latent_set, _ = latents_and_signals(prior, args)
    latents = fitted(latent_set, args).sample(args.count, temperature=args.temperature,
                                              generator=torch.Generator().manual_seed(args.seed))
    images = show(prior, latents, args.size)
    columns = min(args.columns, args.count)
    rows = -(-args.count // columns)
    blank = torch.ones(rows * columns - args.count, *images.shape[1:])
    save_png(args.out, tile(torch.cat([images, blank]).reshape(rows, columns, *images.shape[1:]), pad=PAD))
    print(f"wrote {args.out}: {args.count} samples of a {args.fit} fit of {latent_set.latents.shape[0]} latents at "
          f"temperature {args.temperature}")
    return {"out": str(args.out), "count": args.count}


def cmd_directions(prior: LatentPrior, args) -> dict:
    latent_set, _ = latents_and_signals(prior, args)
    pca = fit_pca(latent_set.latents, components=args.components)
    sweeps = torch.stack([direction_sweep(pca, k, sigmas=args.sigmas) for k in range(args.components)])  # [K, S, Z]
    images = show(prior, sweeps.flatten(0, 1), args.size)
    save_png(args.out, tile(images.unflatten(0, sweeps.shape[:2]), pad=PAD))
    explained = [round(float(e), 4) for e in pca.explained]
    print(f"wrote {args.out}: {args.components} principal directions at {list(args.sigmas)} std; "
          f"explained variance {explained}")
    return {"out": str(args.out), "explained": explained}


def cmd_neighbours(prior: LatentPrior, args) -> dict:
    latent_set, signals = latents_and_signals(prior, args)
    samples = fit_gaussian(latent_set.latents).sample(args.count, temperature=args.temperature,
                                                      generator=torch.Generator().manual_seed(args.seed))
    rendered = decode_and_render(prior, samples)  # at the data's resolution
    # the adapter's own distance, else pictures (pixel space): see signal_distances
    name, distances = signal_distances(prior, rendered, signals)
    found = nearest(distances, k=args.k)
    among_data = nearest(signal_distances(prior, signals, signals).values, k=2).distances[:, 1]  # nearest other
    rows = [torch.cat([show(prior, samples[i : i + 1], args.size),
                       upsample_nearest(prior.to_images(signals[found.indices[i]]), args.size).cpu()])
            for i in range(args.count)]
    save_png(args.out, tile(torch.stack(rows), pad=PAD))
    report = {"samples": [{"neighbours": [latent_set.ids[j] for j in found.indices[i].tolist()],
                           name: [round(d, 5) if math.isfinite(d) else None for d in found.distances[i].tolist()]}
                          for i in range(args.count)],  # None: not comparable (e.g. a sample with no surface)
              f"data_nearest_other_{name}_median": round(float(among_data.median()), 5)}
    write_json(Path(args.out).with_suffix(".json"), report)
    print(f"wrote {args.out}: sample | {args.k} nearest training signals by {name}; nearest {name} per sample "
          f"{[s[name][0] for s in report['samples']]}, data's own median "
          f"{report[f'data_nearest_other_{name}_median']}")
    return report


def cmd_export(prior: LatentPrior, args) -> dict:
    if args.image is not None:
        signals, name = prior.load_signals(args.image), Path(args.image).name
    else:
        data, ids = load_data(prior, args)
        if not 0 <= args.index < data.shape[0]:
            raise ValueError(f"--index {args.index} is not an index of the {data.shape[0]} images of the split")
        signals, name = data[args.index : args.index + 1], ids[args.index]
    with torch.no_grad():
        params = prior.decode(prior.encode(signals, context_size=args.context,
                                           generator=torch.Generator().manual_seed(args.seed)))
    meta = {"checkpoint": str(args.checkpoint), "id": name, "context": "full" if args.context is None else args.context}
    hs.export_siren(params, args.out, config=prior.siren, meta=meta)
    out = {"out": str(args.out), **export_extras(prior, params, args.out)}  # e.g. a shape's mesh
    if args.size is not None:
        siren = hs.load_exported_siren(args.out)  # rendered by the plain module, as a user would
        with torch.no_grad():
            values = siren(prior.query_coords(args.size)).unsqueeze(0)  # [1, N, C], on the CPU
        picture = prior.to_images(prior.to_signals(values, resolution=args.size))[0]
        png = save_png(Path(args.out).with_suffix(".png"), picture)
        out["png"] = str(png)
    extras = "".join(f"; {label} in {path}" for label, path in out.items() if label not in ("out", "png"))
    print(f"wrote {args.out}: the SIREN of {name} ({prior.siren}); load it with hypersiren.load_exported_siren"
          + (f"; rendered at {args.size}x{args.size} in {out['png']}" if "png" in out else "") + extras)
    return out


def cmd_projector(prior: LatentPrior, args) -> dict:
    latent_set, signals = latents_and_signals(prior, args)
    write_projector(args.out, latent_set.latents, labels=latent_set.ids, thumbnails=prior.to_images(signals))
    print(f"wrote {args.out}: {latent_set.latents.shape[0]} latents with thumbnails; view with "
          f"tensorboard --logdir {args.out} (tab 'Projector')")
    return {"out": str(args.out), "count": latent_set.latents.shape[0]}


COMMANDS = {"encode": cmd_encode, "interpolate": cmd_interpolate, "sample": cmd_sample, "directions": cmd_directions,
            "neighbours": cmd_neighbours, "export": cmd_export, "projector": cmd_projector}


def main(args: argparse.Namespace) -> dict:
    prior = load_latent_prior(args.checkpoint, device=resolve_device(args.device))
    with torch.no_grad():
        report = COMMANDS[args.command](prior, args)
    if args.command != "neighbours":
        print(json.dumps(report))
    return report


def parse_args(argv=None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--checkpoint", required=True, help="a prior's checkpoint.pt")
    common.add_argument("--data", default=None, help="images to use (default: the run's own data)")
    common.add_argument("--split", choices=("train", "heldout", "all"), default=None,
                        help="which of the run's images (default train; not with --data)")
    common.add_argument("--context", type=context_size, default=None, metavar="full|K",
                        help="context pixels per image for encoding (default: full, all of them)")
    common.add_argument("--seed", type=random_seed, default=0)
    common.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    common.add_argument("--out", required=True)
    encoding = argparse.ArgumentParser(add_help=False)  # commands that encode a whole data set
    encoding.add_argument("--batch-size", type=positive_int, default=64, help="images encoded at a time")
    from_file = argparse.ArgumentParser(add_help=False, parents=[encoding])
    from_file.add_argument("--latents", default=None, help="a latents file from `encode` (default: encode now)")
    render = argparse.ArgumentParser(add_help=False)
    render.add_argument("--size", type=positive_int, default=64, help="render resolution of each panel")

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("encode", parents=[common, encoding], help="latents of a data set -> FILE.pt or FILE.npz")
    p = sub.add_parser("interpolate", parents=[common, render], help="latent vs weight-space interpolation -> PNG")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--pair", type=int, nargs=2, default=(0, 1), metavar=("I", "J"), help="two image indices")
    group.add_argument("--images", nargs=2, metavar=("A", "B"), help="two image files instead")
    p.add_argument("--steps", type=positive_int, default=8)
    p.add_argument("--amplify", type=finite_float, default=10.0, help="gain of the difference row")
    p = sub.add_parser("sample", parents=[common, from_file, render],
                       help="new signals from a Gaussian or PCA fit -> PNG grid")
    p.add_argument("--count", type=positive_int, default=16)
    p.add_argument("--temperature", type=non_negative_float, default=1.0,
                   help="scales the standard deviation (0: the mean)")
    p.add_argument("--fit", choices=("gaussian", "pca"), default="gaussian")
    p.add_argument("--components", type=positive_int, default=None,
                   help="principal components kept by --fit pca (default all)")
    p.add_argument("--columns", type=positive_int, default=8)
    p = sub.add_parser("directions", parents=[common, from_file, render],
                       help="decodes along the leading principal directions -> PNG")
    p.add_argument("--components", type=positive_int, default=4, help="directions shown, one row each")
    p.add_argument("--sigmas", type=finite_float, nargs="+", default=list(hs.latent.SIGMAS), help="standard deviations")
    p = sub.add_parser("neighbours", parents=[common, from_file, render],
                       help="samples next to their nearest training signals -> PNG (+ JSON)")
    p.add_argument("--count", type=positive_int, default=4)
    p.add_argument("--temperature", type=non_negative_float, default=1.0)
    p.add_argument("--k", type=positive_int, default=5, help="nearest training signals per sample")
    p = sub.add_parser("export", parents=[common],
                       help="one predicted SIREN -> a plain Siren file (+ PNG, + the adapter's extras, e.g. a mesh)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--index", type=int, default=0, help="image index in the split")
    group.add_argument("--image", default=None, help="an image file instead")
    p.add_argument("--size", type=positive_int, default=None, help="also render FILE.png at this resolution")
    sub.add_parser("projector", parents=[common, from_file], help="TensorBoard embedding projector -> LOGDIR")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main, parse_args())
