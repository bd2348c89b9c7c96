"""``texbench fid-stats FOLDER OUT.npz``: save FID reference statistics of a folder of images.

The file holds pytorch-fid's ``mu``/``sigma`` keys (pytorch-fid reads it) and texbench's metadata (weights
provenance, ``resize``, crop protocol, number of images), which ``texbench score fid`` checks before
comparing against it.
"""

from __future__ import annotations

from pathlib import Path

import click

from texbench.cli.common import Command

__all__ = ["command"]


@click.command("fid-stats", cls=Command)
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--resize",
    type=click.Choice(["pytorch-fid", "clean"]),
    default="pytorch-fid",
    show_default=True,
    help="Preprocessing: pytorch-fid's bilinear tensor resize or clean-fid's PIL bicubic.",
)
@click.option(
    "--crop-size", type=int, default=0, show_default=True, help="Random crops of this size (0: whole images)."
)
@click.option("--crops-per-image", type=int, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the crop positions.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def command(folder, out, resize, crop_size, crops_per_image, seed, device, batch_size, force):
    """Save FID reference statistics (mu, sigma of pool3 features) of the images in FOLDER to OUT.npz."""
    from texbench.metrics.fid import FID, FIDParams

    if Path(out).exists() and not force:
        raise click.UsageError(f"{out} exists (use --force to overwrite)")
    metric = FID(FIDParams(crop_size=crop_size, crops_per_image=crops_per_image, resize=resize), device=device)
    metric.batch_size = batch_size
    stats = metric.save_folder_statistics(folder, out, seed=seed)
    click.echo(f"saved statistics of {stats.meta.get('n')} images ({stats.meta.get('fid-inception')}) to {out}")
