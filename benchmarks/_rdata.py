"""R data sets read out of Debian packages, for the benchmarks that evaluate on them
(sentiment_quality.py's foods, forecast_data.py's FRESH_2, FRESH_3 and FRESH_4 series).

A package's .deb is fetched once with `apt-get download` of a pinned version into a
cache directory (never committed; run `apt-get update` first on a fresh machine) and
kept there; its R lazy-load database (data/Rdata.rdx and .rdb) or, in a package that
ships its data as files, one data file (data/NAME.rda or .RData) is read with the
`rdata` package (the bench extra). Anything missing or unreadable ends the script with
one line.
"""
from __future__ import annotations

import glob
import gzip
import io
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import warnings
import zlib

# (apt-get spec, the lazy-load database's path in the package without .rdx/.rdb)
MODELDATA = ("r-cran-modeldata=1.1.0-1", "./usr/lib/R/site-library/modeldata/data/Rdata")
R_DATASETS = ("r-base-core=4.2.2.20221110-2", "./usr/lib/R/library/datasets/data/Rdata")
LATTICEEXTRA = ("r-cran-latticeextra=0.6-30-1",
                "./usr/lib/R/site-library/latticeExtra/data/Rdata")
# (apt-get spec, the data directory): packages whose data are files, one object each
AER = ("r-cran-aer=1.2-10-1", "./usr/lib/R/site-library/AER/data")
SURVEILLANCE = ("r-cran-surveillance=1.20.3-1",
                "./usr/lib/R/site-library/surveillance/data")
EPI = ("r-cran-epi=2.47-1", "./usr/lib/R/site-library/Epi/data")


def package_database(cache: str, package: tuple[str, str]) -> tuple[bytes, bytes]:
    """(rdx, rdb): the package's lazy-load index and objects, its .deb fetched into
    ``cache`` the first time."""
    spec, path = package
    return _package_files(cache, spec, [path + ".rdx", path + ".rdb"])


def data_file_object(cache: str, package: tuple[str, str], file: str):
    """The object of the package's data file ``file`` (e.g. "UKNonDurables.rda"), which
    holds one object named as the file, converted by `rdata`; the .deb fetched into
    ``cache`` the first time. The file's own compression (gzip, bzip2 or xz) is undone
    by rdata's parser."""
    spec, directory = package
    data, = _package_files(cache, spec, [f"{directory}/{file}"])
    name = os.path.splitext(file)[0]
    objects = _read(data, f"{spec}: {file}")
    if name not in objects:
        sys.exit(f"{spec}: {file} holds no object {name} (it holds {sorted(objects)})")
    return objects[name]


def _package_files(cache: str, spec: str, paths: list[str]) -> tuple[bytes, ...]:
    """The contents of ``paths`` in the .deb of ``spec``, fetched into ``cache`` with
    `apt-get download` the first time."""
    name, version = spec.split("=")
    os.makedirs(cache, exist_ok=True)
    pattern = os.path.join(cache, f"{name}_{version.split(':')[-1]}_*.deb")
    if not glob.glob(pattern):
        if not shutil.which("apt-get"):
            sys.exit(f"this data set comes from the Debian package {spec}: no apt-get here")
        if subprocess.run(["apt-get", "download", "-q", spec], cwd=cache).returncode:
            sys.exit(f"`apt-get download {spec}` failed (run `apt-get update`?)")
    debs = sorted(glob.glob(pattern))
    if len(debs) != 1:
        sys.exit(f"expected one .deb of {spec} in {cache}, found {len(debs)}")
    unpacked = subprocess.run(["dpkg-deb", "--fsys-tarfile", debs[0]], capture_output=True)
    if unpacked.returncode:
        sys.exit(f"`dpkg-deb --fsys-tarfile {debs[0]}` failed: "
                 f"{unpacked.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(unpacked.stdout)) as t:
        held = set(t.getnames())
        missing = [path for path in paths if path not in held]
        if missing:
            sys.exit(f"{spec}: the package has no {missing[0]}")
        return tuple(t.extractfile(path).read() for path in paths)


def lazyload_object(rdx: bytes, rdb: bytes, name: str):
    """One object of an R lazy-load database, converted by `rdata` (a data frame as a
    pandas DataFrame): the index is a gzipped serialized list of (offset, length) per
    object and the database's compression (R's 1: zlib, 2: bzip2, 3: xz); each object is
    a 4-byte length and the compressed serialization: with 1 a zlib stream (latticeExtra's
    data), else a compression byte and the data ('Z': a raw LZMA2 stream, as R's xz
    lazy-data compression writes it: the other pinned packages' data)."""
    index = _read(gzip.decompress(rdx), "the R lazy-load database's index")
    if name not in index["variables"]:
        sys.exit(f"the R lazy-load database holds no object {name} "
                 f"({len(index['variables'])} objects)")
    offset, length = (int(v) for v in index["variables"][name])
    chunk = rdb[offset:offset + length]
    size = struct.unpack(">I", chunk[:4])[0]
    if int(index["compressed"][0]) == 1:
        data = zlib.decompress(chunk[4:])
    elif chunk[4:5] == b"Z":
        data = lzma.decompress(chunk[5:], format=lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA2, "preset": 6 | lzma.PRESET_EXTREME}])
    else:
        sys.exit(f"{name}: unsupported compression {chunk[4:5]!r} (read: zlib databases "
                 f"and xz objects, b'Z')")
    if len(data) != size:
        sys.exit(f"{name}: expected {size} bytes, decompressed {len(data)}")
    return _read(data, f"the R lazy-load database's {name}")


def _read(data: bytes, what: str):
    """R data (an .rda file's contents or a bare serialization) parsed and converted by
    `rdata`, without its warning that a bare serialization is "assumed RDS". ``what``
    names the data in the one line that ends the script if rdata cannot read them."""
    try:
        import rdata  # the bench extra; only these data sets need it
    except ImportError:
        sys.exit("this data set is R data read with the rdata package: pip install rdata")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return rdata.conversion.convert(rdata.parser.parse_data(data))
        except Exception as e:  # rdata's parser and converters raise many kinds
            sys.exit(f"{what}: rdata {getattr(rdata, '__version__', '')} could not read "
                     f"it: {type(e).__name__}: {e}".splitlines()[0])
