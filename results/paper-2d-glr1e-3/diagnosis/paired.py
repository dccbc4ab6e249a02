"""Paired comparison of the paper-2d ring8 baseline (non-saturating G loss, G lr 1e-3) with the
two diagnostic baselines of this folder, over the seeds both have:

    python results/paper-2d-glr1e-3/diagnosis/paired.py PAPER2D_STORE DIAGNOSIS_STORE
"""
import sys

from bench.report import stats
from bench.store.results import load_records


def ring8_baseline(df, **match):
    rows = df[(df["dataset"] == "ring8") & (df["tricks"].map(len) == 0)
              & (df["status"] == "done")]
    for key, value in match.items():
        rows = rows[rows[key] == value]
    return rows.drop_duplicates("cell_id").set_index("seed")


def main(paper_store: str, diagnosis_store: str) -> None:
    paper = ring8_baseline(load_records(paper_store, grid="paper-2d"))
    settings = {
        "minimax G loss (p2d-minimax)": ring8_baseline(load_records(diagnosis_store,
                                                                    grid="p2d-minimax")),
        "G lr 1e-4 (p2d-glr1e-4)": ring8_baseline(load_records(diagnosis_store,
                                                               grid="p2d-glr1e-4"))}
    metrics = ("modes", "high_quality", "reverse_kl")
    print(f"paper-2d ring8 baseline, seeds {sorted(paper.index)}")
    for m in metrics:
        mean, std, n = stats.mean_std(paper[m])
        print(f"  {m}: {mean:.3g} ± {std:.2g} (n={n})")
    for name, rows in settings.items():
        print(f"{name}, seeds {sorted(rows.index)}")
        for m in metrics:
            mean, std, n = stats.mean_std(rows[m])
            d = stats.paired_delta(rows[m], paper[m])
            print(f"  {m}: {mean:.3g} ± {std:.2g} (n={n}); paired Δ vs paper-2d "
                  f"{d.delta:+.3g} [{d.lo:+.3g}, {d.hi:+.3g}] (p={d.p:.2g})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1], sys.argv[2])
