"""Where the MovieLens files come from: a folder or a GroupLens zip.

The default is the shipped ml-latest-small release. A user who downloaded ml-20m or ml-25m
points ``NETFLIX_ELT_SOURCE`` at its folder or zip and the same pipeline runs on it. Both
spellings GroupLens and others use are accepted (``genome-scores.csv`` / ``genome_scores.csv``).

ml-latest-small has no Tag Genome, and GroupLens does not allow redistributing it, so when a
source lacks the genome the pipeline generates a synthetic, clearly labelled one for the
source's own movies (see ``netflix_elt.synthetic``) and says so in the asset metadata.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from netflix_elt.movielens import Dataset, dataset

GENOME_DATASETS = ("genome_scores", "genome_tags")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    origin: str  # where it came from, for metadata: a path, a zip member, or "synthetic"
    synthetic: bool = False


class SourceError(FileNotFoundError):
    """The configured source does not provide a file the pipeline needs."""


class MovieLensSource(dg.ConfigurableResource):
    path: str  # folder or .zip
    work_dir: str  # zip members and the synthetic genome are written here
    synthetic_genome_tags: int = 64
    synthetic_seed: int = 42

    def describe(self) -> str:
        return self.path

    def locate(self, ds: Dataset) -> SourceFile:
        found = self._find(ds)
        if found is not None:
            return found
        if ds.name in GENOME_DATASETS:
            return self._synthetic_genome(ds)
        raise SourceError(
            f"MovieLens source {self.path}: no {' or '.join(ds.file_names)} found "
            "(set NETFLIX_ELT_SOURCE to a GroupLens folder or zip, e.g. ml-latest-small or ml-25m)"
        )

    def _find(self, ds: Dataset) -> SourceFile | None:
        source = Path(self.path)
        if source.is_dir():
            for name in ds.file_names:
                hits = sorted(source.glob(name)) or sorted(source.glob(f"*/{name}"))
                if hits:
                    return SourceFile(hits[0], str(hits[0]))
            return None
        if source.is_file() and zipfile.is_zipfile(source):
            return self._from_zip(source, ds)
        raise SourceError(f"MovieLens source {self.path} is neither a folder nor a zip file")

    def _from_zip(self, source: Path, ds: Dataset) -> SourceFile | None:
        with zipfile.ZipFile(source) as zf:
            members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")}
            for name in ds.file_names:
                if name in members:
                    info = zf.getinfo(members[name])
                    dest = Path(self.work_dir) / "source" / source.stem / name
                    if not (dest.exists() and dest.stat().st_size == info.file_size):
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        tmp = dest.with_suffix(".partial")
                        with zf.open(info) as src, open(tmp, "wb") as out:
                            shutil.copyfileobj(src, out, 8 << 20)  # streamed, never whole in memory
                        tmp.replace(dest)
                    return SourceFile(dest, f"{source}!{members[name]}")
        return None

    def _synthetic_genome(self, ds: Dataset) -> SourceFile:
        from netflix_elt.synthetic import write_synthetic_genome

        movies = self.locate(dataset("movies"))
        out = Path(self.work_dir) / "synthetic-genome" / f"tags{self.synthetic_genome_tags}-seed{self.synthetic_seed}"
        target = out / ds.file_name
        stamp = out / ".source"
        # Regenerate when the movies file it was made for changes.
        signature = f"{movies.origin}:{movies.path.stat().st_size}:{movies.path.stat().st_mtime_ns}"
        if not target.exists() or not stamp.exists() or stamp.read_text() != signature:
            out.mkdir(parents=True, exist_ok=True)
            write_synthetic_genome(movies.path, out, n_tags=self.synthetic_genome_tags, seed=self.synthetic_seed)
            stamp.write_text(signature)
        return SourceFile(target, f"synthetic genome for {movies.origin} (not GroupLens data)", synthetic=True)
