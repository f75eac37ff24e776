"""R data sets read out of Debian packages, for the benchmarks that evaluate on them
(sentiment_quality.py's foods, forecast_data.py's FRESH_2 series).

A package's .deb is fetched once with `apt-get download` of a pinned version into a
cache directory (never committed; run `apt-get update` first on a fresh machine) and
kept there; its R lazy-load database (data/Rdata.rdx and .rdb) is read with the `rdata`
package (the bench extra). Anything missing ends the script with one line.
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

# (apt-get spec, the lazy-load database's path in the package without .rdx/.rdb)
MODELDATA = ("r-cran-modeldata=1.1.0-1", "./usr/lib/R/site-library/modeldata/data/Rdata")
R_DATASETS = ("r-base-core=4.2.2.20221110-2", "./usr/lib/R/library/datasets/data/Rdata")


def package_database(cache: str, package: tuple[str, str]) -> tuple[bytes, bytes]:
    """(rdx, rdb): the package's lazy-load index and objects, its .deb fetched into
    ``cache`` the first time."""
    spec, path = package
    name, version = spec.split("=")
    os.makedirs(cache, exist_ok=True)
    pattern = os.path.join(cache, f"{name}_{version.split(':')[-1]}_*.deb")
    if not glob.glob(pattern):
        if not shutil.which("apt-get"):
            sys.exit(f"this data set comes from the Debian package {spec}: no apt-get here")
        if subprocess.run(["apt-get", "download", "-q", spec], cwd=cache).returncode:
            sys.exit(f"`apt-get download {spec}` failed (run `apt-get update`?)")
    deb, = glob.glob(pattern)
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return tuple(t.extractfile(path + ext).read() for ext in (".rdx", ".rdb"))


def lazyload_object(rdx: bytes, rdb: bytes, name: str):
    """One object of an R lazy-load database, converted by `rdata` (a data frame as a
    pandas DataFrame): the index is a gzipped serialized list of (offset, length) per
    object; each object is a 4-byte length, a compression byte and the compressed
    serialization ('Z': raw LZMA2 stream, as R's xz lazy-data compression writes it)."""
    try:
        import rdata  # the bench extra; only these data sets need it
    except ImportError:
        sys.exit("this data set is R data read with the rdata package: pip install rdata")
    with warnings.catch_warnings():  # rdata warns that a bare serialization "assumed RDS"
        warnings.simplefilter("ignore", UserWarning)
        index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(rdx)))
        offset, length = (int(v) for v in index["variables"][name])
        chunk = rdb[offset:offset + length]
        size, kind = struct.unpack(">I", chunk[:4])[0], chunk[4:5]
        if kind != b"Z":  # the pinned packages' data is xz-compressed
            raise ValueError(f"{name}: compression {kind!r}, expected xz (b'Z')")
        data = lzma.decompress(chunk[5:], format=lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA2, "preset": 6 | lzma.PRESET_EXTREME}])
        if len(data) != size:
            raise ValueError(f"{name}: expected {size} bytes, decompressed {len(data)}")
        return rdata.conversion.convert(rdata.parser.parse_data(data))
