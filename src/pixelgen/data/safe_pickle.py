"""Loading the CIFAR-10 pickle batches without running arbitrary code.

A pickle can name any importable callable and have it called on load (e.g.
`os.system`). The published batches only hold dicts, lists, bytes and numpy
arrays, so `find_class` allows exactly the globals needed to rebuild those and
refuses everything else with DataError, before anything is called."""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

import numpy as np

from ..errors import DataError

try:  # numpy >= 2 moved the pickling helpers to numpy._core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    # Python 3's protocol-2 pickles spell bytes objects as _codecs.encode(str, "latin1").
    if encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1", errors)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None


def safe_load(f: IO[bytes] | bytes, what: str) -> Any:
    """Unpickle CIFAR-style data from a file object or bytes; `what` names it in errors."""
    if isinstance(f, (bytes, bytearray)):
        f = io.BytesIO(f)
    try:
        # encoding="bytes": the published batches are Python 2 pickles whose str
        # keys (b"data", b"labels") must stay bytes for numpy's array state.
        return RestrictedUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as e:
        raise DataError(
            f"{what} refers to {e}, which is not allowed in a CIFAR-10 batch; refusing to "
            "load it (the file is not the published data: replace it)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"cannot unpickle {what}: {e}; replace the file") from None
