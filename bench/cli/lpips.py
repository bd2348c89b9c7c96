"""``texbench lpips train|eval|make-2afc``: LPIPS calibration on BAPPS-layout 2AFC data.

The application itself is :mod:`texbench.calibration`; heavy modules load inside each command.
"""

from __future__ import annotations

import click

from texbench.cli.common import Group

__all__ = ["NETS", "command"]

NETS = ("alex", "vgg", "squeeze")


@click.group("lpips", cls=Group)
def command() -> None:
    """LPIPS calibration: train linear layers on 2AFC judgments (BAPPS layout) and evaluate them."""


@command.command("train")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="checkpoint directory"
)
@click.option("--net", type=click.Choice(NETS), default="alex", show_default=True)
@click.option(
    "--variant", type=click.Choice(("lin", "tune", "scratch")), default="lin", show_default=True,
    help="lin: frozen backbone; tune: fine-tune the backbone too; scratch: backbone from random init",
)  # fmt: skip
@click.option("--split", default="train", show_default=True, help="split under DATA/2afc/")
@click.option("--epochs", type=int, default=5, show_default=True, help="epochs at the base learning rate")
@click.option("--epochs-decay", type=int, default=5, show_default=True, help="epochs of linear decay")
@click.option("--batch-size", type=int, default=50, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--beta1", type=float, default=0.5, show_default=True)
@click.option("--lin-init", type=click.Choice(("default", "uniform")), default="default", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=int, default=0, help="also checkpoint every N steps")
@click.option("--max-steps", type=int, default=0, help="stop after N steps (resume continues)")
@click.option("--no-resume", is_flag=True, help="start over even if OUT/latest.pth exists")
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--val", "val_data", type=click.Path(exists=True, file_okay=False), help="evaluate on it at the end"
)
def train_cmd(
    data, out_dir, net, variant, split, epochs, epochs_decay, batch_size, lr, beta1, lin_init, seed,
    save_every, max_steps, no_resume, device, val_data,
) -> None:  # fmt: skip
    """Calibrate LPIPS on the 2AFC judgments under DATA (a BAPPS root, split or category directory).

    Defaults are the paper's: Adam (lr 1e-4, beta1 0.5), batch 50, 5 + 5 epochs, dropout 0.5.
    """
    from texbench import calibration

    cfg = calibration.TrainConfig(
        net=net, variant=variant, epochs=epochs, epochs_decay=epochs_decay, batch_size=batch_size, lr=lr,
        beta1=beta1, lin_init=lin_init, seed=seed, save_every=save_every, max_steps=max_steps,
    )  # fmt: skip
    dirs = calibration.find_category_dirs(data, "2afc", split)
    click.echo(f"training {net}-{variant} on {len(dirs)} categories: {', '.join(d.name for d in dirs)}")
    final = calibration.train(cfg, dirs, out_dir, resume=not no_resume, device=device, log=click.echo)
    click.echo(f"calibrated checkpoint: {final}")
    if val_data:
        results = {f"{net}-{variant}": calibration.evaluate_lpips(net, str(final), val_data, "val", batch_size, device)}
        click.echo(calibration.format_table(results))


@command.command("eval")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--net", type=click.Choice(NETS), default="alex", show_default=True)
@click.option(
    "--weights", "weights", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="calibrated checkpoint(s); default the official v0.1 layers. Repeat to compare in one table.",
)  # fmt: skip
@click.option("--split", default="val", show_default=True)
@click.option("--batch-size", type=int, default=50, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="also write the table as CSV")
@click.option(
    "--baselines/--no-baselines", default=True, show_default=True,
    help="also the paper's reference rows: the human ceiling (mean p²+(1−p)² of the judgments), "
    "L2/PSNR and SSIM (both in Lab, as the reference evaluation)",
)  # fmt: skip
def eval_cmd(data, net, weights, split, batch_size, device, csv_path, baselines) -> None:
    """2AFC score per category and JND mAP on DATA (BAPPS layout), printed as a table like the paper's.

    Beside the LPIPS rows: the human ceiling, L2/PSNR and SSIM (``--no-baselines`` leaves them out).
    """
    from texbench import calibration

    results = calibration.evaluate_baselines(data, split, batch_size) if baselines else {}
    for w in weights or (None,):
        label = f"{net}-lin v0.1" if w is None else f"{net} {w}"
        results[label] = calibration.evaluate_lpips(net, w, data, split, batch_size, device)
    if any("synthetic" in k for r in results.values() for m in r.values() for k in m):
        click.echo("NOTE: synthetic categories (texbench lpips make-2afc): not human judgments.")
    click.echo(calibration.format_table(results))
    if csv_path:
        import pandas as pd

        rows = {
            lab: {f"{m} {c}": v for m, per in r.items() for c, v in per.items()} for lab, r in results.items()
        }
        pd.DataFrame.from_dict(rows, orient="index").to_csv(csv_path)


@command.command("make-2afc")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n-train", type=int, default=400, show_default=True)
@click.option("--n-val", type=int, default=200, show_default=True)
@click.option("--n-jnd", type=int, default=200, show_default=True)
@click.option("--size", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def make_2afc_cmd(out, n_train, n_val, n_jnd, size, seed) -> None:
    """Write a small SYNTHETIC 2AFC/JND set in BAPPS layout (built-in images, proxy observer).

    A test fixture: its judgments come from a documented proxy observer, not from people.
    """
    from texbench import calibration

    path = calibration.make_synthetic_2afc(out, n_train=n_train, n_val=n_val, n_jnd=n_jnd, size=size, seed=seed)
    click.echo(f"wrote SYNTHETIC BAPPS-layout data to {path} (see {path / 'SYNTHETIC.md'})")
