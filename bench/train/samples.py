"""Draw a cell's samples exactly as the scorer does and write its sample file
(`bench.store.samples` describes the format), so reports need neither torch nor a checkpoint."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from bench.store import integrity
from bench.store.samples import IMAGE_SAMPLES, SAMPLE_FILE, SAMPLE_PNG, save_grid_png


def write_samples(sample_fn, dataset, folder: Path, eval_spec, device, n: int | None = None) -> Path:
    """Draw from `sample_fn(n, generator)` exactly as the scorer does (its seed and batch size)
    and write the sample file (and, for images, the PNG grid) into `folder`."""
    import torch

    from bench.metrics.evaluate import NUM_SAMPLES_2D, _draw
    from bench.metrics.images import to_uint8

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kind = dataset.kind
    count = n or (NUM_SAMPLES_2D if kind == "2d" else IMAGE_SAMPLES)
    parts: list[torch.Tensor] = []
    # the scorer's own drawing loop, so the 2-D points are the ones the metrics saw
    _draw(sample_fn, count, dataset, eval_spec, torch.device(device),
          lambda x, _: parts.append(x.detach().to("cpu", torch.float32)))
    x = torch.cat(parts)
    path = folder / SAMPLE_FILE
    tmp = folder / f".{SAMPLE_FILE}.tmp.npz"
    png_tmp = folder / f".{SAMPLE_PNG}.tmp.png"
    try:
        if kind == "2d":
            np.savez(tmp, points=x.numpy(), centres=dataset.centers.cpu().numpy())
        else:
            images = to_uint8(x).numpy()
            np.savez(tmp, images=images)
            save_grid_png(images[:IMAGE_SAMPLES], png_tmp)
        written = {SAMPLE_FILE: tmp, **({SAMPLE_PNG: png_tmp} if png_tmp.exists() else {})}
        # fenced and digested (bench.store.integrity): LeaseLost leaves the old files
        integrity.record_files(folder, {name: (integrity.sha256_file(f), f.stat().st_size)
                                        for name, f in written.items()})
        for name, f in written.items():
            f.replace(folder / name)  # a reader never sees half a file
    except OSError as exc:
        from bench.train.checkpoint import write_error

        raise write_error(path, exc, "the sample file") from None
    finally:
        for f in (tmp, png_tmp):  # no half-written temporary left; the old file stays
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
    return path
