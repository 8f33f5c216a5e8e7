"""Large write-once arrays on normal memory pages.

numpy asks Linux for transparent huge pages for every array of 4 MiB and more
(``madvise(MADV_HUGEPAGE)``). For the large arrays the driver writes once and keeps (the
job's final concatenation, the feature matrix X, the split files), huge pages bring no
speed, and on the machines here their first touch was often far slower (figures in
``docs/benchmarks.md``, "Settings in the code"). The kernel counted no compaction stalls,
so the likely cause is the VM backing memory the guest has never used on its first touch;
normal pages come mostly from memory just freed.

Only such arrays: the temporaries of a loop (allocated and freed block after block, as in
the scaler's fit) are faster on huge pages here, which come back freed from the previous
block (the split and scaler step was faster with them).
numpy decides when it allocates, so only the allocation needs to be in the block.

:func:`normal_pages` turns numpy's request off for the duration of a block. numpy's
switch for it is private (:func:`huge_page_switch`); where it is
missing, nothing changes. The setting is process-wide: arrays that other threads allocate
meanwhile get normal pages too, which is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


def huge_page_switch():
    """numpy's private switch ``_set_madvise_hugepage(on) -> previous`` (in ``numpy._core``
    from numpy 2, ``numpy.core`` before), or None where it is missing."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


@contextmanager
def normal_pages() -> Iterator[None]:
    """Allocate numpy arrays with the kernel's normal pages inside the block."""
    switch = huge_page_switch()
    if switch is None:
        yield
        return
    previous = switch(False)
    try:
        yield
    finally:
        switch(previous)
