"""The cache of per-file results: a re-run processes only the game files it has not seen.

Each game file's share of the job's phase 1 (:class:`Piece`: the file's rows of X,
unscaled, their labels, masks and game groups, the float64 statistics of each of its games,
its game ids, row counts and rejections: what
:func:`imitation_learning.partition_rows.process_partition_rows` makes of the file's result
of the per-file step) is kept in a cache folder, one entry per file, under a key made of

- the **content** of the file: the SHA-256 of its bytes (never its name, size or mtime);
- the **configuration keys that change the result** (:data:`RESULT_CONFIG_KEYS`: the
  reader's settings, the masking and feature switches); every other key is listed in
  :data:`OTHER_CONFIG_KEYS`, and a test fails when a key of the schema is in neither, so a
  new key cannot be forgotten;
- the **version of the per-file step** (:func:`step_version`): the SHA-256 of the source
  of every module of the project imported by the step and by what turns its result into
  an entry (the import graph walked from :data:`VERSION_ROOTS`, module and function-level
  imports alike, every package ``__init__`` on the way), of the game data files
  (``splendor/data``), of this entry format and of the Python, numpy and pandas versions.
  Any edit of those sources gives a new version, hence new keys: nothing to remember.

A partition (:func:`~imitation_learning.partition_rows.process_partition_rows`) looks each
of its files up (:class:`Lookup`); the files not found go through the per-file step
together, as without a cache, and their shares are stored; the partition is then the
shares in path order. A file's rows of X and its games' statistics depend on its own rows
only, so the arrays are those of a run without a cache, bit for bit, and so are the saved
files (the tests compare them).

An entry (``<cache>/entries/<key[:2]>/<key>.entry``) is one file::

    MAGIC | header length (8 bytes, little-endian) | header (JSON) | arrays | CRC-32

The header holds the key, the row counts, the game ids, the file's rejections (without
the file's name: a renamed copy of a file hits the same entry, and its report names the
new path) and the arrays' layout; the arrays are raw, 64-byte aligned (masks as packed
bits), read back as views of the entry's bytes (no pickle). The last 4 bytes are the
CRC-32 of everything before them (damage, not tampering: the cache folder is trusted).

Safety: an entry is written under a unique temporary name in its folder, then renamed over
the final name (``os.replace``), so a reader (another run sharing the cache) sees either
no entry or a whole one. A damaged or truncated entry (wrong magic, length, checksum or
key) is reported, never used, and replaced by the result computed again. A file whose
bytes change while it is processed (hashed before and after) is not stored, nor one that
cannot be read. The cache is an optimisation only: an entry that cannot be written is
counted and the run goes on.

A whole run is also recorded (:func:`record_output`): when a run's inputs, configuration
and code (:func:`run_key`) are those of the run that saved its output folder, and the
folder's files are untouched since, the output is left as it is
(:func:`output_up_to_date`).
"""

from imitation_learning.result_cache.entries import (
    ENTRIES,
    FORMAT,
    SUFFIX,
    DamagedEntry,
    MappedRows,
    Piece,
    as_float32,
    compact_rows,
    decode,
    encode,
    entry_path,
    read_entry,
    storable,
    write_entry,
)
from imitation_learning.result_cache.keys import (
    OTHER_CONFIG_KEYS,
    RESULT_CONFIG_KEYS,
    VERSION_ROOTS,
    config_key,
    content_hash,
    default_cache_dir,
    entry_key,
    hash_files,
    step_modules,
    step_version,
    version_of,
)
from imitation_learning.result_cache.lookup import (
    CacheCounts,
    CacheSpec,
    Lookup,
    cache_size,
    current_keys,
    prune,
)
from imitation_learning.result_cache.runs import (
    job_version,
    output_up_to_date,
    prune_records,
    record_output,
    run_key,
)

__all__ = [
    "ENTRIES",
    "FORMAT",
    "OTHER_CONFIG_KEYS",
    "RESULT_CONFIG_KEYS",
    "SUFFIX",
    "VERSION_ROOTS",
    "CacheCounts",
    "CacheSpec",
    "DamagedEntry",
    "Lookup",
    "MappedRows",
    "Piece",
    "as_float32",
    "cache_size",
    "compact_rows",
    "config_key",
    "content_hash",
    "current_keys",
    "decode",
    "default_cache_dir",
    "encode",
    "entry_key",
    "entry_path",
    "hash_files",
    "job_version",
    "output_up_to_date",
    "prune",
    "prune_records",
    "read_entry",
    "record_output",
    "run_key",
    "step_modules",
    "step_version",
    "storable",
    "version_of",
    "write_entry",
]
