"""Nearly: a vector database engine, inside Python.

Two entry points:

* :class:`Index` -- an in-memory HNSW index of float32 vectors under integer
  ids (hnswlib-style).  Vectors are read through the buffer protocol: a
  C-contiguous float32 numpy array, ``array.array('f')`` or ``memoryview`` is
  used in place, without a copy.  ``search`` returns numpy arrays.
* :class:`Database` -- an embedded Nearly (like Qdrant's local mode): a data
  directory of collections of points (id, vector, payload dict), searched
  with Qdrant's Filter language given as Python dicts.  ``nearly serve
  --data-dir`` opens the same directory.

Every engine failure raises a subclass of :class:`nearly.Error` carrying the
engine's message; argument errors are also ``ValueError`` or ``TypeError``.
The GIL is released while the engine works.
"""

from ._nearly import (  # noqa: F401
    AlreadyExistsError,
    BusyError,
    ClosedError,
    Collection,
    CorruptError,
    Database,
    DimensionError,
    Error,
    FullError,
    Index,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfMemoryError,
    ReadOnlyError,
    Record,
    StorageError,
    __version__,
    cpu_count,
    simd,
)

__all__ = [
    "Index",
    "Database",
    "Collection",
    "Record",
    "Error",
    "InvalidArgumentError",
    "DimensionError",
    "NotFoundError",
    "AlreadyExistsError",
    "StorageError",
    "CorruptError",
    "FullError",
    "BusyError",
    "ClosedError",
    "ReadOnlyError",
    "InternalError",
    "OutOfMemoryError",
    "simd",
    "cpu_count",
    "__version__",
]
