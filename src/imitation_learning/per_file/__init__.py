"""The per-file steps: one game log in, its four outputs out (``file_processing``), built
from the labels, masks, compaction and features of a block of rows. Nothing here knows
about Dask, partitions or the saved dataset; the job in ``imitation_learning`` sits above.
"""
