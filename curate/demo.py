"""The end-to-end demo on procedural sample sets (sample → read; later steps join as they land)."""

from __future__ import annotations

from pathlib import Path

import typer
from tqdm import tqdm

from curate.sample import write_cityscapes_sample, write_synscapes_sample
from curate.sources import cityscapes, synscapes


def run_demo(out: Path, seed: int = 0) -> dict:
    out = Path(out)
    syn_root, cs_root = out / "Synscapes", out / "cityscapes"
    typer.echo(f"[1/2] generating sample sets in {out}")
    write_synscapes_sample(syn_root, frames=20, seed=seed, size=(720, 360))
    write_cityscapes_sample(cs_root, frames=16, split="train", seed=seed, size=(1024, 512))
    write_cityscapes_sample(cs_root, frames=4, split="val", seed=seed + 1, size=(1024, 512))
    typer.echo("[2/2] reading them back")
    summary = {}
    frames = synscapes.list_frames(syn_root, "all")
    summary["synscapes"] = sum(len(synscapes.load_frame(syn_root, n).meta.instances) for n in tqdm(frames, desc="synscapes"))
    refs = cityscapes.list_frames(cs_root, "train") + cityscapes.list_frames(cs_root, "val")
    summary["cityscapes"] = len([cityscapes.load_frame(r) for r in tqdm(refs, desc="cityscapes")])
    typer.echo(f"synscapes: {len(frames)} frames, {summary['synscapes']} meta instances; cityscapes: {len(refs)} frames")
    return summary
