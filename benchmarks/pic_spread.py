"""The PIC headline (test loss after reduction to 2 hidden units) over seeds and both test fractions, with
the table's flagged rows kept (the default) and left out (--drop-outliers): mean, sd and range of each.
The numbers are the README's PIC row; each run is `fexprune pic` at its defaults but the seed and the
test fraction (about 15 s of one core each).

    python benchmarks/pic_spread.py ~/sfew/SFEW.xlsx [--seeds 0 1 2 3 4] [--fractions 0.2 0.25]
"""

from __future__ import annotations

import argparse
import statistics

from fexprune.data.outliers import find_outliers
from fexprune.experiments.pic import PICConfig, load_table, run_pic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", help="the feature table (SFEW.xlsx)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.25])
    args = parser.parse_args()
    table = load_table(PICConfig(features=args.features), progress=False)
    flagged = find_outliers(table)
    print(f"{len(flagged)} flagged row(s): {', '.join(o.name for o in flagged)}")
    print("| rows | fraction | seed | test loss at 2 units |")
    print("|---|---|---|---|")
    losses: dict[str, list[float]] = {"kept": [], "dropped": []}
    for drop in (False, True):
        rows = "dropped" if drop else "kept"
        for fraction in args.fractions:
            for seed in args.seeds:
                config = PICConfig(features=args.features, seed=seed, test_fraction=fraction, drop_outliers=drop)
                loss = run_pic(config, save=False, table=table, progress=False).rows[-1]["test_loss"]
                losses[rows].append(loss)
                print(f"| flagged {rows} | {fraction:g} | {seed} | {loss:.4f} |", flush=True)
    for rows, values in losses.items():
        print(f"flagged rows {rows}: mean {statistics.mean(values):.3f} +- {statistics.stdev(values):.3f} (sd), "
              f"range {min(values):.3f}-{max(values):.3f}, {len(values)} runs")


if __name__ == "__main__":
    main()
